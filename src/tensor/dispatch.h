// Type dispatch for kernels: calls a generic lambda with a tag of the C++ type
// that matches a run-time DType.
//
//   return VisitNumeric(t.dtype(), [&](auto tag) -> absl::Status {
//     using T = typename decltype(tag)::type;
//     ...
//   });
//
// Every visitor returns absl::Status; a dtype outside the visited set gives
// InvalidArgument naming it.
#pragma once

#include <complex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "hepml/tensor.h"

namespace hepml {

template <typename T>
struct TypeTag {
  using type = T;
};

inline absl::Status UnsupportedDType(DType d, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": unsupported data type ", DTypeName(d)));
}

#define HEPML_VISIT_CASE(D, T) \
  case DType::D:               \
    return f(TypeTag<T>{});

// float32, float64, float16, bfloat16.
template <typename F>
absl::Status VisitFloat(DType d, F&& f, absl::string_view what = "operator") {
  switch (d) {
    HEPML_VISIT_CASE(kFloat32, float)
    HEPML_VISIT_CASE(kFloat64, double)
    HEPML_VISIT_CASE(kFloat16, Float16)
    HEPML_VISIT_CASE(kBFloat16, BFloat16)
    default: return UnsupportedDType(d, what);
  }
}

// Signed and unsigned integers of every width.
template <typename F>
absl::Status VisitInteger(DType d, F&& f, absl::string_view what = "operator") {
  switch (d) {
    HEPML_VISIT_CASE(kInt8, int8_t)
    HEPML_VISIT_CASE(kInt16, int16_t)
    HEPML_VISIT_CASE(kInt32, int32_t)
    HEPML_VISIT_CASE(kInt64, int64_t)
    HEPML_VISIT_CASE(kUInt8, uint8_t)
    HEPML_VISIT_CASE(kUInt16, uint16_t)
    HEPML_VISIT_CASE(kUInt32, uint32_t)
    HEPML_VISIT_CASE(kUInt64, uint64_t)
    default: return UnsupportedDType(d, what);
  }
}

// Floating point and integers (no bool, string or complex).
template <typename F>
absl::Status VisitNumeric(DType d, F&& f, absl::string_view what = "operator") {
  if (IsFloatingPoint(d)) return VisitFloat(d, f, what);
  return VisitInteger(d, f, what);
}

// Numeric types and bool.
template <typename F>
absl::Status VisitNumericOrBool(DType d, F&& f, absl::string_view what = "operator") {
  if (d == DType::kBool) return f(TypeTag<bool>{});
  return VisitNumeric(d, f, what);
}

// Every type, string and complex included (for operators that only move data).
template <typename F>
absl::Status VisitAll(DType d, F&& f, absl::string_view what = "operator") {
  switch (d) {
    HEPML_VISIT_CASE(kString, std::string)
    HEPML_VISIT_CASE(kComplex64, std::complex<float>)
    HEPML_VISIT_CASE(kComplex128, std::complex<double>)
    default: return VisitNumericOrBool(d, f, what);
  }
}

// The four float8 types (not part of VisitFloat: no arithmetic kernel
// computes in them; Cast, quantization and IsNaN/IsInf visit them).
template <typename F>
absl::Status VisitFloat8(DType d, F&& f, absl::string_view what = "operator") {
  switch (d) {
    HEPML_VISIT_CASE(kFloat8E4M3FN, Float8E4M3FN)
    HEPML_VISIT_CASE(kFloat8E4M3FNUZ, Float8E4M3FNUZ)
    HEPML_VISIT_CASE(kFloat8E5M2, Float8E5M2)
    HEPML_VISIT_CASE(kFloat8E5M2FNUZ, Float8E5M2FNUZ)
    default: return UnsupportedDType(d, what);
  }
}

#undef HEPML_VISIT_CASE

// A 16-byte element (complex128) moved as raw bits.
struct Bytes16 {
  uint64_t lo, hi;
};

// Calls f with TypeTag<S>, S an unsigned integer type of the element's size
// (strings: std::string; 16 bytes: Bytes16). For kernels that only move
// elements: moving a float as a uint32_t copies its bits, so 6 instantiations
// serve every dtype.
template <typename F>
absl::Status VisitByElementSize(DType d, F&& f, absl::string_view what = "operator") {
  if (d == DType::kString) return f(TypeTag<std::string>{});
  switch (DTypeSize(d)) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    case 16: return f(TypeTag<Bytes16>{});
    default: return UnsupportedDType(d, what);
  }
}

// The arithmetic type a kernel computes T in: float for the 16- and 8-bit floats.
template <typename T>
struct ComputeType {
  using type = T;
};
template <>
struct ComputeType<Float16> {
  using type = float;
};
template <>
struct ComputeType<BFloat16> {
  using type = float;
};
template <>
struct ComputeType<Float8E4M3FN> {
  using type = float;
};
template <>
struct ComputeType<Float8E4M3FNUZ> {
  using type = float;
};
template <>
struct ComputeType<Float8E5M2> {
  using type = float;
};
template <>
struct ComputeType<Float8E5M2FNUZ> {
  using type = float;
};
template <typename T>
using ComputeT = typename ComputeType<T>::type;

}  // namespace hepml
