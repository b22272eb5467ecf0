#include "hepml/tensor.h"

#include <cmath>
#include <cstdlib>
#include <new>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hepml {
namespace {

constexpr size_t kAlignment = 64;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

std::shared_ptr<void> AllocateAligned(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<void>(p, AlignedFree());
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kUInt8: return 1;
    case DType::kInt8: return 1;
    case DType::kUInt16: return 2;
    case DType::kInt16: return 2;
    case DType::kInt32: return 4;
    case DType::kInt64: return 8;
    case DType::kString: return sizeof(std::string);
    case DType::kBool: return 1;
    case DType::kFloat16: return 2;
    case DType::kFloat64: return 8;
    case DType::kUInt32: return 4;
    case DType::kUInt64: return 8;
    case DType::kComplex64: return 8;
    case DType::kComplex128: return 16;
    case DType::kBFloat16: return 2;
    case DType::kUndefined: return 0;
  }
  return 0;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kString: return "string";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kComplex64: return "complex64";
    case DType::kComplex128: return "complex128";
    case DType::kBFloat16: return "bfloat16";
    case DType::kUndefined: return "undefined";
  }
  return "undefined";
}

const char* DTypeNumpyDescr(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "<f4";
    case DType::kUInt8: return "|u1";
    case DType::kInt8: return "|i1";
    case DType::kUInt16: return "<u2";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kBool: return "|b1";
    case DType::kFloat16: return "<f2";
    case DType::kFloat64: return "<f8";
    case DType::kUInt32: return "<u4";
    case DType::kUInt64: return "<u8";
    case DType::kComplex64: return "<c8";
    case DType::kComplex128: return "<c16";
    // numpy has no bfloat16; it is stored as its 16 raw bits.
    case DType::kBFloat16: return "<u2";
    default: return "";
  }
}

bool IsFloatingPoint(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 ||
         d == DType::kBFloat16;
}
bool IsSignedInteger(DType d) {
  return d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 || d == DType::kInt64;
}
bool IsInteger(DType d) {
  return IsSignedInteger(d) || d == DType::kUInt8 || d == DType::kUInt16 ||
         d == DType::kUInt32 || d == DType::kUInt64;
}
bool IsKnownDType(int32_t v) { return v >= 1 && v <= 16; }

Float16::Float16(float value) {
  uint32_t x = FloatBits(value);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) {  // Inf or NaN
    bits = static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
    return;
  }
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) {  // overflow to infinity
    bits = static_cast<uint16_t>(sign | 0x7c00u);
    return;
  }
  if (e <= 0) {  // subnormal or zero
    if (e < -10) {
      bits = static_cast<uint16_t>(sign);
      return;
    }
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    bits = static_cast<uint16_t>(sign | half);
    return;
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into exp: correct
  bits = static_cast<uint16_t>(half);
}

Float16::operator float() const {
  uint32_t sign = (static_cast<uint32_t>(bits) & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      out = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return BitsFloat(out);
}

BFloat16::BFloat16(float value) {
  uint32_t x = FloatBits(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it quiet
    bits = static_cast<uint16_t>((x >> 16) | 0x40u);
    return;
  }
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  bits = static_cast<uint16_t>((x + rounding) >> 16);
}

BFloat16::operator float() const { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

Tensor Tensor::Empty(DType dtype, Shape shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  if (dtype == DType::kString) {
    auto* strings = new std::vector<std::string>(static_cast<size_t>(t.size_));
    t.data_ = strings->data();
    t.storage_ = std::shared_ptr<void>(strings, [](void* p) {
      delete static_cast<std::vector<std::string>*>(p);
    });
    return t;
  }
  t.storage_ = AllocateAligned(t.nbytes());
  t.data_ = t.storage_.get();
  return t;
}

Tensor Tensor::Zeros(DType dtype, Shape shape) {
  Tensor t = Empty(dtype, std::move(shape));
  if (dtype != DType::kString) std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::Wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> keep_alive) {
  Tensor t;
  t.dtype_ = dtype;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  t.data_ = data;
  t.storage_ = std::move(keep_alive);
  return t;
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  t.size_ = NumElements(shape);
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  Tensor t = Empty(dtype_, shape_);
  if (dtype_ == DType::kString) {
    const auto* src = data<std::string>();
    auto* dst = t.mutable_data<std::string>();
    for (int64_t i = 0; i < size_; ++i) dst[i] = src[i];
  } else if (nbytes() > 0) {
    std::memcpy(t.data_, data_, nbytes());
  }
  return t;
}

namespace {
template <typename T>
void AppendValue(std::ostringstream& os, const T& v) {
  if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
    os << static_cast<int>(v);
  } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    os << static_cast<float>(v);
  } else {
    os << v;
  }
}
template <typename T>
void AppendValues(std::ostringstream& os, const Tensor& t, int max_values) {
  const T* p = t.data<T>();
  int64_t n = std::min<int64_t>(t.size(), max_values);
  for (int64_t i = 0; i < n; ++i) {
    if (i) os << ", ";
    AppendValue(os, p[i]);
  }
  if (t.size() > n) os << ", ...";
}
}  // namespace

std::string Tensor::DebugString(int max_values) const {
  std::ostringstream os;
  os << DTypeName(dtype_) << ShapeToString(shape_) << " {";
  switch (dtype_) {
    case DType::kFloat32: AppendValues<float>(os, *this, max_values); break;
    case DType::kFloat64: AppendValues<double>(os, *this, max_values); break;
    case DType::kFloat16: AppendValues<Float16>(os, *this, max_values); break;
    case DType::kBFloat16: AppendValues<BFloat16>(os, *this, max_values); break;
    case DType::kInt8: AppendValues<int8_t>(os, *this, max_values); break;
    case DType::kInt16: AppendValues<int16_t>(os, *this, max_values); break;
    case DType::kInt32: AppendValues<int32_t>(os, *this, max_values); break;
    case DType::kInt64: AppendValues<int64_t>(os, *this, max_values); break;
    case DType::kUInt8: AppendValues<uint8_t>(os, *this, max_values); break;
    case DType::kUInt16: AppendValues<uint16_t>(os, *this, max_values); break;
    case DType::kUInt32: AppendValues<uint32_t>(os, *this, max_values); break;
    case DType::kUInt64: AppendValues<uint64_t>(os, *this, max_values); break;
    case DType::kBool: AppendValues<bool>(os, *this, max_values); break;
    case DType::kString: AppendValues<std::string>(os, *this, max_values); break;
    case DType::kComplex64: AppendValues<std::complex<float>>(os, *this, max_values); break;
    case DType::kComplex128: AppendValues<std::complex<double>>(os, *this, max_values); break;
    case DType::kUndefined: break;
  }
  os << "}";
  return os.str();
}

}  // namespace hepml
