#include "hepml/server.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"

#include "absl/strings/str_cat.h"
#include "jobs/triggers.h"
#include "serve/grpc/grpc_service.h"
#include "serve/http/http_server.h"
#include "serve/http/kserve_http.h"
#include "serve/registry_models.h"
#include "serve/repository.h"
#include "serve/shared_memory.h"
#include "registry/rest_api.h"

namespace hepml {

class Server::Impl {
 public:
  ~Impl() {
    StopFollower();
    StopDriftReporter();
  }

  // Records drift windows in the registry from a thread of its own, so a
  // request never waits on the registry's database. At most kMaxQueued
  // reports wait; older ones are dropped (the newest matters).
  void StartDriftReporter() {
    drift_reporter = std::thread([this] {
      std::unique_lock<std::mutex> lock(drift_mu);
      while (true) {
        drift_cv.wait(lock, [this] { return drift_stop || !drift_queue.empty(); });
        if (drift_queue.empty()) break;
        auto [model, psi] = std::move(drift_queue.front());
        drift_queue.pop_front();
        lock.unlock();
        auto id = jobs::ReportDrift(*registry_models->registry(), model, psi);
        if (!id.ok() && log) log(absl::StrCat("model '", model, "': drift report not recorded: ", id.status().message()));
        lock.lock();
      }
    });
  }
  void QueueDrift(const std::string& model, double psi) {
    {
      std::lock_guard<std::mutex> lock(drift_mu);
      if (drift_stop) return;
      if (drift_queue.size() >= kMaxQueued) drift_queue.pop_front();
      drift_queue.emplace_back(model, psi);
    }
    drift_cv.notify_one();
  }
  // Records what is queued, then stops.
  void StopDriftReporter() {
    {
      std::lock_guard<std::mutex> lock(drift_mu);
      drift_stop = true;
    }
    drift_cv.notify_all();
    if (drift_reporter.joinable()) drift_reporter.join();
  }

  // Resolves the registry references again every `secs` until stopped.
  void StartFollower(int secs, int retire_grace_ms) {
    follower = std::thread([this, secs, retire_grace_ms] {
      std::unique_lock<std::mutex> lock(follow_mu);
      while (!follow_stop) {
        follow_cv.wait_for(lock, std::chrono::seconds(secs));
        if (follow_stop) break;
        lock.unlock();
        serve::ModelRepository* repo = repository.get();
        registry_models->Refresh(
            [repo, retire_grace_ms](const std::string& name) { return repo->Reload(name, retire_grace_ms); });
        lock.lock();
      }
    });
  }
  void StopFollower() {
    {
      std::lock_guard<std::mutex> lock(follow_mu);
      follow_stop = true;
    }
    follow_cv.notify_all();
    if (follower.joinable()) follower.join();
  }

  // Declared first: the repository serves from its cache folder.
  std::unique_ptr<serve::RegistryModels> registry_models;
  std::unique_ptr<registry::RestApi> registry_api;
  std::unique_ptr<serve::ModelRepository> repository;
  serve::SharedMemoryManager shared_memory;  // before the front ends that use it
  std::unique_ptr<serve::HttpServer> http;
  std::unique_ptr<serve::HttpServer> metrics;
  std::unique_ptr<serve::GrpcServer> grpc;
  std::atomic<bool> stopping{false};
  std::mutex shutdown_mu;
  std::mutex follow_mu;
  std::condition_variable follow_cv;
  bool follow_stop = false;
  std::thread follower;
  static constexpr size_t kMaxQueued = 1000;
  std::function<void(const std::string&)> log;
  std::mutex drift_mu;
  std::condition_variable drift_cv;
  std::deque<std::pair<std::string, double>> drift_queue;
  bool drift_stop = false;
  std::thread drift_reporter;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  ServerOptions effective = options;
  if (serve::RegistryModels::Wanted(options)) {
    HEPML_ASSIGN_OR_RETURN(impl->registry_models, serve::RegistryModels::Create(options));
    effective.model_repositories.push_back(impl->registry_models->cache_dir());
    if (options.model_control_mode == ModelControlMode::kExplicit)
      for (const std::string& name : impl->registry_models->served_names()) effective.startup_models.push_back(name);
    registry::RestApiOptions api;
    api.staging_dir = (std::filesystem::path(impl->registry_models->cache_dir()) / ".staging").string();
    impl->registry_api = std::make_unique<registry::RestApi>(impl->registry_models->registry(), api);
    impl->log = options.log;
    impl->StartDriftReporter();
    Impl* raw = impl.get();
    auto user = options.on_drift;
    effective.on_drift = [raw, user](const std::string& model, int64_t version, double psi) {
      raw->QueueDrift(model, psi);
      if (user) user(model, version, psi);
    };
  }
  HEPML_ASSIGN_OR_RETURN(impl->repository, serve::ModelRepository::Create(effective));
  if (impl->registry_models && options.registry_poll_secs > 0)
    impl->StartFollower(options.registry_poll_secs, options.retire_grace_ms);
  serve::ModelRepository* repo = impl->repository.get();
  Impl* raw = impl.get();
  auto ready = [raw, repo] { return !raw->stopping && repo->Ready(); };
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  if (options.http_port >= 0) {
    serve::HttpHandler kserve = serve::MakeKServeHttpHandler(repo, ready, &raw->shared_memory);
    registry::RestApi* api = raw->registry_api.get();
    // With a registry, its REST API shares the HTTP port under /api/.
    serve::HttpFileHandler handler = [kserve, api](const serve::HttpRequest& req, serve::HttpResponse& res,
                                                   serve::HttpFileReply* file) {
      if (api && absl::StartsWith(std::string(req.target()), "/api/"))
        api->Handle(req, res, file);
      else
        kserve(req, res);
    };
    serve::HttpServerOptions http_options;
    http_options.max_connections = static_cast<size_t>(std::max(1, options.http_max_connections));
    http_options.request_timeout_ms = options.http_request_timeout_ms;
    http_options.idle_timeout_ms = options.http_idle_timeout_ms;
    auto http = serve::HttpServer::Start(options.host, options.http_port, handler, http_options);
    if (!http.ok()) return absl::Status(http.status().code(), absl::StrCat("HTTP: ", http.status().message()));
    raw->http = std::move(*http);
  }
  if (options.grpc_port >= 0) {
    auto grpc = serve::GrpcServer::Start(options.host, options.grpc_port, repo, ready, &raw->shared_memory);
    if (!grpc.ok()) return absl::Status(grpc.status().code(), absl::StrCat("gRPC: ", grpc.status().message()));
    raw->grpc = std::move(*grpc);
  }
  if (options.metrics_port >= 0) {
    auto metrics = serve::HttpServer::Start(options.host, options.metrics_port, serve::MakeMetricsHttpHandler(repo));
    if (!metrics.ok())
      return absl::Status(metrics.status().code(), absl::StrCat("metrics: ", metrics.status().message()));
    raw->metrics = std::move(*metrics);
  }
  return server;
}

int Server::http_port() const { return impl_->http ? impl_->http->port() : -1; }
int Server::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : -1; }
int Server::metrics_port() const { return impl_->metrics ? impl_->metrics->port() : -1; }

void Server::Shutdown() {
  std::lock_guard<std::mutex> lock(impl_->shutdown_mu);
  impl_->stopping = true;
  impl_->StopFollower();
  // Requests in flight must not wait to fill a batch any more. Then the front
  // ends (they answer what is in flight, which needs the batchers), then the
  // models, then metrics.
  if (impl_->repository) impl_->repository->Flush();
  if (impl_->http) impl_->http->Shutdown();
  if (impl_->grpc) impl_->grpc->Shutdown();
  if (impl_->repository) impl_->repository->Shutdown();
  impl_->StopDriftReporter();
  if (impl_->metrics) impl_->metrics->Shutdown();
}

}  // namespace hepml
