// The KServe v2 / Triton gRPC protocol (inference.GRPCInferenceService) on
// top of the model repository, plus the standard grpc.health.v1.Health
// service. ModelInfer uses gRPC's callback API (it starts on the thread that
// read the request and never blocks a gRPC thread waiting for a batch); the
// other calls, streams included, are synchronous.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "hepml/status.h"
#include "serve/repository.h"
#include "serve/shared_memory.h"

namespace grpc {
class Server;
}

namespace hepml::serve {

class GrpcServer {
 public:
  // Binds host:port (0: any free port). REQUIRES: `repository` and `shm`
  // (the system shared-memory regions) outlive the server.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const std::string& host, int port,
                                                           ModelRepository* repository, std::function<bool()> ready,
                                                           SharedMemoryManager* shm);
  ~GrpcServer();  // Shutdown()

  int port() const { return port_; }
  // Stops accepting calls and waits for those in flight. Idempotent.
  void Shutdown();

  class Service;

 private:
  GrpcServer() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace hepml::serve
