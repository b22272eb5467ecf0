// hepml::Server: a Triton-compatible inference server (KServe v2 protocol
// over HTTP/REST and gRPC, Prometheus metrics) for ONNX models in a
// Triton-layout model repository, with a dynamic batcher per model.
//
//   hepml::ServerOptions options;
//   options.model_repositories = {"/models"};
//   options.http_port = 0;  // any free port
//   auto server = hepml::Server::Start(options);
//   if (!server.ok()) ...   // the status names what failed (a port, a repository)
//   int port = (*server)->http_port();
//   ...
//   (*server)->Shutdown();  // finishes requests in flight
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hepml/status.h"

namespace hepml {

enum class ModelControlMode {
  kNone,      // load every model at start; no load/unload requests
  kPoll,      // as kNone, then rescan the repositories periodically
  kExplicit,  // load only startup_models; clients load and unload
};

struct ServerOptions {
  std::vector<std::string> model_repositories;
  std::string host = "127.0.0.1";
  // 0: any free port (read it back from the Server); -1: not started.
  int http_port = 8000;
  int grpc_port = 8001;
  int metrics_port = 8002;
  ModelControlMode model_control_mode = ModelControlMode::kNone;
  // kExplicit: models loaded at start ("*": all).
  std::vector<std::string> startup_models;
  int repository_poll_secs = 15;
  // Open HTTP connections served at once (one thread each); a connection
  // beyond them is answered 503 and closed.
  int http_max_connections = 1024;
  // Slow clients: an HTTP request whose header is not received within
  // `http_request_timeout_ms` of its first byte, or whose body pauses that
  // long, is answered 408 and its connection closed; a response the client
  // stops reading for that long is dropped; a keep-alive connection idle for
  // `http_idle_timeout_ms` is closed. 0: no limit.
  int64_t http_request_timeout_ms = 60000;
  int64_t http_idle_timeout_ms = 300000;
  // Log lines ("model 'x' version 1 loaded", load errors); default stderr.
  std::function<void(const std::string&)> log;

  // Models served from a hepml registry (include/hepml/registry.h): the
  // registry is `registry_dir` (embedded: DIR/registry.db, DIR/blobs) or the
  // two URIs `registry_metadata` and `registry_blobs`. Each of
  // `registry_models` is "REF" or "NAME=REF" (served as NAME; default the
  // registry model's name) with REF as Registry::ResolveRef reads it: MODEL
  // (its latest version), MODEL@VERSION, MODEL@ALIAS, MODEL@tag:TAG:RUN. The
  // resolved version is pulled into `registry_cache_dir` (default: a
  // temporary folder removed at shutdown) and served under its registry
  // version number. Every `registry_poll_secs` (0: never) each reference is
  // resolved again; when it names another version (an alias moved, the
  // latest grew), that version is pulled and loaded, then swapped in, and the
  // one it replaces keeps answering the requests that reached it for
  // `retire_grace_ms` before it is drained. A reference that does not resolve
  // at start stops Start with the reason. With a registry, the HTTP port also
  // answers the registry's REST API (/api/v1/..., /api/2.0/mlflow/...).
  std::string registry_dir;
  std::string registry_metadata;
  std::string registry_blobs;
  std::vector<std::string> registry_models;
  std::string registry_cache_dir;
  int registry_poll_secs = 5;
  int retire_grace_ms = 2000;
  // Input drift: with `drift_window` > 0 (or a model's config.pbtxt
  // parameter hepml.drift_window) every model compares the inputs of each
  // window of that many events with a reference, feature by feature, by the
  // population stability index (PSI; < 0.1 stable, > 0.25 a significant
  // shift). The reference is the first `drift_reference_events` events served
  // (parameter hepml.drift_reference_events) or the .npz file named by the
  // parameter hepml.drift_reference (one array per input, relative to the
  // model folder). The largest PSI of the last window is the metric
  // hepml_input_drift_psi and GET /v2/models/NAME/drift; with a registry,
  // each window is also recorded as a drift report of the served model name
  // (what `hepml jobs` drift:MODEL triggers read).
  int64_t drift_window = 0;
  int64_t drift_reference_events = 10000;
  // Called with each completed window's largest PSI, on a request thread:
  // keep it short.
  std::function<void(const std::string& model, int64_t version, double psi)> on_drift;
};

class Server {
 public:
  // Loads the models and starts the front ends. A model that fails to load
  // does not stop the server (it is UNAVAILABLE and the server not ready);
  // an unusable port or a missing repository does.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();  // Shutdown()

  // Bound ports (-1 for a front end not started).
  int http_port() const;
  int grpc_port() const;
  int metrics_port() const;

  // Stops accepting requests, answers those in flight, drains the batchers.
  // Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hepml
