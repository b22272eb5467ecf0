#include "serve/tensor_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "serve/model_config.h"

namespace hepml::serve {
namespace {

// Calls f(T{}) with T the C++ type of a numeric dtype; false if not numeric.
template <typename F>
bool VisitNumeric(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kBool: f(bool{}); return true;
    case DType::kUInt8: f(uint8_t{}); return true;
    case DType::kUInt16: f(uint16_t{}); return true;
    case DType::kUInt32: f(uint32_t{}); return true;
    case DType::kUInt64: f(uint64_t{}); return true;
    case DType::kInt8: f(int8_t{}); return true;
    case DType::kInt16: f(int16_t{}); return true;
    case DType::kInt32: f(int32_t{}); return true;
    case DType::kInt64: f(int64_t{}); return true;
    case DType::kFloat16: f(Float16{}); return true;
    case DType::kBFloat16: f(BFloat16{}); return true;
    case DType::kFloat32: f(float{}); return true;
    case DType::kFloat64: f(double{}); return true;
    default: return false;
  }
}

// Deeper than any tensor's rank: a request nesting its data further is
// refused rather than walked (each level would be a stack frame).
constexpr int kMaxJsonNesting = 64;

bool Flatten(const nlohmann::json& data, std::vector<const nlohmann::json*>& out, int depth = 0) {
  if (!data.is_array()) {
    out.push_back(&data);
    return true;
  }
  if (depth >= kMaxJsonNesting) return false;
  for (const auto& v : data)
    if (!Flatten(v, out, depth + 1)) return false;
  return true;
}

}  // namespace

absl::StatusOr<Shape> CheckedShape(const std::string& what, const std::vector<int64_t>& dims) {
  Shape shape;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0)
      return absl::InvalidArgumentError(absl::StrCat(what, ": shape has a negative dimension (", d, ")"));
    if (d > 0 && n > (int64_t{1} << 40) / d)
      return absl::InvalidArgumentError(absl::StrCat(what, ": shape holds too many elements"));
    n *= d;
    shape.push_back(d);
  }
  return shape;
}

absl::StatusOr<Tensor> TensorFromRaw(const std::string& what, DType dtype, const Shape& shape,
                                     std::string_view bytes) {
  int64_t n = NumElements(shape);
  if (dtype == DType::kString) {
    // Each element takes at least its 4-byte length: check before allocating.
    if (static_cast<uint64_t>(n) > bytes.size() / 4)
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", bytes.size(), " bytes cannot hold ", n,
                                                     " BYTES elements (each needs a 4-byte length)"));
    Tensor t = Tensor::Empty(dtype, shape);
    std::string* out = t.mutable_data<std::string>();
    size_t pos = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (bytes.size() - pos < 4)
        return absl::InvalidArgumentError(absl::StrCat(what, ": BYTES data ends before element ", i, " of ", n));
      uint32_t len = 0;
      std::memcpy(&len, bytes.data() + pos, 4);
      pos += 4;
      if (bytes.size() - pos < len)
        return absl::InvalidArgumentError(absl::StrCat(what, ": BYTES element ", i, " of ", len, " bytes runs past the data"));
      out[i].assign(bytes.data() + pos, len);
      pos += len;
    }
    if (pos != bytes.size())
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", bytes.size() - pos, " bytes left after ", n, " BYTES elements"));
    return t;
  }
  size_t want = static_cast<size_t>(n) * DTypeSize(dtype);
  if (bytes.size() != want)
    return absl::InvalidArgumentError(absl::StrCat(what, ": got ", bytes.size(), " bytes of data but shape ",
                                                   ShapeToString(shape), " of ", ProtocolDataTypeName(dtype), " needs ",
                                                   want));
  Tensor t = Tensor::Empty(dtype, shape);
  if (want) std::memcpy(t.raw_mutable_data(), bytes.data(), want);
  if (dtype == DType::kBool) {
    uint8_t* b = t.mutable_data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
  }
  return t;
}

std::string TensorToRaw(const Tensor& t) {
  if (t.dtype() == DType::kString) {
    std::string out;
    const std::string* s = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) {
      uint32_t len = static_cast<uint32_t>(s[i].size());
      out.append(reinterpret_cast<const char*>(&len), 4);
      out += s[i];
    }
    return out;
  }
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

absl::StatusOr<Tensor> TensorFromJson(const std::string& what, DType dtype, const Shape& shape,
                                      const nlohmann::json& data) {
  std::vector<const nlohmann::json*> flat;
  if (!Flatten(data, flat))
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": 'data' is nested deeper than ", kMaxJsonNesting, " arrays"));
  int64_t n = NumElements(shape);
  if (static_cast<int64_t>(flat.size()) != n)
    return absl::InvalidArgumentError(absl::StrCat(what, ": got ", flat.size(), " elements of data but shape ",
                                                   ShapeToString(shape), " holds ", n));
  Tensor t = Tensor::Empty(dtype, shape);
  absl::Status status;
  if (dtype == DType::kString) {
    std::string* out = t.mutable_data<std::string>();
    for (int64_t i = 0; i < n; ++i) {
      if (!flat[i]->is_string())
        return absl::InvalidArgumentError(absl::StrCat(what, ": BYTES element ", i, " is not a string"));
      out[i] = flat[i]->get<std::string>();
    }
    return t;
  }
  bool numeric = VisitNumeric(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* out = t.mutable_data<T>();
    for (int64_t i = 0; i < n && status.ok(); ++i) {
      const nlohmann::json& v = *flat[i];
      if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) {
          status = absl::InvalidArgumentError(absl::StrCat(what, ": BOOL element ", i, " is not true or false"));
          break;
        }
        out[i] = v.get<bool>();
      } else if constexpr (std::is_integral_v<T>) {
        if (!v.is_number_integer()) {
          status = absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " (", v.dump(), ") is not an integer"));
          break;
        }
        if constexpr (std::is_unsigned_v<T>) {
          if (v.is_number_unsigned()) {
            uint64_t u = v.get<uint64_t>();
            if (u > std::numeric_limits<T>::max()) {
              status = absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " (", u, ") is out of range"));
              break;
            }
            out[i] = static_cast<T>(u);
          } else {
            status = absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " (", v.dump(), ") is out of range"));
            break;
          }
        } else {
          int64_t s = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                          ? INT64_MAX
                          : v.get<int64_t>();
          if (s < std::numeric_limits<T>::min() || s > std::numeric_limits<T>::max() ||
              (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
            status = absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " (", v.dump(), ") is out of range"));
            break;
          }
          out[i] = static_cast<T>(s);
        }
      } else {
        if (!v.is_number()) {
          status = absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " (", v.dump(), ") is not a number"));
          break;
        }
        out[i] = T(v.get<double>());
      }
    }
  });
  if (!numeric)
    return absl::InvalidArgumentError(absl::StrCat(what, ": datatype ", DTypeName(dtype), " cannot be sent as JSON"));
  if (!status.ok()) return status;
  return t;
}

nlohmann::json TensorToJson(const Tensor& t) {
  nlohmann::json out = nlohmann::json::array();
  if (t.dtype() == DType::kString) {
    const std::string* s = t.data<std::string>();
    for (int64_t i = 0; i < t.size(); ++i) out.push_back(s[i]);
    return out;
  }
  VisitNumeric(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.size(); ++i) {
      if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
        out.push_back(static_cast<float>(p[i]));
      else
        out.push_back(p[i]);
    }
  });
  return out;
}

}  // namespace hepml::serve
