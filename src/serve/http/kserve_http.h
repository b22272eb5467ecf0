// The KServe v2 HTTP/REST protocol (with Triton's extensions: binary tensor
// data, model repository, configuration, statistics) on top of the model
// repository, and the Prometheus /metrics endpoint.
//
// Errors are answered as Triton does: 404 for an unknown model or version,
// 503 when the model is not available (unloaded, queue full, shutting
// down), 400 for anything else, with a body {"error": "..."}.
#pragma once

#include <functional>

#include "serve/http/http_server.h"
#include "serve/repository.h"
#include "serve/shared_memory.h"

namespace hepml::serve {

// `live`/`ready` answer the health endpoints; `shm` holds the registered
// system shared-memory regions (v2/systemsharedmemory/...). REQUIRES:
// `repository` and `shm` outlive the handler.
HttpHandler MakeKServeHttpHandler(ModelRepository* repository, std::function<bool()> ready,
                                  SharedMemoryManager* shm);
HttpHandler MakeMetricsHttpHandler(ModelRepository* repository);

// A parsed HTTP infer request: the tensors, and which outputs go back binary.
struct HttpInfer {
  InferRequest request;
  bool all_binary = false;
  std::vector<bool> binary;  // per requested output
  std::vector<SharedMemoryOutput> shm_outputs;  // outputs written to shared memory
};

// Decodes the body of POST .../infer: the JSON header (all of the body, or
// its first Inference-Header-Content-Length bytes) and the binary tensor
// data after it. INVALID_ARGUMENT naming the input for anything malformed.
// Tensors with shared_memory_* parameters are read from (inputs) or bound to
// (outputs) regions of `shm`; without `shm` they are refused.
absl::StatusOr<HttpInfer> ParseInfer(const HttpRequest& req, const std::string& model, const std::string& version,
                                     const SharedMemoryManager* shm = nullptr);

// The server's name, version and protocol extensions (/v2, ServerMetadata).
inline constexpr const char* kServerName = "hepml";
inline constexpr const char* kServerVersion = "0.1.0";
const std::vector<std::string>& ServerExtensions();

}  // namespace hepml::serve
