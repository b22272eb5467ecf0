// `hepml serve --model-repository DIR [--model-repository DIR ...]
//  [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
//  [--model-control-mode none|poll|explicit] [--load-model NAME ...]
//  [--repository-poll-secs 15] [--host 127.0.0.1]
//  [--registry DIR | --registry-metadata URI --registry-blobs URI]
//  [--registry-model [NAME=]REF ...] [--registry-cache DIR] [--registry-poll-secs 5]`
//
// Registry references (MODEL, MODEL@VERSION, MODEL@ALIAS, MODEL@tag:TAG:RUN)
// are pulled and served under their registry version numbers; aliases and
// latest versions are followed as they move. With a registry, the HTTP port
// also answers the registry's REST API (/api/v1, /api/2.0/mlflow).
//
// Serves the repositories' ONNX models over the KServe v2 / Triton protocol
// until SIGTERM or SIGINT, then answers the requests in flight and exits 0.
// Prints one line per front end, as Triton does:
//   Started HTTPService at 127.0.0.1:8000
//   Started GRPCInferenceService at 127.0.0.1:8001
//   Started Metrics Service at 127.0.0.1:8002
// (with the bound port when a port is 0). A port of -1 leaves that front end off.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "hepml/server.h"

namespace hepml::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> repositories;
  std::string host = "127.0.0.1";
  int http_port = 8000;
  int grpc_port = 8001;
  int metrics_port = 8002;
  std::string control_mode = "none";
  std::vector<std::string> load_models;
  int poll_secs = 15;
  std::string registry_dir;
  std::string registry_metadata;
  std::string registry_blobs;
  std::vector<std::string> registry_models;
  std::string registry_cache;
  int registry_poll_secs = 5;
  int64_t drift_window = 0;
  int64_t drift_reference_events = 10000;
  int64_t http_request_timeout_ms = 60000;
  int64_t http_idle_timeout_ms = 300000;
};

int Serve(const ServeArgs& args) {
  ServerOptions options;
  options.model_repositories = args.repositories;
  options.host = args.host;
  options.http_port = args.http_port;
  options.grpc_port = args.grpc_port;
  options.metrics_port = args.metrics_port;
  options.repository_poll_secs = args.poll_secs;
  options.registry_dir = args.registry_dir;
  options.registry_metadata = args.registry_metadata;
  options.registry_blobs = args.registry_blobs;
  options.registry_models = args.registry_models;
  options.registry_cache_dir = args.registry_cache;
  options.registry_poll_secs = args.registry_poll_secs;
  options.drift_window = args.drift_window;
  options.drift_reference_events = args.drift_reference_events;
  options.http_request_timeout_ms = args.http_request_timeout_ms;
  options.http_idle_timeout_ms = args.http_idle_timeout_ms;
  if (args.repositories.empty() && args.registry_models.empty()) {
    PrintError("serve", "nothing to serve: give --model-repository DIR or --registry-model REF");
    return kExitUsage;
  }
  if (!args.registry_models.empty() && args.registry_dir.empty() && args.registry_metadata.empty()) {
    PrintError("serve", "--registry-model needs --registry DIR (or --registry-metadata URI --registry-blobs URI)");
    return kExitUsage;
  }
  if (args.control_mode == "none") {
    options.model_control_mode = ModelControlMode::kNone;
  } else if (args.control_mode == "poll") {
    options.model_control_mode = ModelControlMode::kPoll;
  } else if (args.control_mode == "explicit") {
    options.model_control_mode = ModelControlMode::kExplicit;
  } else {
    PrintError("serve", absl::StrCat("--model-control-mode '", args.control_mode, "': expected none, poll or explicit"));
    return kExitUsage;
  }
  if (!args.load_models.empty() && options.model_control_mode != ModelControlMode::kExplicit) {
    PrintError("serve", "--load-model needs --model-control-mode explicit");
    return kExitUsage;
  }
  options.startup_models = args.load_models;
  static std::mutex log_mu;
  options.log = [](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    std::cerr << "hepml serve: " << line << std::endl;
  };

  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Memory: glibc gives each thread that allocates an arena of its own, up
  // to 8 per core; with a thread per HTTP connection and gRPC's threads, the
  // freed memory spread over many arenas is kept, and the resident size
  // creeps up under long load. One arena per core is as many as can be in
  // use at once.
  mallopt(M_ARENA_MAX, static_cast<int>(std::max(2u, std::thread::hardware_concurrency())));

  auto server = Server::Start(options);
  if (!server.ok()) {
    PrintError("serve", server.status().message());
    return kExitFailure;
  }
  if ((*server)->grpc_port() >= 0)
    std::cout << "Started GRPCInferenceService at " << args.host << ":" << (*server)->grpc_port() << "\n";
  if ((*server)->http_port() >= 0)
    std::cout << "Started HTTPService at " << args.host << ":" << (*server)->http_port() << "\n";
  if ((*server)->metrics_port() >= 0)
    std::cout << "Started Metrics Service at " << args.host << ":" << (*server)->metrics_port() << "\n";
  std::cout << std::flush;

  // Between signals, every 10 s the free memory of every arena goes
  // back to the system (malloc_trim releases whole free pages anywhere in a
  // heap, not only at its top), so the resident size follows the live data
  // rather than the high-water mark of the busiest moment.
  constexpr int kTrimIntervalS = 10;
  int sig = 0;
  for (;;) {
    timespec wait{kTrimIntervalS, 0};
    sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig > 0) break;
    if (errno == EAGAIN) malloc_trim(0);
  }
  std::cerr << "hepml serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": finishing requests in flight" << std::endl;
  (*server)->Shutdown();
  server->reset();
  std::cerr << "hepml serve: stopped" << std::endl;
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "Serve ONNX models over the KServe v2 / Triton protocol (HTTP, gRPC)");
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("--model-repository", args->repositories, "Triton-layout model repository (repeatable)");
  cmd->add_option("--host", args->host, "Address to listen on");
  cmd->add_option("--http-port", args->http_port, "HTTP/REST port (0: any free port, -1: off)")
      ->check(CLI::Range(-1, 65535));
  cmd->add_option("--grpc-port", args->grpc_port, "gRPC port (0: any free port, -1: off)")->check(CLI::Range(-1, 65535));
  cmd->add_option("--metrics-port", args->metrics_port, "Prometheus metrics port (0: any free port, -1: off)")
      ->check(CLI::Range(-1, 65535));
  cmd->add_option("--model-control-mode", args->control_mode, "none, poll or explicit");
  cmd->add_option("--load-model", args->load_models, "Model to load at start in explicit mode ('*': all; repeatable)");
  cmd->add_option("--repository-poll-secs", args->poll_secs, "Seconds between repository scans in poll mode")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--registry", args->registry_dir,
                  "hepml registry folder: serves --registry-model references and the registry's REST API under /api/");
  cmd->add_option("--registry-metadata", args->registry_metadata, "Registry metadata URI (sqlite:///..., postgresql://...)");
  cmd->add_option("--registry-blobs", args->registry_blobs, "Registry blob store URI (file:///..., root://...)");
  cmd->add_option("--registry-model", args->registry_models,
                  "[NAME=]MODEL[@VERSION|@ALIAS|@tag:TAG:RUN] from the registry (repeatable); aliases are followed");
  cmd->add_option("--registry-cache", args->registry_cache,
                  "Folder the registry versions are pulled into (default: a temporary one)");
  cmd->add_option("--registry-poll-secs", args->registry_poll_secs,
                  "Seconds between resolving the registry references again (0: never)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--drift-window", args->drift_window,
                  "Measure input drift: compare every window of this many events with the reference, feature "
                  "by feature (PSI), per model (0: off; config.pbtxt parameter hepml.drift_window overrides); "
                  "with a registry each window is recorded for `hepml jobs` drift:MODEL triggers")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--drift-reference-events", args->drift_reference_events,
                  "Events forming the drift reference: the first ones served, or rows of the model's "
                  "hepml.drift_reference .npz")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--http-request-timeout-ms", args->http_request_timeout_ms,
                  "An HTTP request whose header takes this long from its first byte, or whose body pauses "
                  "this long, is answered 408 and its connection closed; a response the client stops "
                  "reading for this long is dropped (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--http-idle-timeout-ms", args->http_idle_timeout_ms,
                  "An HTTP keep-alive connection idle this long is closed (0: never)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([=] { *exit_code = Serve(*args); });
}

}  // namespace hepml::cli
