#include "hepml/server.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "serve/grpc/grpc_service.h"
#include "serve/http/http_server.h"
#include "serve/http/kserve_http.h"
#include "serve/repository.h"

namespace hepml {

class Server::Impl {
 public:
  std::unique_ptr<serve::ModelRepository> repository;
  std::unique_ptr<serve::HttpServer> http;
  std::unique_ptr<serve::HttpServer> metrics;
  std::unique_ptr<serve::GrpcServer> grpc;
  std::atomic<bool> stopping{false};
  std::mutex shutdown_mu;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  HEPML_ASSIGN_OR_RETURN(impl->repository, serve::ModelRepository::Create(options));
  serve::ModelRepository* repo = impl->repository.get();
  Impl* raw = impl.get();
  auto ready = [raw, repo] { return !raw->stopping && repo->Ready(); };
  std::unique_ptr<Server> server(new Server(std::move(impl)));
  if (options.http_port >= 0) {
    auto http = serve::HttpServer::Start(options.host, options.http_port, serve::MakeKServeHttpHandler(repo, ready),
                                         static_cast<size_t>(std::max(1, options.http_max_connections)));
    if (!http.ok()) return absl::Status(http.status().code(), absl::StrCat("HTTP: ", http.status().message()));
    raw->http = std::move(*http);
  }
  if (options.grpc_port >= 0) {
    auto grpc = serve::GrpcServer::Start(options.host, options.grpc_port, repo, ready);
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
  // Requests in flight must not wait to fill a batch any more. Then the front
  // ends (they answer what is in flight, which needs the batchers), then the
  // models, then metrics.
  if (impl_->repository) impl_->repository->Flush();
  if (impl_->http) impl_->http->Shutdown();
  if (impl_->grpc) impl_->grpc->Shutdown();
  if (impl_->repository) impl_->repository->Shutdown();
  if (impl_->metrics) impl_->metrics->Shutdown();
}

}  // namespace hepml
