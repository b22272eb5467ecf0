// RemoteSession's checks and conversions between hepml tensors and the Open
// Inference Protocol's gRPC messages; private to hepml_remote.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "grpc_service.pb.h"
#include "hepml/session.h"
#include "hepml/status.h"
#include "hepml/tensor.h"

namespace hepml::remote_internal {

// "FP32", "INT64", "BOOL", ... for `dtype`; empty for types the protocol
// has no name for.
std::string WireDatatype(DType dtype);
// The inverse; kUndefined for an unknown name.
DType DTypeFromWire(const std::string& datatype);

// The inputs in signature order, each checked: a known name, given once,
// every input given, the signature's dtype, rank and fixed dimensions.
// INVALID_ARGUMENT naming the input otherwise.
absl::StatusOr<Session::NamedTensors> CheckInputs(const std::vector<TensorInfo>& signature,
                                                  const Session::NamedTensors& inputs);
// The number of rows (first dimension) of a call whose inputs all have a
// free first dimension of the same size; 0 when the call cannot be batched.
int64_t BatchRows(const std::vector<TensorInfo>& signature, const Session::NamedTensors& inputs);
// Calls with equal keys have the same inputs apart from the first dimension
// and ask for the same outputs.
std::string BatchKey(const Session::NamedTensors& inputs, const std::vector<std::string>& output_names);

// The signature a server reports for its model.
absl::StatusOr<std::pair<std::vector<TensorInfo>, std::vector<TensorInfo>>> SignatureFromMetadata(
    const std::string& address, const inference::ModelMetadataResponse& meta);
// OK when the server's model has exactly the expected inputs and outputs
// (names, datatypes, ranks; fixed dimensions equal where both fix them);
// FAILED_PRECONDITION naming the server, the tensor and both sides.
absl::Status CheckMetadata(const std::string& address, const std::string& model,
                           const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                           const inference::ModelMetadataResponse& meta);

// The response's outputs in the order asked for (`requested`, or the
// signature's order when empty), each checked against the signature.
// INTERNAL naming the server and the output when the answer does not match.
absl::StatusOr<std::vector<Tensor>> ParseResponse(const std::string& address, const std::string& model,
                                                  const std::vector<TensorInfo>& outputs,
                                                  const std::vector<std::string>& requested,
                                                  const inference::ModelInferResponse& response);
// Splits each output along its first dimension into `rows` parts (views of
// the batch's buffers), one list per call.
absl::StatusOr<std::vector<std::vector<Tensor>>> SplitRows(const std::string& address,
                                                           const std::vector<Tensor>& outputs,
                                                           const std::vector<int64_t>& rows);

}  // namespace hepml::remote_internal
