// The floor under `hepml serve`'s gRPC latency: a unary ModelInfer call of
// the KServe v2 service against a server that runs no model and answers
// every request with one canned output (as large as the trigger MLP's), so
// what is measured is the gRPC stacks of client and server, the loopback
// socket and the thread wake-ups, nothing of hepml's.
//
//   grpc_floor_bench [--calls N] [--input-bytes B] [--output-bytes B] [--deadline]
//                    [--port P --model M --input NAME] [--serve sync|callback|mixed]
//
// Each server API (sync; callback; callback with the minimal stack; mixed:
// ModelInfer by callback, the rest sync) runs in a child process of its own (as `hepml serve` and `hepml perf` are
// two processes), forked before gRPC starts in this one. Against each, each
// client API (blocking stub, callback stub, async stub on a completion queue
// of its own), with default channel arguments and with "lean" ones (minimal
// stack, no retries), sends N calls one after another over one channel. One
// line per pair: p50, p90 and p99 in microseconds. Not a test; see
// docs/benchmarks.md.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "grpc_service.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

void Answer(const inference::ModelInferRequest& req, int output_bytes, inference::ModelInferResponse* res) {
  res->set_model_name(req.model_name());
  res->set_model_version("1");
  auto* o = res->add_outputs();
  o->set_name("output");
  o->set_datatype("FP32");
  o->add_shape(1);
  o->add_shape(output_bytes / 4);
  res->add_raw_output_contents(std::string(static_cast<size_t>(output_bytes), '\0'));
}

class SyncService final : public inference::GRPCInferenceService::Service {
 public:
  explicit SyncService(int output_bytes) : output_bytes_(output_bytes) {}
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* req,
                          inference::ModelInferResponse* res) override {
    Answer(*req, output_bytes_, res);
    return grpc::Status::OK;
  }

 private:
  int output_bytes_;
};

class CallbackService final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit CallbackService(int output_bytes) : output_bytes_(output_bytes) {}
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* res) override {
    Answer(*req, output_bytes_, res);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  int output_bytes_;
};

// ModelInfer by callback, the other methods (unused here) synchronous: a
// server with both kinds runs the sync API's thread pool beside the
// callback threads.
class MixedService final
    : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<inference::GRPCInferenceService::Service> {
 public:
  explicit MixedService(int output_bytes) : output_bytes_(output_bytes) {}
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* res) override {
    Answer(*req, output_bytes_, res);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  int output_bytes_;
};

enum class ServerApi { kSync, kCallback, kCallbackLean, kMixed };

// The child: serves until `control` is closed, after writing its port to `port_out`.
[[noreturn]] void Serve(ServerApi api, int output_bytes, int port_out, int control, bool text_port = false) {
  SyncService sync(output_bytes);
  CallbackService cb(output_bytes);
  MixedService mixed(output_bytes);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  if (api == ServerApi::kCallbackLean) builder.AddChannelArgument(GRPC_ARG_MINIMAL_STACK, 1);
  if (api == ServerApi::kSync) {
    builder.RegisterService(&sync);
  } else if (api == ServerApi::kMixed) {
    builder.RegisterService(&mixed);
    if (getenv("FLOOR_HEALTH")) grpc::EnableDefaultHealthCheckService(true);
  } else {
    builder.RegisterService(&cb);
  }
  auto server = builder.BuildAndStart();
  if (!server) _exit(1);
  if (text_port) {
    std::printf("%d\n", port);
    std::fflush(stdout);
  } else if (write(port_out, &port, sizeof port) != sizeof port) {
    _exit(1);
  }
  char c;
  while (read(control, &c, 1) > 0) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  _exit(0);
}

struct Child {
  pid_t pid;
  int port;
  int control;
};

Child Fork(ServerApi api, int output_bytes) {
  int port_pipe[2], control_pipe[2];
  if (pipe(port_pipe) != 0 || pipe(control_pipe) != 0) std::exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    close(port_pipe[0]);
    close(control_pipe[1]);
    Serve(api, output_bytes, port_pipe[1], control_pipe[0]);
  }
  close(port_pipe[1]);
  close(control_pipe[0]);
  int port = 0;
  if (read(port_pipe[0], &port, sizeof port) != sizeof port) {
    std::fprintf(stderr, "a server did not start\n");
    std::exit(1);
  }
  close(port_pipe[0]);
  return {pid, port, control_pipe[1]};
}

double Percentile(const std::vector<double>& sorted, double p) {
  return sorted[static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1))];
}

enum class ClientApi { kBlocking, kCallback, kAsync };

// --port P --model M --input NAME: the clients only, against a server
// already running on 127.0.0.1:P (`hepml serve`), with an FP32 [1, B/4]
// input NAME of model M. --serve API: only the server, in this process (its
// port printed on stdout; it stops when stdin closes), to watch it from
// outside (CPU time, perf, strace). --serve must come last.
std::string model_name = "floor", input_name = "input";
bool deadline = false;  // --deadline: each call with a 60 s deadline (as `hepml perf` sets one)

void Measure(const char* server_api, int port, ClientApi api, bool lean, int calls, int input_bytes) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (lean) {
    args.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  }
  auto channel = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(),
                                           args);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest req;
  req.set_model_name(model_name);
  auto* in = req.add_inputs();
  in->set_name(input_name);
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(input_bytes / 4);
  req.add_raw_input_contents(std::string(static_cast<size_t>(input_bytes), '\0'));
  std::vector<double> us;
  us.reserve(static_cast<size_t>(calls));
  std::mutex mu;
  std::condition_variable cv;
  grpc::CompletionQueue cq;
  int warmup = std::max(100, calls / 10);
  for (int i = 0; i < warmup + calls; ++i) {
    inference::ModelInferResponse res;
    grpc::ClientContext ctx;
    if (deadline) ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto t0 = Clock::now();
    grpc::Status st;
    if (api == ClientApi::kAsync) {
      auto rpc = stub->AsyncModelInfer(&ctx, req, &cq);
      rpc->Finish(&res, &st, &rpc);
      void* tag = nullptr;
      bool ok = false;
      if (!cq.Next(&tag, &ok) || !ok) st = grpc::Status(grpc::StatusCode::INTERNAL, "completion queue");
    } else if (api == ClientApi::kCallback) {
      bool done = false;
      stub->async()->ModelInfer(&ctx, &req, &res, [&](grpc::Status s) {
        std::lock_guard<std::mutex> lock(mu);
        st = std::move(s);
        done = true;
        cv.notify_one();
      });
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
    } else {
      st = stub->ModelInfer(&ctx, req, &res);
    }
    auto t1 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "call failed: %s\n", st.error_message().c_str());
      std::exit(1);
    }
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  const char* client = api == ClientApi::kAsync ? "async" : api == ClientApi::kCallback ? "callback" : "blocking";
  std::printf("server %-13s client %-8s%s calls %d  p50 %.1f us  p90 %.1f us  p99 %.1f us\n", server_api, client,
              lean ? " (lean)" : "       ", calls, Percentile(us, 50), Percentile(us, 90),
              Percentile(us, 99));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 20000, input_bytes = 64, output_bytes = 20, port = 0;
  for (int i = 1; i < argc; i += 2) {
    if (!std::strcmp(argv[i], "--deadline")) {
      deadline = true;
      --i;
    } else if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: a value is missing\n", argv[i]);
      return 2;
    } else if (!std::strcmp(argv[i], "--serve")) {
      std::string api = argv[i + 1];
      if (api != "sync" && api != "callback" && api != "mixed") {
        std::fprintf(stderr, "--serve %s: expected sync, callback or mixed\n", api.c_str());
        return 2;
      }
      // One server in this process: its port on stdout, until stdin closes.
      Serve(api == "sync" ? ServerApi::kSync : api == "mixed" ? ServerApi::kMixed : ServerApi::kCallback, output_bytes,
            STDOUT_FILENO, STDIN_FILENO, /*text_port=*/true);
    } else if (!std::strcmp(argv[i], "--port")) {
      port = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--model")) {
      model_name = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--input")) {
      input_name = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--calls")) {
      calls = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--input-bytes")) {
      input_bytes = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--output-bytes")) {
      output_bytes = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--calls N] [--input-bytes B] [--output-bytes B] [--deadline] [--port P --model M --input NAME] [--serve sync|callback|mixed]\n", argv[0]);
      return 2;
    }
  }
  if (calls < 1) calls = 1;
  if (port > 0) {
    for (ClientApi api : {ClientApi::kBlocking, ClientApi::kCallback, ClientApi::kAsync})
      for (bool lean_client : {false, true}) Measure("at port", port, api, lean_client, calls, input_bytes);
    return 0;
  }
  // The servers start before gRPC does in this process (no fork after it).
  Child sync = Fork(ServerApi::kSync, output_bytes), callback = Fork(ServerApi::kCallback, output_bytes),
        lean = Fork(ServerApi::kCallbackLean, output_bytes), mixed = Fork(ServerApi::kMixed, output_bytes);
  for (const auto& [name, child] : {std::pair{"sync", sync}, std::pair{"callback", callback},
                                    std::pair{"callback-lean", lean}, std::pair{"mixed", mixed}}) {
    for (ClientApi api : {ClientApi::kBlocking, ClientApi::kCallback, ClientApi::kAsync})
      for (bool lean_client : {false, true}) Measure(name, child.port, api, lean_client, calls, input_bytes);
  }
  // Each child holds the control pipes of those forked before it: all are
  // closed before any is waited for.
  for (const Child& c : {sync, callback, lean, mixed}) close(c.control);
  for (const Child& c : {sync, callback, lean, mixed}) waitpid(c.pid, nullptr, 0);
  return 0;
}
