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
void TensorToProto(const Tensor& tensor, const std::string& name, onnx::TensorProto* proto);
TypeInfo TypeFromProto(const onnx::TypeProto& proto);

// Reads a serialized TensorProto, SequenceProto or OptionalProto file (as the
// ONNX backend test data stores them). `kind_hint` is "tensor", "sequence",
// "optional" or empty to guess from the model's declared type.
absl::StatusOr<Value> ReadValueFile(const std::string& path, const TypeInfo* declared_type);

}  // namespace hepml
