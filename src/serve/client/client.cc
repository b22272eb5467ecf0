#include "serve/client/client.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "serve/client/client_impl.h"

namespace hepml::serve::client {

absl::StatusOr<std::unique_ptr<InferenceClient>> InferenceClient::Create(Protocol protocol, const std::string& address,
                                                                         ClientOptions options) {
  std::string rest = address;
  if (protocol == Protocol::kHttp && absl::StartsWith(rest, "http://")) rest = rest.substr(7);
  if (absl::StartsWith(rest, "https://"))
    return absl::InvalidArgumentError(absl::StrCat("server address '", address, "': https is not supported"));
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  // HOST:PORT, with [v6]:PORT for IPv6 addresses.
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size())
    return absl::InvalidArgumentError(absl::StrCat("server address '", address, "': expected HOST:PORT"));
  std::string host = rest.substr(0, colon);
  std::string port = rest.substr(colon + 1);
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number <= 0 || port_number > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("server address '", address, "': port '", port, "' is not a number in 1..65535"));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (protocol == Protocol::kHttp) return internal::NewHttpClient(rest, host, port, options);
  return internal::NewGrpcClient(rest, options);
}

namespace internal {

absl::Status FromHttpStatus(int http_status, const std::string& message) {
  switch (http_status) {
    case 400: return absl::InvalidArgumentError(message);
    case 404: return absl::NotFoundError(message);
    case 408: return absl::DeadlineExceededError(message);
    case 429:
    case 503: return absl::UnavailableError(message);
    case 500: return absl::InternalError(message);
    case 501: return absl::UnimplementedError(message);
    default: return absl::UnknownError(message);
  }
}

}  // namespace internal
}  // namespace hepml::serve::client
