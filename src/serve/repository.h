// Model repository: finds models in Triton-layout folders, loads their
// versions, and runs inference requests through each version's batcher.
//
//   <repository>/<model>/config.pbtxt          (optional)
//   <repository>/<model>/<version>/model.onnx  (or default_model_filename)
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hepml/server.h"
#include "hepml/session.h"
#include "hepml/status.h"
#include "model_config.pb.h"
#include "serve/batcher.h"
#include "serve/drift.h"

namespace hepml::serve {

struct InferRequest {
  std::string model_name;
  std::string model_version;  // empty: the highest loaded version
  std::string id;
  Session::NamedTensors inputs;  // shapes as the client sent them
  std::vector<std::string> outputs;  // requested; empty: every configured output
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Session::NamedTensors outputs;
};

using InferCallback = std::function<void(absl::StatusOr<InferResponse>)>;

struct Duration {
  uint64_t count = 0;
  uint64_t ns = 0;
  void Add(uint64_t n) {
    ++count;
    ns += n;
  }
};

// Cumulative statistics of one model version (Triton's ModelStatistics).
struct ModelStats {
  uint64_t last_inference_ms = 0;
  uint64_t inference_count = 0;  // successful, each batch element counted
  uint64_t execution_count = 0;
  Duration success, fail, queue, compute_input, compute_infer, compute_output;
  struct Batch {
    Duration compute_input, compute_infer, compute_output;
  };
  std::map<int, Batch> batches;  // by executed batch size
};

// One loaded version of a model.
class ModelVersion {
 public:
  static absl::StatusOr<std::shared_ptr<ModelVersion>> Load(const std::string& path, int64_t version,
                                                            const inference::ModelConfig& config);
  ~ModelVersion();

  const std::string& name() const { return config_.name(); }
  int64_t version() const { return version_; }
  const inference::ModelConfig& config() const { return config_; }

  // Checks `request` against the config (input names, datatypes, shapes,
  // batch size, requested outputs) and queues it. `done` runs exactly once,
  // on error too, possibly before InferAsync returns.
  // With `may_run_here` a request that can run at once runs on the calling
  // thread (Batcher::Submit); Infer does so.
  void InferAsync(InferRequest request, InferCallback done, bool may_run_here = false);
  absl::StatusOr<InferResponse> Infer(InferRequest request);

  // True when the model's recent executions took at most
  // kQuickExecutionNs each (an average over the last few), so a caller that
  // must not block for long may still let a request run on its own thread
  // (InferAsync's `may_run_here`). False until the first execution.
  bool ExecutesQuickly() const {
    int64_t ns = recent_execution_ns_.load(std::memory_order_relaxed);
    return ns >= 0 && ns <= kQuickExecutionNs;
  }
  static constexpr int64_t kQuickExecutionNs = 200'000;

  ModelStats stats() const;
  // Input drift (serve/drift.h); `enabled` false when not measured.
  DriftSnapshot drift() const { return drift_ ? drift_->Snapshot() : DriftSnapshot{}; }
  // Starts measuring drift; each completed window is passed to `on_window`
  // (on the request's thread). Call before the version serves requests.
  void EnableDrift(std::unique_ptr<DriftMonitor> monitor,
                   std::function<void(const std::string& model, int64_t version, const DriftReport&)> on_window);
  size_t pending() const { return batcher_ ? batcher_->queued() : 0; }
  // Queued and later requests run without waiting for max_queue_delay.
  void Flush() {
    if (batcher_) batcher_->Flush();
  }
  // Finishes queued requests; later ones get UNAVAILABLE.
  void Shutdown();

 private:
  ModelVersion(int64_t version, inference::ModelConfig config, std::unique_ptr<Session> session);
  absl::StatusOr<BatchItem> Prepare(InferRequest& request) const;
  void RecordFailure(uint64_t ns);

  const int64_t version_;
  const inference::ModelConfig config_;
  std::unique_ptr<Session> session_;
  mutable std::mutex stats_mu_;
  ModelStats stats_;
  std::unique_ptr<DriftMonitor> drift_;
  std::function<void(const std::string&, int64_t, const DriftReport&)> on_drift_;
  // Moving average of the execution time (ns); -1 before the first.
  std::atomic<int64_t> recent_execution_ns_{-1};
  std::unique_ptr<Batcher> batcher_;  // last: stopped first
};

struct ModelIndexEntry {
  std::string name;
  std::string version;  // empty: the model as a whole
  std::string state;    // "READY", "UNAVAILABLE", or empty (found, not loaded)
  std::string reason;
};

class ModelRepository {
 public:
  // Scans the repositories and loads the models the mode asks for: every
  // model (none, poll), or `startup_models` ("*": every model; explicit).
  // A model that fails to load is logged, marked UNAVAILABLE with the
  // reason, and makes the server not ready; the others are served.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Create(const ServerOptions& options);
  ~ModelRepository();

  // Explicit mode only (else FAILED_PRECONDITION): loads, or reloads, a model
  // found in the repositories (NOT_FOUND if none has it; INVALID_ARGUMENT
  // naming the reason if it fails to load).
  absl::Status Load(const std::string& name);
  absl::Status Unload(const std::string& name);
  // Any mode: loads or reloads `name` from the repositories (the registry
  // follower uses it when an alias moves). The versions it replaces stay
  // reachable by the requests that already hold them and are drained after
  // `retire_grace_ms`, so a swap drops no request.
  absl::Status Reload(const std::string& name, int retire_grace_ms);

  // NOT_FOUND: unknown model or version; UNAVAILABLE: known, not loaded.
  absl::StatusOr<std::shared_ptr<ModelVersion>> Get(const std::string& name, const std::string& version) const;
  // Loaded versions of `name`, ascending.
  std::vector<int64_t> Versions(const std::string& name) const;
  std::vector<std::shared_ptr<ModelVersion>> Loaded() const;
  std::vector<ModelIndexEntry> Index(bool ready_only) const;
  // No model is left unavailable by a failed load (a later successful
  // load or an unload clears it) and every --load-model name was found.
  bool Ready() const;

  // Rescans the repositories: loads new and changed models, unloads removed
  // ones (poll mode calls this periodically).
  void Poll();
  // Every loaded model stops waiting to fill batches (the server is stopping
  // but still answers the requests in flight).
  void Flush();
  // Stops polling and drains every model. Idempotent.
  void Shutdown();

 private:
  struct Entry {
    std::string state;  // READY, UNAVAILABLE
    std::string reason;
    std::string signature;  // file times and sizes when loaded (poll)
    bool failed = false;    // the last load failed and nothing serves: server not ready
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;
  };

  explicit ModelRepository(ServerOptions options);
  // Model folders by name across repositories; duplicates are an error.
  absl::StatusOr<std::map<std::string, std::string>> Scan() const;
  // REQUIRES: load_mu_ held, mu_ not held. Sessions are created without mu_,
  // so requests to other models go on while a model loads.
  // The versions it replaces are moved to *replaced when given, else drained.
  absl::Status LoadModel(const std::string& name, const std::string& dir,
                         std::map<int64_t, std::shared_ptr<ModelVersion>>* replaced = nullptr);
  void UnloadModel(const std::string& name, const std::string& reason);

  const ServerOptions options_;
  std::mutex load_mu_;  // one load, unload or poll at a time
  mutable std::mutex mu_;  // models_, startup_missing_, shut_down_
  std::map<std::string, Entry> models_;
  bool startup_missing_ = false;  // a --load-model name in no repository
  bool shut_down_ = false;
  std::mutex poll_mu_;
  std::condition_variable poll_cv_;
  bool poll_stop_ = false;
  std::thread poller_;
};

// Signature of a model folder's files (names, sizes, modification times).
std::string ModelFolderSignature(const std::string& dir);

}  // namespace hepml::serve
