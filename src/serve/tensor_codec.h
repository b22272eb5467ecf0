// Tensor data as the KServe v2 protocol carries it: raw little-endian bytes
// (HTTP binary data extension, gRPC raw_input_contents) and JSON values.
#pragma once

#include <string>
#include <string_view>

#include "hepml/status.h"
#include "hepml/tensor.h"
#include "nlohmann/json.hpp"

namespace hepml::serve {

// A tensor of `dtype` and `shape` from raw bytes: the elements back to back,
// or for BYTES (kString) each element as a 4-byte little-endian length and
// its bytes. INVALID_ARGUMENT naming `what` when the size does not match.
absl::StatusOr<Tensor> TensorFromRaw(const std::string& what, DType dtype, const Shape& shape,
                                     std::string_view bytes);
// The inverse.
std::string TensorToRaw(const Tensor& t);

// A tensor from JSON `data`: a flat or nested array (row-major) of numbers,
// booleans or strings matching `dtype`.
absl::StatusOr<Tensor> TensorFromJson(const std::string& what, DType dtype, const Shape& shape,
                                      const nlohmann::json& data);
// A flat JSON array of the elements.
nlohmann::json TensorToJson(const Tensor& t);

// The shape of a protocol tensor, checked: no negative dimension, and an
// element count that fits in memory limits (at most 2^40 elements).
absl::StatusOr<Shape> CheckedShape(const std::string& what, const std::vector<int64_t>& dims);

}  // namespace hepml::serve
