// RemoteSession (include/hepml/remote_session.h) over the generated gRPC
// stubs of src/serve/proto: one asynchronous completion queue and its thread
// for every request in flight, a coalescing thread when max_batch_size > 1,
// and the metadata check of each server on its first use.
//
// A request (one call, or a coalesced batch of calls) is a Batch. A Batch
// tries servers in order; each try is an Attempt (one ClientContext): first
// the server's metadata if it is not checked yet, then ModelInfer. The
// completion thread moves Attempts on and, when a Batch is done, splits the
// outputs and calls each caller's callback.
#include "hepml/remote_session.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc_service.grpc.pb.h"
#include "remote/signature.h"
#include "serve/client/grpc_channel.h"

namespace hepml {

namespace {

using Clock = std::chrono::steady_clock;

// One caller's call.
struct Call {
  Session::NamedTensors inputs;  // in signature order after checking
  std::vector<std::string> output_names;
  RemoteSession::Callback done;
  Clock::time_point deadline;
  int64_t rows = 0;     // first dimension (0 when not batchable)
  std::string key;      // calls with equal keys may share a request
};

struct Server {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
  std::mutex mu;
  bool checked = false;               // metadata matched the signature
  absl::Status signature_error;       // metadata did not match: permanent
  Clock::time_point skip_until{};     // failed recently
};

// gRPC takes deadlines on the system clock.
std::chrono::system_clock::time_point SystemDeadline(Clock::time_point deadline) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Clock::now());
}

}  // namespace

class RemoteSession::Impl {
 public:
  struct Batch {
    std::vector<Call> calls;
    inference::ModelInferRequest request;
    Clock::time_point deadline;
    std::vector<std::string> errors;  // per server tried, for the final message
    std::vector<bool> tried;
  };
  struct Attempt {
    enum Stage { kMetadata, kInfer } stage;
    std::shared_ptr<Batch> batch;
    size_t server = 0;
    grpc::ClientContext ctx;
    grpc::Status status;
    inference::ModelMetadataRequest meta_request;
    inference::ModelMetadataResponse meta;
    inference::ModelInferResponse response;
    std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelMetadataResponse>> meta_reader;
    std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> infer_reader;
  };

  RemoteSessionOptions options;
  std::unique_ptr<Session> fallback;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<std::unique_ptr<Server>> servers;

  grpc::CompletionQueue cq;
  std::thread cq_thread;

  // In-flight Batches (the destructor waits for zero).
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  int64_t inflight = 0;

  // Coalescing queue.
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<Call> queue;
  bool stopping = false;
  uint64_t pushed = 0;  // calls queued so far (wakes the coalescer)
  std::thread coalescer;

  std::atomic<uint64_t> calls{0}, remote{0}, fallback_count{0}, failed{0}, batches{0};

  ~Impl() {
    if (coalescer.joinable()) {
      {
        std::lock_guard<std::mutex> lock(queue_mu);
        stopping = true;
      }
      queue_cv.notify_all();
      coalescer.join();
    }
    {
      std::unique_lock<std::mutex> lock(inflight_mu);
      inflight_cv.wait(lock, [&] { return inflight == 0; });
    }
    cq.Shutdown();
    if (cq_thread.joinable()) cq_thread.join();
  }

  void Start() {
    cq_thread = std::thread([this] { CompletionLoop(); });
    if (options.max_batch_size > 1) coalescer = std::thread([this] { CoalesceLoop(); });
  }

  // ---- calls ----

  void Submit(Session::NamedTensors in, std::vector<std::string> output_names, Callback done) {
    calls.fetch_add(1, std::memory_order_relaxed);
    Call call;
    call.deadline = Clock::now() + options.deadline;
    call.done = std::move(done);
    auto checked = remote_internal::CheckInputs(inputs, in);
    if (!checked.ok()) return Finish(call, checked.status());
    for (const std::string& name : output_names) {
      if (std::none_of(outputs.begin(), outputs.end(), [&](const TensorInfo& t) { return t.name == name; }))
        return Finish(call, absl::InvalidArgumentError(absl::StrCat("unknown output '", name, "' of model '",
                                                                    options.model, "'")));
    }
    call.inputs = std::move(*checked);
    call.output_names = std::move(output_names);
    call.rows = remote_internal::BatchRows(inputs, call.inputs);
    if (options.max_batch_size > 1 && call.rows > 0 && call.rows < options.max_batch_size) {
      call.key = remote_internal::BatchKey(call.inputs, call.output_names);
      {
        std::lock_guard<std::mutex> lock(queue_mu);
        queue.push_back(std::move(call));
        ++pushed;
      }
      queue_cv.notify_one();
      return;
    }
    std::vector<Call> one;
    one.push_back(std::move(call));
    Dispatch(std::move(one));
  }

  // Takes calls off the queue into batches: a batch goes when it holds
  // max_batch_size rows, or max_delay after its first call came.
  void CoalesceLoop() {
    std::unique_lock<std::mutex> lock(queue_mu);
    for (;;) {
      queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty() && stopping) return;
      const Clock::time_point due = Clock::now() + options.max_delay;
      std::vector<Call> batch;
      int64_t rows = 0;
      const std::string key = queue.front().key;
      for (;;) {
        // Take every queued call that fits (same key, rows within the limit).
        for (auto it = queue.begin(); it != queue.end() && rows < options.max_batch_size;) {
          if (it->key == key && rows + it->rows <= options.max_batch_size) {
            rows += it->rows;
            batch.push_back(std::move(*it));
            it = queue.erase(it);
          } else {
            ++it;
          }
        }
        if (rows >= options.max_batch_size || stopping) break;
        const uint64_t seen = pushed;
        if (!queue_cv.wait_until(lock, due, [&] { return stopping || pushed != seen; })) break;
      }
      lock.unlock();
      Dispatch(std::move(batch));
      lock.lock();
    }
  }

  // Concatenates the calls' inputs (one call: as they are) into a request
  // and starts it on the first server.
  void Dispatch(std::vector<Call> group) {
    if (group.empty()) return;
    auto batch = std::make_shared<Batch>();
    batch->deadline = group.front().deadline;
    for (const Call& c : group) batch->deadline = std::min(batch->deadline, c.deadline);
    auto& req = batch->request;
    req.set_model_name(options.model);
    req.set_model_version(options.model_version);
    const Call& first = group.front();
    for (size_t i = 0; i < first.inputs.size(); ++i) {
      const Tensor& t0 = first.inputs[i].second;
      auto* in = req.add_inputs();
      in->set_name(first.inputs[i].first);
      in->set_datatype(remote_internal::WireDatatype(t0.dtype()));
      std::string* raw = req.add_raw_input_contents();
      if (group.size() == 1) {
        for (int64_t d : t0.shape()) in->add_shape(d);
        raw->assign(static_cast<const char*>(t0.raw_data()), t0.nbytes());
        continue;
      }
      int64_t rows = 0;
      size_t bytes = 0;
      for (const Call& c : group) {
        rows += c.inputs[i].second.dim(0);
        bytes += c.inputs[i].second.nbytes();
      }
      in->add_shape(rows);
      for (int d = 1; d < t0.rank(); ++d) in->add_shape(t0.dim(d));
      raw->reserve(bytes);
      for (const Call& c : group)
        raw->append(static_cast<const char*>(c.inputs[i].second.raw_data()), c.inputs[i].second.nbytes());
    }
    for (const std::string& name : first.output_names) req.add_outputs()->set_name(name);
    batch->calls = std::move(group);
    batch->tried.assign(servers.size(), false);
    {
      std::lock_guard<std::mutex> lock(inflight_mu);
      ++inflight;
    }
    NextServer(std::move(batch));
  }

  // The first server not tried yet and not skipped (when every server is
  // skipped and there is no fallback, the skipped ones are tried anyway).
  void NextServer(std::shared_ptr<Batch> batch) {
    const Clock::time_point now = Clock::now();
    if (now >= batch->deadline) {
      batch->errors.push_back(absl::StrCat("no answer within the call's deadline of ", options.deadline.count(), " ms"));
      return Conclude(std::move(batch), absl::DeadlineExceededError(""));
    }
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1 && fallback) break;
      for (size_t s = 0; s < servers.size(); ++s) {
        if (batch->tried[s]) continue;
        Server& server = *servers[s];
        bool checked;
        {
          std::lock_guard<std::mutex> lock(server.mu);
          if (!server.signature_error.ok()) {
            batch->tried[s] = true;
            // A server with the wrong model is a configuration error: the
            // caller hears of it, whatever else could answer.
            return Conclude(std::move(batch), server.signature_error, /*allow_fallback=*/false);
          }
          if (pass == 0 && now < server.skip_until) continue;
          checked = server.checked;
        }
        batch->tried[s] = true;
        auto* attempt = new Attempt;
        attempt->batch = std::move(batch);
        attempt->server = s;
        attempt->ctx.set_deadline(SystemDeadline(attempt->batch->deadline));
        if (!checked) {
          attempt->stage = Attempt::kMetadata;
          attempt->meta_request.set_name(options.model);
          attempt->meta_request.set_version(options.model_version);
          attempt->meta_reader = server.stub->AsyncModelMetadata(&attempt->ctx, attempt->meta_request, &cq);
          attempt->meta_reader->Finish(&attempt->meta, &attempt->status, attempt);
        } else {
          StartInfer(attempt);
        }
        return;
      }
    }
    Conclude(std::move(batch), absl::UnavailableError(""));
  }

  void StartInfer(Attempt* attempt) {
    attempt->stage = Attempt::kInfer;
    Server& server = *servers[attempt->server];
    attempt->infer_reader = server.stub->AsyncModelInfer(&attempt->ctx, attempt->batch->request, &cq);
    attempt->infer_reader->Finish(&attempt->response, &attempt->status, attempt);
  }

  void CompletionLoop() {
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
      std::unique_ptr<Attempt> attempt(static_cast<Attempt*>(tag));
      OnAttemptDone(std::move(attempt));
    }
  }

  static bool Retryable(grpc::StatusCode code) {
    switch (code) {
      case grpc::StatusCode::UNAVAILABLE:
      case grpc::StatusCode::NOT_FOUND:
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
      case grpc::StatusCode::CANCELLED:
      case grpc::StatusCode::ABORTED:
      case grpc::StatusCode::UNKNOWN:
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return true;
      default:
        return false;
    }
  }

  void OnAttemptDone(std::unique_ptr<Attempt> attempt) {
    Server& server = *servers[attempt->server];
    auto& batch = attempt->batch;
    const grpc::Status& st = attempt->status;
    if (!st.ok()) {
      std::string what = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                             ? absl::StrCat("no answer within the call's deadline of ", options.deadline.count(), " ms")
                             : st.error_message();
      batch->errors.push_back(absl::StrCat(server.address, ": ", what));
      if (!Retryable(st.error_code())) {
        // The server refused the request itself (a bad shape, say): another
        // server would refuse it too.
        return Conclude(std::move(batch),
                        absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                                     absl::StrCat("model '", options.model, "' at ", server.address, ": ",
                                                  st.error_message())),
                        /*allow_fallback=*/false);
      }
      {
        std::lock_guard<std::mutex> lock(server.mu);
        server.skip_until = Clock::now() + options.retry_after;
        // A server that comes back may serve another model: check again.
        server.checked = false;
      }
      if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
        return Conclude(std::move(batch), absl::DeadlineExceededError(""));
      return NextServer(std::move(batch));
    }
    if (attempt->stage == Attempt::kMetadata) {
      absl::Status match = remote_internal::CheckMetadata(server.address, options.model, inputs, outputs, attempt->meta);
      {
        std::lock_guard<std::mutex> lock(server.mu);
        if (match.ok()) server.checked = true;
        else server.signature_error = match;
      }
      if (!match.ok()) return Conclude(std::move(batch), match, /*allow_fallback=*/false);
      // Infer on the same server with a fresh context.
      auto next = std::make_unique<Attempt>();
      next->batch = std::move(batch);
      next->server = attempt->server;
      next->ctx.set_deadline(SystemDeadline(next->batch->deadline));
      StartInfer(next.release());
      return;
    }
    // Outputs back to tensors, checked against the signature, split per call.
    auto tensors = remote_internal::ParseResponse(server.address, options.model, outputs,
                                                  batch->calls.front().output_names, attempt->response);
    if (!tensors.ok()) return Conclude(std::move(batch), tensors.status(), /*allow_fallback=*/false);
    batches.fetch_add(1, std::memory_order_relaxed);
    remote.fetch_add(batch->calls.size(), std::memory_order_relaxed);
    if (batch->calls.size() == 1) {
      batch->calls.front().done(std::move(*tensors));
    } else {
      std::vector<int64_t> rows;
      for (const Call& c : batch->calls) rows.push_back(c.rows);
      auto split = remote_internal::SplitRows(server.address, *tensors, rows);
      if (!split.ok()) {
        remote.fetch_sub(batch->calls.size(), std::memory_order_relaxed);
        batches.fetch_sub(1, std::memory_order_relaxed);
        return Conclude(std::move(batch), split.status(), /*allow_fallback=*/false);
      }
      for (size_t i = 0; i < batch->calls.size(); ++i) batch->calls[i].done(std::move((*split)[i]));
    }
    Release();
  }

  // Ends a Batch that no server answered: on the fallback when allowed and
  // there is one, else with `error` (its message built from the servers'
  // errors when empty).
  void Conclude(std::shared_ptr<Batch> batch, absl::Status error, bool allow_fallback = true) {
    if (allow_fallback && fallback) {
      for (Call& c : batch->calls) {
        auto out = fallback->Run(c.inputs, c.output_names);
        if (out.ok()) fallback_count.fetch_add(1, std::memory_order_relaxed);
        else failed.fetch_add(1, std::memory_order_relaxed);
        c.done(std::move(out));
      }
      return Release();
    }
    if (error.message().empty()) {
      error = absl::Status(error.code(), absl::StrCat("model '", options.model, "': no server answered (",
                                                      absl::StrJoin(batch->errors, "; "), ")"));
    }
    for (Call& c : batch->calls) {
      failed.fetch_add(1, std::memory_order_relaxed);
      c.done(error);
    }
    Release();
  }

  void Release() {
    std::lock_guard<std::mutex> lock(inflight_mu);
    if (--inflight == 0) inflight_cv.notify_all();
  }

  void Finish(Call& call, absl::Status error) {
    failed.fetch_add(1, std::memory_order_relaxed);
    call.done(std::move(error));
  }
};

absl::StatusOr<std::unique_ptr<RemoteSession>> RemoteSession::Create(const RemoteSessionOptions& options) {
  if (options.model.empty()) return absl::InvalidArgumentError("RemoteSession: no model name");
  if (options.servers.empty() && options.fallback_model_path.empty())
    return absl::InvalidArgumentError("RemoteSession: no server and no fallback model");
  if (options.deadline.count() <= 0) return absl::InvalidArgumentError("RemoteSession: deadline must be positive");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (const std::string& address : options.servers) {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
      return absl::InvalidArgumentError(absl::StrCat("RemoteSession: server address '", address, "' is not HOST:PORT"));
    auto server = std::make_unique<Server>();
    server->address = address;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Reconnect quickly after a server restarts (gRPC's default backoff
    // starts at 1 s and grows to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(std::max<int64_t>(100, options.retry_after.count())));
    server->channel = serve::client::NewGrpcChannel(address, args);
    server->stub = inference::GRPCInferenceService::NewStub(server->channel);
    impl->servers.push_back(std::move(server));
  }
  if (!options.fallback_model_path.empty()) {
    HEPML_ASSIGN_OR_RETURN(impl->fallback, Session::Create(options.fallback_model_path, options.fallback_options));
  }
  impl->inputs = options.expected_inputs;
  impl->outputs = options.expected_outputs;
  if ((impl->inputs.empty() || impl->outputs.empty()) && impl->fallback) {
    if (impl->inputs.empty()) impl->inputs = impl->fallback->inputs();
    if (impl->outputs.empty()) impl->outputs = impl->fallback->outputs();
  }
  // Every server that answers now is checked now; the first answer gives
  // the signature when nothing else did.
  std::vector<std::string> errors;
  const auto wait = std::min<std::chrono::milliseconds>(options.deadline, std::chrono::milliseconds(5000));
  for (auto& server : impl->servers) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + wait);
    inference::ModelMetadataRequest req;
    req.set_name(options.model);
    req.set_version(options.model_version);
    inference::ModelMetadataResponse meta;
    grpc::Status st = server->stub->ModelMetadata(&ctx, req, &meta);
    if (!st.ok()) {
      errors.push_back(absl::StrCat(server->address, ": ", st.error_message()));
      server->skip_until = Clock::now() + options.retry_after;
      continue;
    }
    if (impl->inputs.empty() || impl->outputs.empty()) {
      HEPML_ASSIGN_OR_RETURN(auto sig, remote_internal::SignatureFromMetadata(server->address, meta));
      if (impl->inputs.empty()) impl->inputs = std::move(sig.first);
      if (impl->outputs.empty()) impl->outputs = std::move(sig.second);
    }
    HEPML_RETURN_IF_ERROR(remote_internal::CheckMetadata(server->address, options.model, impl->inputs,
                                                         impl->outputs, meta));
    server->checked = true;
  }
  if (impl->inputs.empty() || impl->outputs.empty())
    return absl::UnavailableError(absl::StrCat("RemoteSession: model '", options.model,
                                               "': no signature (no fallback model, no expected tensors) and no server "
                                               "answered: ", absl::StrJoin(errors, "; ")));
  impl->Start();
  return std::unique_ptr<RemoteSession>(new RemoteSession(std::move(impl)));
}

RemoteSession::RemoteSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RemoteSession::~RemoteSession() = default;

const std::vector<TensorInfo>& RemoteSession::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& RemoteSession::outputs() const { return impl_->outputs; }

RemoteSession::Result RemoteSession::Run(const NamedTensors& inputs, const std::vector<std::string>& output_names,
                                         RunProfile* profile) const {
  const Clock::time_point start = Clock::now();
  std::future<Result> result = RunAsync(inputs, output_names);
  Result out = result.get();
  if (profile != nullptr) {
    profile->events.clear();
    profile->total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  }
  return out;
}

void RemoteSession::RunAsync(NamedTensors inputs, std::vector<std::string> output_names, Callback done) const {
  impl_->Submit(std::move(inputs), std::move(output_names), std::move(done));
}

std::future<RemoteSession::Result> RemoteSession::RunAsync(NamedTensors inputs,
                                                           std::vector<std::string> output_names) const {
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> future = promise->get_future();
  impl_->Submit(std::move(inputs), std::move(output_names),
                [promise](Result r) { promise->set_value(std::move(r)); });
  return future;
}

RemoteSessionStats RemoteSession::stats() const {
  RemoteSessionStats s;
  s.calls = impl_->calls.load();
  s.remote = impl_->remote.load();
  s.fallback = impl_->fallback_count.load();
  s.failed = impl_->failed.load();
  s.batches = impl_->batches.load();
  return s;
}

}  // namespace hepml
