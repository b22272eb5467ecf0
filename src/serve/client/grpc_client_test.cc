// The gRPC client and the errno that gRPC's TCP client reads late (see
// grpc_client.cc): once a client exists, abseil's CPU frequency is measured,
// so the first absl::Mutex wait of the process (which asks for it) can no
// longer leave errno at ENOENT between a connect() and gRPC's look at errno,
// and fail a connection that is being made.
#include <cerrno>

#include "absl/base/internal/cycleclock.h"
#include "gtest/gtest.h"
#include "serve/client/client.h"

namespace hepml::serve::client {
namespace {

TEST(GrpcClientTest, CreatingAClientTakesTheFrequencyProbeOffTheConnectionPath) {
  // Nothing listens there; the channel does not connect before a call.
  auto c = InferenceClient::Create(Protocol::kGrpc, "127.0.0.1:1");
  ASSERT_TRUE(c.ok()) << c.status();
  errno = EINPROGRESS;
  (void)absl::base_internal::CycleClock::Frequency();
  EXPECT_EQ(errno, EINPROGRESS) << "errno now: " << errno;
}

TEST(GrpcClientTest, ServerLiveFailsAtOnceWhenNothingListens) {
  ClientOptions options;
  options.timeout = std::chrono::milliseconds(30000);
  auto c = InferenceClient::Create(Protocol::kGrpc, "127.0.0.1:1", options);
  ASSERT_TRUE(c.ok()) << c.status();
  absl::Status st = (*c)->ServerLive();
  // UNAVAILABLE from the refused connection, not DEADLINE_EXCEEDED after
  // 30 s: ServerLive does not wait for a connection.
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("127.0.0.1:1"), std::string::npos) << st;
}

}  // namespace
}  // namespace hepml::serve::client
