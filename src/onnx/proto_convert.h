// Conversions between ONNX protobuf messages and hepml's Tensor, Value and
// TypeInfo. Used by the importer and by tools that read ONNX's test data.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace onnx {
class TensorProto;
class TypeProto;
class SequenceProto;
class OptionalProto;
}  // namespace onnx

namespace hepml {

// `base_dir` resolves external data; empty forbids it.
absl::StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir);
// Writes the values as raw_data (int4/uint4 packed two per byte, low nibble
// first; strings as string_data).
void TensorToProto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto);
// The values of an int4/uint4 tensor packed two per byte, first element in the
// low nibble, an odd count padded with a zero high nibble.
std::string Pack4Bit(const Tensor& tensor);
TypeInfo TypeFromProto(const onnx::TypeProto& proto);

// Reads a serialized TensorProto, SequenceProto or OptionalProto file (as the
// ONNX backend test data stores them). `kind_hint` is "tensor", "sequence",
// "optional" or empty to guess from the model's declared type.
absl::StatusOr<Value> ReadValueFile(const std::string& path, const TypeInfo* declared_type);

}  // namespace hepml
