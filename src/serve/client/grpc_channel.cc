// See grpc_channel.h.
#include "serve/client/grpc_channel.h"

#include <cerrno>
#include <mutex>

#include "absl/base/internal/cycleclock.h"

namespace hepml::serve::client {
namespace {

// gRPC's TCP client (Debian 12 has 1.51) starts a connection with a
// non-blocking connect() and reads errno only after further calls
// (grpc_fd_create among them): if one of those overwrites errno, the
// EINPROGRESS of a connection being made is lost, and gRPC takes the
// attempt for failed, naming whatever errno then holds. One such call is
// real here: the first absl::Mutex wait of a process asks abseil's
// CycleClock for the CPU frequency, which reads
// /sys/devices/system/cpu/cpu0/tsc_freq_khz (absent on many machines, this
// one too) and leaves errno at ENOENT. When that first wait is on a lock
// inside grpc_fd_create, the attempt fails with "No such file or
// directory" (once in 30 to 150 `hepml perf` runs of 32 fresh channels
// here). Measuring the frequency once, before the first channel, takes that
// call out of the connection path for the life of the process.
void SettleLazyProcessState() {
  static std::once_flag once;
  std::call_once(once, [] {
    int saved = errno;
    (void)absl::base_internal::CycleClock::Frequency();
    errno = saved;
  });
}

}  // namespace

std::shared_ptr<grpc::Channel> NewGrpcChannel(const std::string& address, const grpc::ChannelArguments& args) {
  SettleLazyProcessState();
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace hepml::serve::client
