// Tensors: a data type, a shape and a shared, 64-byte aligned buffer.
//
// A Tensor is a cheap handle: copies share the buffer (like a shared_ptr).
// Tensors are not synchronised; share one between threads only to read it.
#pragma once

#include <complex>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"

namespace hepml {

// Element types. The numbers are ONNX's TensorProto.DataType values.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
  // 8-bit floats (onnx/docs/docs/technical/float8.md): sign, exponent and
  // mantissa bits; FN: no infinities, FNUZ: no infinities and no negative zero.
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
  // 4-bit integers. In memory they are unpacked, one per byte: kUInt4 as a
  // uint8_t in [0, 15], kInt4 as an int8_t in [-8, 7]. Only TensorProto
  // storage packs them two per byte (proto_convert).
  kUInt4 = 21,
  kInt4 = 22,
};

// Bytes per element; 0 for kUndefined, sizeof(std::string) for kString, 1 for
// int4/uint4 (unpacked in memory).
size_t DTypeSize(DType dtype);
// ONNX-style lower-case name: "float32", "int64", "bool", "float16", ...
const char* DTypeName(DType dtype);
// numpy's dtype string for this type ("<f4", "|b1", ...); empty if none.
const char* DTypeNumpyDescr(DType dtype);
// float16, bfloat16, float32, float64 (the types arithmetic kernels compute
// in; not the float8 types).
bool IsFloatingPoint(DType dtype);
// Signed and unsigned integers of 8 to 64 bits (not bool, not int4/uint4).
bool IsInteger(DType dtype);
bool IsSignedInteger(DType dtype);
bool IsFloat8(DType dtype);    // the four float8 types
bool Is4BitInt(DType dtype);   // int4, uint4
// True for every ONNX TensorProto.DataType value hepml knows.
bool IsKnownDType(int32_t value);

// IEEE 754 binary16. Converts implicitly to float; from float explicitly,
// rounding to nearest even.
struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  explicit Float16(float value);
  operator float() const;  // NOLINT(google-explicit-constructor)
  static Float16 FromBits(uint16_t b) {
    Float16 h;
    h.bits = b;
    return h;
  }
};

// bfloat16 (the upper half of a float32). Rounds to nearest even; NaN kept.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float value);
  operator float() const;  // NOLINT(google-explicit-constructor)
  static BFloat16 FromBits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
};

// 8-bit floats. Each converts implicitly (and exactly) to float. From a
// double (or float) explicitly, rounding to nearest even, with ONNX Cast's
// rules (onnx Operators.md, Cast, float 8 tables):
//   saturate = true:  values beyond the largest finite value (infinities
//                     included) become +/- that value;
//   saturate = false: they become NaN (FN, FNUZ types) or +/- infinity
//                     (E5M2).
// NaN stays NaN. The FNUZ types have no negative zero: -0 and negative values
// rounding to zero give +0; their one NaN is 0x80.
#define HEPML_DECLARE_FLOAT8(Name)                                 \
  struct Name {                                                    \
    uint8_t bits = 0;                                              \
    Name() = default;                                              \
    explicit Name(double value, bool saturate = true);             \
    operator float() const; /* NOLINT(google-explicit-constructor) */ \
    bool IsNaN() const;                                            \
    bool IsInf() const;                                            \
    static Name FromBits(uint8_t b) {                              \
      Name h;                                                      \
      h.bits = b;                                                  \
      return h;                                                    \
    }                                                              \
  };
// 1 sign, 4 exponent (bias 7), 3 mantissa bits; max 448; NaN S.1111.111.
HEPML_DECLARE_FLOAT8(Float8E4M3FN)
// 1 sign, 4 exponent (bias 8), 3 mantissa bits; max 240; NaN 0x80.
HEPML_DECLARE_FLOAT8(Float8E4M3FNUZ)
// 1 sign, 5 exponent (bias 15), 2 mantissa bits; max 57344; inf S.11111.00,
// NaN S.11111.{01,10,11}.
HEPML_DECLARE_FLOAT8(Float8E5M2)
// 1 sign, 5 exponent (bias 16), 2 mantissa bits; max 57344; NaN 0x80.
HEPML_DECLARE_FLOAT8(Float8E5M2FNUZ)
#undef HEPML_DECLARE_FLOAT8

template <typename T>
struct DTypeOf;
#define HEPML_DTYPE_OF(T, D) \
  template <>                \
  struct DTypeOf<T> {        \
    static constexpr DType value = DType::D; \
  };
HEPML_DTYPE_OF(float, kFloat32)
HEPML_DTYPE_OF(double, kFloat64)
HEPML_DTYPE_OF(Float16, kFloat16)
HEPML_DTYPE_OF(BFloat16, kBFloat16)
HEPML_DTYPE_OF(Float8E4M3FN, kFloat8E4M3FN)
HEPML_DTYPE_OF(Float8E4M3FNUZ, kFloat8E4M3FNUZ)
HEPML_DTYPE_OF(Float8E5M2, kFloat8E5M2)
HEPML_DTYPE_OF(Float8E5M2FNUZ, kFloat8E5M2FNUZ)
HEPML_DTYPE_OF(int8_t, kInt8)
HEPML_DTYPE_OF(int16_t, kInt16)
HEPML_DTYPE_OF(int32_t, kInt32)
HEPML_DTYPE_OF(int64_t, kInt64)
HEPML_DTYPE_OF(uint8_t, kUInt8)
HEPML_DTYPE_OF(uint16_t, kUInt16)
HEPML_DTYPE_OF(uint32_t, kUInt32)
HEPML_DTYPE_OF(uint64_t, kUInt64)
HEPML_DTYPE_OF(bool, kBool)
HEPML_DTYPE_OF(std::string, kString)
HEPML_DTYPE_OF(std::complex<float>, kComplex64)
HEPML_DTYPE_OF(std::complex<double>, kComplex128)
#undef HEPML_DTYPE_OF

// Dimensions of a tensor; rank 0 (empty) is a scalar.
using Shape = absl::InlinedVector<int64_t, 6>;

// Number of elements of `shape` (1 for a scalar).
int64_t NumElements(absl::Span<const int64_t> shape);
// "[2,3,4]"
std::string ShapeToString(absl::Span<const int64_t> shape);

class Tensor {
 public:
  // An undefined tensor (dtype kUndefined, no buffer).
  Tensor() = default;

  // Uninitialised storage for `shape` elements of `dtype` (strings are empty).
  static Tensor Empty(DType dtype, Shape shape);
  // Zero-filled storage (false, 0, empty strings).
  static Tensor Zeros(DType dtype, Shape shape);
  // A view of memory owned elsewhere. `keep_alive` (may be null) is held as
  // long as any copy of the tensor lives. REQUIRES: data stays valid and
  // holds NumElements(shape) elements of dtype (not kString).
  static Tensor Wrap(DType dtype, Shape shape, void* data,
                     std::shared_ptr<void> keep_alive = nullptr);

  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values) {
    Tensor t = Empty(DTypeOf<T>::value, std::move(shape));
    T* out = t.mutable_data<T>();
    for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.size()); ++i) out[i] = values[i];
    return t;
  }
  template <typename T>
  static Tensor Scalar(T value) {
    return FromVector<T>({}, std::vector<T>{value});
  }

  bool defined() const { return dtype_ != DType::kUndefined; }
  // Makes this an undefined tensor again, releasing its storage.
  void Reset() {
    dtype_ = DType::kUndefined;
    shape_.clear();
    size_ = 0;
    data_ = nullptr;
    storage_.reset();
  }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t size() const { return size_; }  // number of elements
  size_t nbytes() const { return static_cast<size_t>(size_) * DTypeSize(dtype_); }

  template <typename T>
  const T* data() const {
    return static_cast<const T*>(raw_data());
  }
  template <typename T>
  T* mutable_data() {
    return static_cast<T*>(raw_mutable_data());
  }
  const void* raw_data() const { return data_; }
  void* raw_mutable_data() { return data_; }

  // Same buffer, another shape with the same number of elements.
  Tensor Reshaped(Shape shape) const;
  // A deep copy with its own buffer.
  Tensor Clone() const;
  // True if both share the same storage.
  bool SharesBufferWith(const Tensor& other) const {
    return data_ != nullptr && data_ == other.data_;
  }
  // True if this handle holds its storage alone: no copy and no view that
  // keeps it alive (a Wrap without keep_alive does not) exists.
  bool sole_owner() const { return storage_ != nullptr && storage_.use_count() == 1; }

  // "float32[2,3]" and the first few values.
  std::string DebugString(int max_values = 8) const;

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t size_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> storage_;
};

// A runtime value: a tensor, a sequence of tensors, or an empty optional.
// ONNX's optional(tensor) holding a tensor is a kTensor value.
struct Value {
  enum class Kind { kTensor, kSequence, kNone };
  Kind kind = Kind::kTensor;
  Tensor tensor;
  std::vector<Tensor> sequence;
  // Element type of a sequence (known even when it is empty), or of an empty
  // optional tensor.
  DType element_dtype = DType::kUndefined;
  // For kNone: true if the optional would hold a sequence.
  bool none_is_sequence = false;

  static Value FromTensor(Tensor t) {
    Value v;
    v.tensor = std::move(t);
    return v;
  }
  static Value FromSequence(std::vector<Tensor> seq, DType elem) {
    Value v;
    v.kind = Kind::kSequence;
    v.sequence = std::move(seq);
    v.element_dtype = elem;
    return v;
  }
  static Value None(DType elem = DType::kUndefined, bool is_sequence = false) {
    Value v;
    v.kind = Kind::kNone;
    v.element_dtype = elem;
    v.none_is_sequence = is_sequence;
    return v;
  }
  bool is_tensor() const { return kind == Kind::kTensor; }
  // Back to the default (an undefined tensor), releasing what it held.
  void Clear() {
    kind = Kind::kTensor;
    tensor.Reset();
    sequence.clear();
    element_dtype = DType::kUndefined;
    none_is_sequence = false;
  }
};

}  // namespace hepml
