// gRPC channels for hepml's clients (`hepml perf`, RemoteSession).
#ifndef HEPML_SERVE_CLIENT_GRPC_CHANNEL_H_
#define HEPML_SERVE_CLIENT_GRPC_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace hepml::serve::client {

// An insecure channel to `address` with `args`, made after the process's
// lazily measured state that gRPC's connection path would otherwise meet
// (see grpc_channel.cc) has been settled.
std::shared_ptr<grpc::Channel> NewGrpcChannel(const std::string& address, const grpc::ChannelArguments& args);

}  // namespace hepml::serve::client

#endif  // HEPML_SERVE_CLIENT_GRPC_CHANNEL_H_
