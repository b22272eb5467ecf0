// A KServe v2 / Triton inference client over HTTP/REST (Boost.Beast) or gRPC
// (the generated stubs of src/serve/proto), for `hepml perf` and any C++ code
// that talks to `hepml serve` or NVIDIA Triton.
//
//   auto client = InferenceClient::Create(Protocol::kGrpc, "127.0.0.1:8001");
//   auto meta = (*client)->ModelMetadata("trigger_mlp", "");
//   HEPML_RETURN_IF_ERROR((*client)->SetInferRequest({"trigger_mlp", "", {input}}));
//   HEPML_RETURN_IF_ERROR((*client)->Infer());   // as often as needed
//
// Errors are Status values: UNAVAILABLE for a server that cannot be reached
// (naming the address), DEADLINE_EXCEEDED after `ClientOptions::timeout`, and
// the server's own code and message otherwise (NOT_FOUND for an unknown
// model, as the server answers it). Over gRPC, every call but ServerLive
// waits for its connection up to the timeout (a failed connection attempt is
// made again after 0.1 s, at most 1 s apart): one attempt that fails costs
// time, not a failed call, and a server that cannot be reached answers
// ServerLive with UNAVAILABLE at once and the other calls with
// DEADLINE_EXCEEDED after the timeout.
//
// The types live in hepml::serve::client: the server has its own InferRequest.
//
// Thread safety: one client per thread. Each HTTP client holds one keep-alive
// connection; each gRPC client its own channel (and TCP connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hepml/status.h"

namespace hepml::serve::client {

enum class Protocol { kHttp, kGrpc };

struct ClientOptions {
  // Longest wait for one call (connect included).
  std::chrono::milliseconds timeout{60000};
};

struct TensorMetadata {
  std::string name;
  std::string datatype;        // "FP32", "INT64", "BYTES", ...
  std::vector<int64_t> shape;  // -1: variable (the batch dimension among them)
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// Cumulative counters of a model's statistics endpoint, summed over the
// versions asked for. Durations in nanoseconds; counts in requests (the
// compute counts too: each request of a batch is charged its batch's time).
struct ModelStatistics {
  uint64_t inference_count = 0;  // batch elements inferred
  uint64_t execution_count = 0;  // model executions (dynamic batches)
  uint64_t success_count = 0, success_ns = 0;
  uint64_t fail_count = 0, fail_ns = 0;
  uint64_t queue_count = 0, queue_ns = 0;
  uint64_t compute_input_count = 0, compute_input_ns = 0;
  uint64_t compute_infer_count = 0, compute_infer_ns = 0;
  uint64_t compute_output_count = 0, compute_output_ns = 0;
};

// One input of an inference request: raw little-endian element bytes (BYTES:
// each element as a 4-byte little-endian length and its bytes).
struct InferInput {
  std::string name;
  std::string datatype;
  std::vector<int64_t> shape;
  std::string raw;
};

struct InferRequest {
  std::string model;
  std::string version;  // empty: the server's choice
  std::vector<InferInput> inputs;
};

class InferenceClient {
 public:
  // `address` is HOST:PORT (an `http://` prefix is accepted for HTTP).
  // Nothing is sent yet; an address without a port is INVALID_ARGUMENT.
  static absl::StatusOr<std::unique_ptr<InferenceClient>> Create(Protocol protocol, const std::string& address,
                                                                 ClientOptions options = {});
  virtual ~InferenceClient() = default;

  virtual Protocol protocol() const = 0;
  const std::string& address() const { return address_; }

  // OK when the server answers live.
  virtual absl::Status ServerLive() = 0;
  virtual absl::StatusOr<ModelMetadata> GetModelMetadata(const std::string& model, const std::string& version) = 0;
  virtual absl::StatusOr<ModelStatistics> GetModelStatistics(const std::string& model, const std::string& version) = 0;

  // Serializes `request` once (HTTP: the binary tensor data extension, outputs
  // asked for as binary; gRPC: raw_input_contents) for the Infer calls after.
  virtual absl::Status SetInferRequest(const InferRequest& request) = 0;
  // Sends the request of the last SetInferRequest and waits for the answer;
  // OK when the server answered with outputs. REQUIRES: SetInferRequest.
  virtual absl::Status Infer() = 0;

 protected:
  explicit InferenceClient(std::string address) : address_(std::move(address)) {}

 private:
  std::string address_;
};

}  // namespace hepml::serve::client
