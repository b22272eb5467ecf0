#include "tensor/compare.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "tensor/dispatch.h"

namespace hepml {
namespace {

template <typename T>
double AsDouble(const T& v) {
  return static_cast<double>(static_cast<ComputeT<T>>(v));
}

constexpr int kMaxReported = 5;

}  // namespace

absl::Status AllClose(const Tensor& actual, const Tensor& expected, Tolerance tol) {
  if (actual.dtype() != expected.dtype()) {
    return absl::InvalidArgumentError(absl::StrCat("dtype ", DTypeName(actual.dtype()),
                                                   " != expected ", DTypeName(expected.dtype())));
  }
  if (actual.shape() != expected.shape()) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeToString(actual.shape()),
                                                   " != expected ", ShapeToString(expected.shape())));
  }
  int64_t mismatches = 0;
  std::string report;
  auto note = [&](int64_t i, const std::string& a, const std::string& e) {
    if (mismatches++ < kMaxReported) {
      absl::StrAppend(&report, report.empty() ? "" : "; ", "[", i, "] ", a, " vs ", e);
    }
  };
  DType d = actual.dtype();
  absl::Status st;
  if (d == DType::kString) {
    const auto* a = actual.data<std::string>();
    const auto* e = expected.data<std::string>();
    for (int64_t i = 0; i < actual.size(); ++i) {
      if (a[i] != e[i]) note(i, "\"" + a[i] + "\"", "\"" + e[i] + "\"");
    }
  } else if (d == DType::kComplex64 || d == DType::kComplex128) {
    auto cmp = [&](auto tag) {
      using C = typename decltype(tag)::type;
      const C* a = actual.data<C>();
      const C* e = expected.data<C>();
      for (int64_t i = 0; i < actual.size(); ++i) {
        if (std::abs(a[i] - e[i]) > tol.atol + tol.rtol * std::abs(e[i])) {
          note(i, absl::StrCat(a[i].real(), "+", a[i].imag(), "i"),
               absl::StrCat(e[i].real(), "+", e[i].imag(), "i"));
        }
      }
    };
    if (d == DType::kComplex64) cmp(TypeTag<std::complex<float>>{});
    else cmp(TypeTag<std::complex<double>>{});
  } else {
    auto compare = [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      const T* a = actual.data<T>();
      const T* e = expected.data<T>();
      for (int64_t i = 0; i < actual.size(); ++i) {
        if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>) {
          if (a[i] != e[i]) note(i, absl::StrCat(+a[i]), absl::StrCat(+e[i]));
        } else {
          double av = AsDouble(a[i]), ev = AsDouble(e[i]);
          bool ok;
          if (std::isnan(ev)) ok = std::isnan(av);
          else if (std::isinf(ev)) ok = av == ev;
          else ok = std::fabs(av - ev) <= tol.atol + tol.rtol * std::fabs(ev);
          if (!ok) note(i, absl::StrCat(av), absl::StrCat(ev));
        }
      }
      return absl::OkStatus();
    };
    // float8 compares by value like the other floats; int4/uint4 exactly, as
    // their unpacked int8/uint8 storage.
    if (d == DType::kInt4) st = compare(TypeTag<int8_t>{});
    else if (d == DType::kUInt4) st = compare(TypeTag<uint8_t>{});
    else if (IsFloat8(d)) st = VisitFloat8(d, compare, "AllClose");
    else st = VisitNumericOrBool(d, compare, "AllClose");
  }
  if (!st.ok()) return st;
  if (mismatches > 0) {
    return absl::InvalidArgumentError(absl::StrCat(mismatches, " of ", actual.size(),
                                                   " values differ (rtol ", tol.rtol, ", atol ",
                                                   tol.atol, "): ", report));
  }
  return absl::OkStatus();
}

absl::Status AllClose(const Value& actual, const Value& expected, Tolerance tol) {
  if (actual.kind != expected.kind) {
    return absl::InvalidArgumentError("value kinds differ (tensor, sequence or empty optional)");
  }
  switch (actual.kind) {
    case Value::Kind::kTensor: return AllClose(actual.tensor, expected.tensor, tol);
    case Value::Kind::kNone: return absl::OkStatus();
    case Value::Kind::kSequence:
      if (actual.sequence.size() != expected.sequence.size()) {
        return absl::InvalidArgumentError(absl::StrCat("sequence length ", actual.sequence.size(),
                                                       " != expected ", expected.sequence.size()));
      }
      for (size_t i = 0; i < actual.sequence.size(); ++i) {
        absl::Status st = AllClose(actual.sequence[i], expected.sequence[i], tol);
        if (!st.ok()) return absl::Status(st.code(), absl::StrCat("sequence element ", i, ": ", st.message()));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace hepml
