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

namespace hepml::serve {

// `live`/`ready` answer the health endpoints. REQUIRES: `repository`
// outlives the handler.
HttpHandler MakeKServeHttpHandler(ModelRepository* repository, std::function<bool()> ready);
HttpHandler MakeMetricsHttpHandler(ModelRepository* repository);

// A parsed HTTP infer request: the tensors, and which outputs go back binary.
struct HttpInfer {
  InferRequest request;
  bool all_binary = false;
  std::vector<bool> binary;  // per requested output
};

// Decodes the body of POST .../infer: the JSON header (all of the body, or
// its first Inference-Header-Content-Length bytes) and the binary tensor
// data after it. INVALID_ARGUMENT naming the input for anything malformed.
absl::StatusOr<HttpInfer> ParseInfer(const HttpRequest& req, const std::string& model, const std::string& version);

// The server's name, version and protocol extensions (/v2, ServerMetadata).
inline constexpr const char* kServerName = "hepml";
inline constexpr const char* kServerVersion = "0.1.0";
const std::vector<std::string>& ServerExtensions();

}  // namespace hepml::serve
