// The two protocol implementations of InferenceClient (client.h); private to
// the client library.
#pragma once

#include <memory>
#include <string>

#include "serve/client/client.h"

namespace hepml::serve::client::internal {

// `address` as given by the caller (for messages); host and port split.
std::unique_ptr<InferenceClient> NewHttpClient(const std::string& address, const std::string& host,
                                               const std::string& port, const ClientOptions& options);
std::unique_ptr<InferenceClient> NewGrpcClient(const std::string& address, const ClientOptions& options);

// An error status with the code that matches an HTTP status of the KServe v2
// protocol (404 NOT_FOUND, 503 UNAVAILABLE, 400 INVALID_ARGUMENT, ...).
absl::Status FromHttpStatus(int http_status, const std::string& message);

}  // namespace hepml::serve::client::internal
