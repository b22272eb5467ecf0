// hepml::RemoteSession: a model run by an inference server, with the run
// interface of hepml::Session (session.h).
//
//   hepml::RemoteSessionOptions options;
//   options.model = "trigger_mlp";
//   options.servers = {"gpu-node-1:8001", "gpu-node-2:8001"};  // tried in order
//   options.fallback_model_path = "trigger_mlp.onnx";           // optional
//   auto remote = hepml::RemoteSession::Create(options);
//   auto outputs = (*remote)->Run({{"features", x}});           // as Session::Run
//
// The servers speak the Open Inference Protocol over gRPC
// (inference.GRPCInferenceService): `hepml serve`, NVIDIA Triton, KServe.
//
// Signature. The model's inputs and outputs (names, dtypes, ranks, fixed
// dimensions) come from `expected_inputs`/`expected_outputs`, else from the
// fallback model, else from the first server that answers. Each server's
// model metadata is checked against them before the server is first used
// (at Create for every server that answers then, later for the others): a
// server whose model has other inputs or outputs is a FAILED_PRECONDITION
// naming the server, the tensor and both signatures, returned by Create or
// by the call that first reaches that server (never hidden by the fallback).
// Inputs are checked before anything is sent: an unknown or missing input, a
// wrong dtype, rank or fixed dimension is INVALID_ARGUMENT naming the input.
//
// Failover. A call tries the servers in order. A server that cannot be
// reached, lacks the model or does not answer within the call's deadline is
// skipped by the following calls for `retry_after`. When no server answers
// the call runs on the local fallback Session if there is one (counted in
// stats().fallback), else it fails: UNAVAILABLE naming every server and its
// error, or DEADLINE_EXCEEDED after `deadline`.
//
// Coalescing. With max_batch_size > 1, calls made at the same time (from
// any threads) with the same input shapes apart from the first (batch)
// dimension and the same requested outputs are sent as one request of up to
// max_batch_size rows; a call waits at most max_delay for others to join.
// Each caller gets its own rows of the outputs (views of the batch's buffer).
// The server's own max_batch_size must be at least this one.
//
// Thread safety: every method may be called from any number of threads at
// once. Callbacks of RunAsync run on the RemoteSession's completion thread
// (or on the caller's thread for errors found before sending, and when every
// server is being skipped): keep them short, do not call Run from one (it
// would wait for the thread it blocks), and do not destroy the RemoteSession
// in one. Fallback runs happen on the same thread as the callback they feed.
// The destructor waits for the calls in flight.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "hepml/session.h"
#include "hepml/status.h"
#include "hepml/tensor.h"

namespace hepml {

struct RemoteSessionOptions {
  // The model's name and version on the servers (version empty: the
  // server's choice).
  std::string model;
  std::string model_version;
  // gRPC addresses, HOST:PORT, tried in this order.
  std::vector<std::string> servers;
  // Longest time from a Run call to its answer, all servers together.
  std::chrono::milliseconds deadline{10000};
  // How long a server that failed is skipped before it is tried again.
  std::chrono::milliseconds retry_after{1000};
  // Client-side coalescing: rows per request; 0 or 1 sends every call as
  // it comes.
  int max_batch_size = 0;
  // How long the first call of a batch waits for others.
  std::chrono::microseconds max_delay{500};
  // The same model for local execution when no server answers; empty: none.
  std::string fallback_model_path;
  SessionOptions fallback_options;
  // The signature the servers must have (see above); empty: from the
  // fallback model or the first server that answers.
  std::vector<TensorInfo> expected_inputs;
  std::vector<TensorInfo> expected_outputs;
};

// Counters since Create.
struct RemoteSessionStats {
  uint64_t calls = 0;     // Run and RunAsync calls
  uint64_t remote = 0;    // answered by a server
  uint64_t fallback = 0;  // answered by the local fallback Session
  uint64_t failed = 0;    // answered with an error
  uint64_t batches = 0;   // requests a server answered (one per batch)
  // Calls per answered request: remote / batches (0 before the first).
  double mean_batch_size() const { return batches == 0 ? 0.0 : static_cast<double>(remote) / batches; }
};

class RemoteSession {
 public:
  using NamedTensors = Session::NamedTensors;
  using Result = absl::StatusOr<std::vector<Tensor>>;
  using Callback = std::function<void(Result)>;

  // INVALID_ARGUMENT for options that cannot work (no model name, no
  // server, a malformed address); the fallback model's errors as
  // Session::Create returns them; FAILED_PRECONDITION for a server whose
  // signature differs; UNAVAILABLE when the signature has to come from a
  // server and none answers.
  static absl::StatusOr<std::unique_ptr<RemoteSession>> Create(const RemoteSessionOptions& options);
  ~RemoteSession();
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;

  // As Session::Run: `output_names` empty means every output in signature
  // order. `profile`, if given, gets the call's total time (no per-node
  // events: the nodes run elsewhere).
  Result Run(const NamedTensors& inputs, const std::vector<std::string>& output_names = {},
             RunProfile* profile = nullptr) const;
  // The same without blocking: `done` is called exactly once with the
  // outputs or the error (for a framework's external-work pattern).
  void RunAsync(NamedTensors inputs, std::vector<std::string> output_names, Callback done) const;
  std::future<Result> RunAsync(NamedTensors inputs, std::vector<std::string> output_names = {}) const;

  RemoteSessionStats stats() const;

  class Impl;

 private:
  explicit RemoteSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hepml
