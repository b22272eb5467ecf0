// Model configuration: config.pbtxt parsing, completion from the ONNX model,
// and the datatype names of the KServe v2 protocol.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hepml/session.h"
#include "hepml/status.h"
#include "hepml/tensor.h"
#include "model_config.pb.h"

namespace hepml::serve {

// KServe v2 datatype names: "BOOL", "UINT8", ..., "FP16", "FP32", "FP64",
// "BF16", "BYTES". Empty for types the protocol has no name for.
const char* ProtocolDataTypeName(DType dtype);
// INVALID_ARGUMENT naming the accepted names for anything else.
absl::StatusOr<DType> DTypeFromProtocolName(std::string_view name);
// config.pbtxt's TYPE_FP32, ... (TYPE_STRING is hepml's kString).
absl::StatusOr<DType> DTypeFromConfig(inference::DataType type);
inference::DataType ConfigDataType(DType dtype);  // TYPE_INVALID if none

// Parses config.pbtxt text (protobuf text format). Fields this server does not
// read (optimization, sequence_batching, model_warmup, ...) are skipped; their
// names are appended to `ignored` when given. Syntax errors are
// INVALID_ARGUMENT with the line and column.
absl::StatusOr<inference::ModelConfig> ParseModelConfig(const std::string& text,
                                                        std::vector<std::string>* ignored = nullptr);

// Default max_batch_size given to a model without one whose inputs and
// outputs all have a symbolic first dimension (Triton's default too).
inline constexpr int kDefaultMaxBatchSize = 4;

// Completes `config` for model directory `model_name` from the loaded model
// and checks it against it, the way Triton's auto-complete does:
//  - name: empty becomes `model_name`; another name is an error.
//  - platform/backend: empty becomes onnxruntime_onnx/onnxruntime; both
//    onnxruntime_onnx (or onnx) and onnxruntime (or onnx, hepml) are
//    accepted; anything else is an error.
//  - no input and no output listed and max_batch_size 0: inputs and outputs
//    come from the model; if every one of them has a symbolic first
//    dimension, max_batch_size becomes kDefaultMaxBatchSize with dynamic
//    batching on.
//  - listed inputs must all exist in the model (same dtype, compatible dims,
//    the batch dimension left out when max_batch_size > 0), and every model
//    input must be listed; listed outputs must exist; none listed: all.
//  - instance_group: none becomes one CPU instance.
absl::Status CompleteModelConfig(const std::string& model_name, const Session& session,
                                 inference::ModelConfig* config);

// JSON as Triton's HTTP /config returns it (field names as in the proto,
// int64 values as JSON numbers).
std::string ModelConfigToJson(const inference::ModelConfig& config);

// Shape a client sees for a configured input or output: [-1] + dims when
// the model batches, else dims.
std::vector<int64_t> ProtocolShape(const inference::ModelConfig& config,
                                   const google::protobuf::RepeatedField<int64_t>& dims);

}  // namespace hepml::serve
