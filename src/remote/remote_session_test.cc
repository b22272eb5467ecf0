// RemoteSession against real `hepml serve` processes on free loopback ports:
// results equal to a local Session, async calls, coalescing, failover when a
// server is killed mid-run, a hanging (stopped) server, wrong tensors and a
// server whose model has another signature.
#include "hepml/remote_session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace hepml {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kModel = std::string(HEPML_SOURCE_DIR) + "/examples/models/trigger_mlp.onnx";
const std::string kRepository = std::string(HEPML_SOURCE_DIR) + "/examples/model_repository";
const std::string kHepml = std::string(HEPML_BINARY_DIR) + "/src/cli/hepml";

// `hepml serve` as a child process; its gRPC port is read from its
// "Started GRPCInferenceService at HOST:PORT" line.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& repository) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      // The server goes with the test even when the test dies without
      // running its destructors.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], 1);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      close(out[0]);
      execl(kHepml.c_str(), kHepml.c_str(), "serve", "--model-repository", repository.c_str(), "--http-port", "-1",
            "--grpc-port", "0", "--metrics-port", "-1", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    char line[512];
    const std::string started = "Started GRPCInferenceService at ";
    while (fgets(line, sizeof line, f) != nullptr) {
      const std::string text = line;
      const size_t at = text.find(started);
      if (at != std::string::npos) {
        address_ = text.substr(at + started.size());
        while (!address_.empty() && std::isspace(static_cast<unsigned char>(address_.back()))) address_.pop_back();
        break;
      }
    }
    // Keep draining its stdout so the server never blocks on a full pipe.
    reader_ = std::thread([f] {
      char buf[512];
      while (fgets(buf, sizeof buf, f) != nullptr) {
      }
      fclose(f);
    });
  }
  ~ServeProcess() {
    Kill();
    if (reader_.joinable()) reader_.join();
  }
  const std::string& address() const { return address_; }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGSTOP, then wait until every thread has stopped: the kernel stops a
  // process's threads one by one, and on a loaded machine a thread can still
  // answer a request sent right after kill().
  void Stop() {
    kill(pid_, SIGSTOP);
    const std::string task = "/proc/" + std::to_string(pid_) + "/task";
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      bool all_stopped = true;
      int threads = 0;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(task, ec)) {
        std::ifstream stat(entry.path() / "stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        const size_t paren = text.rfind(')');
        if (paren == std::string::npos || paren + 2 >= text.size()) continue;  // the thread ended
        ++threads;
        const char state = text[paren + 2];
        if (state != 'T' && state != 't') all_stopped = false;
      }
      if (threads > 0 && all_stopped) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ADD_FAILURE() << "hepml serve did not stop within 30 s of SIGSTOP";
  }
  void Continue() { kill(pid_, SIGCONT); }

 private:
  pid_t pid_ = -1;
  std::string address_;
  std::thread reader_;
};

// A port nothing listens on: bound, then closed.
std::string ClosedAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

Tensor Features(int64_t rows, float seed) {
  Tensor t = Tensor::Empty(DType::kFloat32, {rows, 16});
  for (int64_t i = 0; i < t.size(); ++i) t.mutable_data<float>()[i] = std::sin(seed + 0.37f * i);
  return t;
}

void ExpectNear(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.dtype(), want.dtype());
  ASSERT_EQ(ShapeToString(got.shape()), ShapeToString(want.shape()));
  for (int64_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got.data<float>()[i], want.data<float>()[i], 1e-5) << i;
}

class RemoteSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto local = Session::Create(kModel);
    ASSERT_TRUE(local.ok()) << local.status();
    local_ = std::move(*local);
  }
  Tensor Expected(const Tensor& x) {
    auto out = local_->Run({{"features", x}});
    EXPECT_TRUE(out.ok()) << out.status();
    return (*out)[0];
  }
  std::unique_ptr<Session> local_;
};

TEST_F(RemoteSessionTest, RunMatchesLocalSessionAndChecksTheSignature) {
  ServeProcess server(kRepository);
  ASSERT_FALSE(server.address().empty());
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  // The signature came from the server.
  ASSERT_EQ((*remote)->inputs().size(), 1u);
  EXPECT_EQ((*remote)->inputs()[0].name, "features");
  EXPECT_EQ((*remote)->outputs()[0].name, "class_probabilities");
  Tensor x = Features(3, 0.5f);
  RunProfile profile;
  auto out = (*remote)->Run({{"features", x}}, {}, &profile);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  ExpectNear((*out)[0], Expected(x));
  EXPECT_GT(profile.total_ns, 0);
  auto named = (*remote)->Run({{"features", x}}, {"class_probabilities"});
  ASSERT_TRUE(named.ok()) << named.status();
  RemoteSessionStats stats = (*remote)->stats();
  EXPECT_EQ(stats.calls, 2u);
  EXPECT_EQ(stats.remote, 2u);
  EXPECT_EQ(stats.fallback, 0u);
  EXPECT_EQ(stats.batches, 2u);
}

TEST_F(RemoteSessionTest, AsyncCallbackAndFuture) {
  ServeProcess server(kRepository);
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  Tensor a = Features(2, 1.0f), b = Features(5, 2.0f);
  std::promise<RemoteSession::Result> got;
  (*remote)->RunAsync({{"features", a}}, {}, [&](RemoteSession::Result r) { got.set_value(std::move(r)); });
  std::future<RemoteSession::Result> fb = (*remote)->RunAsync({{"features", b}});
  auto ra = got.get_future().get();
  auto rb = fb.get();
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  ExpectNear((*ra)[0], Expected(a));
  ExpectNear((*rb)[0], Expected(b));
}

TEST_F(RemoteSessionTest, CoalescesConcurrentCallsAndSplitsResultsPerCaller) {
  ServeProcess server(kRepository);
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  options.max_batch_size = 64;
  // Long enough that callers released together share requests even on a
  // busy machine.
  options.max_delay = std::chrono::milliseconds(200);
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  constexpr int kThreads = 24;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  std::vector<std::string> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Different rows per caller (1-3), different values.
      Tensor x = Features(1 + t % 3, static_cast<float>(t));
      auto want = local_->Run({{"features", x}});
      start.arrive_and_wait();
      auto got = (*remote)->Run({{"features", x}});
      if (!got.ok() || !want.ok()) {
        errors[t] = got.status().ToString();
        ++wrong;
        return;
      }
      const Tensor& g = (*got)[0];
      const Tensor& w = (*want)[0];
      if (ShapeToString(g.shape()) != ShapeToString(w.shape())) {
        ++wrong;
        return;
      }
      for (int64_t i = 0; i < g.size(); ++i)
        if (std::fabs(g.data<float>()[i] - w.data<float>()[i]) > 1e-5) {
          ++wrong;
          return;
        }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0) << errors[0];
  RemoteSessionStats stats = (*remote)->stats();
  EXPECT_EQ(stats.calls, static_cast<uint64_t>(kThreads));
  EXPECT_EQ(stats.remote, static_cast<uint64_t>(kThreads));
  EXPECT_LT(stats.batches, stats.remote);
  EXPECT_GT(stats.mean_batch_size(), 1.0);
}

TEST_F(RemoteSessionTest, WrongTensorsAreClearErrors) {
  ServeProcess server(kRepository);
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto unknown = (*remote)->Run({{"jets", Features(1, 0)}});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown input 'jets'"));
  auto dtype = (*remote)->Run({{"features", Tensor::Zeros(DType::kInt64, {1, 16})}});
  EXPECT_EQ(dtype.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dtype.status().message(), HasSubstr("input 'features' is int64"));
  auto dims = (*remote)->Run({{"features", Tensor::Zeros(DType::kFloat32, {2, 15})}});
  EXPECT_EQ(dims.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dims.status().message(), HasSubstr("[2,15]"));
  auto missing = (*remote)->Run({});
  EXPECT_THAT(missing.status().message(), HasSubstr("input 'features' missing"));
  auto output = (*remote)->Run({{"features", Features(1, 0)}}, {"scores"});
  EXPECT_THAT(output.status().message(), HasSubstr("unknown output 'scores'"));
  // More rows than the server's max_batch_size (64): the server's refusal,
  // passed on with the server's address.
  auto big = (*remote)->Run({{"features", Features(65, 0)}});
  EXPECT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr(server.address()));
  EXPECT_EQ((*remote)->stats().failed, 6u);
}

// A repository whose "trigger_mlp" is another model: Identity from
// features[batch,16] to scores[batch,16].
std::string OtherModelRepository() {
  const fs::path root = fs::temp_directory_path() / ("hepml-remote-test-" + std::to_string(getpid()));
  fs::create_directories(root / "trigger_mlp" / "1");
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("other");
  for (auto [vi, name] : {std::pair{g->add_input(), "features"}, std::pair{g->add_output(), "scores"}}) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("batch");
    tt->mutable_shape()->add_dim()->set_dim_value(16);
  }
  auto* n = g->add_node();
  n->set_op_type("Identity");
  n->add_input("features");
  n->add_output("scores");
  std::ofstream(root / "trigger_mlp" / "1" / "model.onnx", std::ios::binary) << m.SerializeAsString();
  std::ofstream(root / "trigger_mlp" / "config.pbtxt")
      << "name: \"trigger_mlp\"\nbackend: \"onnxruntime\"\nmax_batch_size: 64\n"
         "input [ { name: \"features\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n"
         "output [ { name: \"scores\" data_type: TYPE_FP32 dims: [ 16 ] } ]\n";
  return root.string();
}

TEST_F(RemoteSessionTest, ServerWithAnotherSignatureIsAClearError) {
  const std::string repo = OtherModelRepository();
  ServeProcess server(repo);
  ASSERT_FALSE(server.address().empty());
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  options.fallback_model_path = kModel;  // the signature the server must have
  auto remote = RemoteSession::Create(options);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(remote.status().message(), HasSubstr(server.address()));
  EXPECT_THAT(remote.status().message(), HasSubstr("outputs [scores], expected [class_probabilities]"));

  // The same with the signature given explicitly.
  RemoteSessionOptions explicit_sig;
  explicit_sig.model = "trigger_mlp";
  explicit_sig.servers = {server.address()};
  explicit_sig.expected_inputs = local_->inputs();
  explicit_sig.expected_outputs = local_->outputs();
  auto again = RemoteSession::Create(explicit_sig);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr("expected [class_probabilities]"));

  // A server that did not answer at Create (stopped) and answers later: the
  // call that first reaches it gets the mismatch, not the fallback's result.
  server.Stop();
  options.servers = {server.address()};
  options.deadline = std::chrono::milliseconds(300);
  options.retry_after = std::chrono::milliseconds(0);
  auto late = RemoteSession::Create(options);
  ASSERT_TRUE(late.ok()) << late.status();
  server.Continue();
  RemoteSession::Result out = absl::UnavailableError("not run");
  // Until the server has caught up with its stalled connection the call may
  // still time out (and fall back); it must end with the mismatch.
  for (int i = 0; i < 50 && out.status().code() != absl::StatusCode::kFailedPrecondition; ++i) {
    out = (*late)->Run({{"features", Features(1, 0)}});
    ASSERT_TRUE(out.ok() || out.status().code() == absl::StatusCode::kFailedPrecondition) << out.status();
  }
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(out.status().message(), HasSubstr("expected [class_probabilities]"));
  fs::remove_all(repo);
}

class KilledServerTest : public RemoteSessionTest, public ::testing::WithParamInterface<int> {};

// Without coalescing (0) and with batches of up to 8 calls.
TEST_P(KilledServerTest, FailsOverToTheNextServerAndThenToTheFallback) {
  ServeProcess first(kRepository), second(kRepository);
  ASSERT_FALSE(first.address().empty());
  ASSERT_FALSE(second.address().empty());
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {first.address(), second.address()};
  options.fallback_model_path = kModel;
  options.fallback_options.num_threads = 1;
  options.deadline = std::chrono::milliseconds(5000);
  options.max_batch_size = GetParam();
  options.max_delay = std::chrono::milliseconds(1);
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  constexpr int kThreads = 4, kCalls = 60;
  std::atomic<int> done{0}, bad{0};
  std::string first_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        Tensor x = Features(2, static_cast<float>(t * 1000 + i));
        auto got = (*remote)->Run({{"features", x}});
        auto want = local_->Run({{"features", x}});
        bool ok = got.ok() && want.ok();
        for (int64_t k = 0; ok && k < (*got)[0].size(); ++k)
          ok = std::fabs((*got)[0].data<float>()[k] - (*want)[0].data<float>()[k]) <= 1e-5;
        if (!ok) {
          ++bad;
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = got.status().ToString();
        }
        ++done;
      }
    });
  }
  // Kill the first server a third of the way in, the second two thirds in.
  while (done < kThreads * kCalls / 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  first.Kill();
  const uint64_t remote_before_second_kill = (*remote)->stats().remote;
  while (done < 2 * kThreads * kCalls / 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  second.Kill();
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0) << first_error;
  RemoteSessionStats stats = (*remote)->stats();
  EXPECT_EQ(stats.calls, static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_EQ(stats.remote + stats.fallback, stats.calls);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_GT(stats.remote, remote_before_second_kill);  // the second server answered after the first died
  EXPECT_GT(stats.fallback, 0u);                        // and the fallback after both
}

INSTANTIATE_TEST_SUITE_P(Coalescing, KilledServerTest, ::testing::Values(0, 8));

TEST_F(RemoteSessionTest, HangingServerIsADeadlineErrorOrTheFallback) {
  ServeProcess server(kRepository);
  ASSERT_FALSE(server.address().empty());
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {server.address()};
  options.deadline = std::chrono::milliseconds(300);
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  options.fallback_model_path = kModel;
  auto with_fallback = RemoteSession::Create(options);
  ASSERT_TRUE(with_fallback.ok()) << with_fallback.status();
  server.Stop();  // accepts connections, answers nothing
  auto start = std::chrono::steady_clock::now();
  auto out = (*remote)->Run({{"features", Features(1, 0)}});
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  EXPECT_THAT(out.status().message(), HasSubstr(server.address()));
  EXPECT_THAT(out.status().message(), HasSubstr("300 ms"));
  EXPECT_LT(waited, std::chrono::seconds(30));  // it does come back
  auto fell_back = (*with_fallback)->Run({{"features", Features(1, 0)}});
  ASSERT_TRUE(fell_back.ok()) << fell_back.status();
  ExpectNear((*fell_back)[0], Expected(Features(1, 0)));
  EXPECT_EQ((*with_fallback)->stats().fallback, 1u);
  server.Continue();
}

TEST_F(RemoteSessionTest, NoServerNeeded) {
  RemoteSessionOptions options;
  options.model = "trigger_mlp";
  options.servers = {ClosedAddress()};
  // Without a signature source, nothing answers: UNAVAILABLE naming the address.
  auto none = RemoteSession::Create(options);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr(options.servers[0]));
  options.fallback_model_path = kModel;
  auto remote = RemoteSession::Create(options);
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto out = (*remote)->Run({{"features", Features(4, 0)}});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear((*out)[0], Expected(Features(4, 0)));
  EXPECT_EQ((*remote)->stats().fallback, 1u);
  EXPECT_EQ((*remote)->stats().remote, 0u);
}

TEST(RemoteSessionOptionsTest, BadOptions) {
  RemoteSessionOptions options;
  options.servers = {"127.0.0.1:1"};
  EXPECT_THAT(RemoteSession::Create(options).status().message(), HasSubstr("no model name"));
  options.model = "m";
  options.servers = {"localhost"};
  EXPECT_THAT(RemoteSession::Create(options).status().message(), HasSubstr("'localhost' is not HOST:PORT"));
  options.servers = {};
  EXPECT_THAT(RemoteSession::Create(options).status().message(), HasSubstr("no server and no fallback"));
  options.servers = {"127.0.0.1:1"};
  options.fallback_model_path = "/nonexistent/model.onnx";
  EXPECT_THAT(RemoteSession::Create(options).status().message(), HasSubstr("/nonexistent/model.onnx"));
}

}  // namespace
}  // namespace hepml
