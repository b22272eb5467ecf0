// InferenceClient over gRPC: inference.GRPCInferenceService through the
// stubs generated from src/serve/proto, one channel per client.
#include <grpcpp/grpcpp.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "grpc_service.grpc.pb.h"
#include "serve/client/client_impl.h"
#include "serve/client/grpc_channel.h"

namespace hepml::serve::client::internal {
namespace {

void AddDuration(const inference::StatisticDuration& d, uint64_t* count, uint64_t* ns) {
  *count += d.count();
  *ns += d.ns();
}

class GrpcClient final : public InferenceClient {
 public:
  GrpcClient(const std::string& address, const ClientOptions& options) : InferenceClient(address), options_(options) {
    grpc::ChannelArguments args;
    // A connection of its own, not one shared with the process's other
    // channels to the same address: N clients are N connections.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // No transparent retries: each call is sent once (a load generator
    // counts what fails), and the retry filter's copy of every request
    // message is not made.
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    // A connection attempt that fails is tried again after 0.1 s, at most
    // 1 s later (gRPC's defaults: 1 s, growing to 120 s): the calls waiting
    // for the connection (see WaitForReady) wait that long.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = NewGrpcChannel(address, args);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  Protocol protocol() const override { return Protocol::kGrpc; }

  absl::Status ServerLive() override {
    inference::ServerLiveRequest req;
    inference::ServerLiveResponse res;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    HEPML_RETURN_IF_ERROR(Check(stub_->ServerLive(&ctx, req, &res), "ServerLive"));
    if (!res.live()) return absl::UnavailableError(absl::StrCat("server at ", address(), " is not live"));
    return absl::OkStatus();
  }

  absl::StatusOr<ModelMetadata> GetModelMetadata(const std::string& model, const std::string& version) override {
    inference::ModelMetadataRequest req;
    req.set_name(model);
    req.set_version(version);
    inference::ModelMetadataResponse res;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    WaitForReady(ctx);
    HEPML_RETURN_IF_ERROR(Check(stub_->ModelMetadata(&ctx, req, &res), "ModelMetadata"));
    ModelMetadata meta;
    meta.name = res.name();
    meta.platform = res.platform();
    meta.versions.assign(res.versions().begin(), res.versions().end());
    for (int which = 0; which < 2; ++which) {
      const auto& list = which == 0 ? res.inputs() : res.outputs();
      for (const auto& t : list) {
        TensorMetadata tm{t.name(), t.datatype(), {t.shape().begin(), t.shape().end()}};
        (which == 0 ? meta.inputs : meta.outputs).push_back(std::move(tm));
      }
    }
    return meta;
  }

  absl::StatusOr<ModelStatistics> GetModelStatistics(const std::string& model, const std::string& version) override {
    inference::ModelStatisticsRequest req;
    req.set_name(model);
    req.set_version(version);
    inference::ModelStatisticsResponse res;
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    WaitForReady(ctx);
    HEPML_RETURN_IF_ERROR(Check(stub_->ModelStatistics(&ctx, req, &res), "ModelStatistics"));
    ModelStatistics s;
    for (const auto& m : res.model_stats()) {
      s.inference_count += m.inference_count();
      s.execution_count += m.execution_count();
      const auto& is = m.inference_stats();
      AddDuration(is.success(), &s.success_count, &s.success_ns);
      AddDuration(is.fail(), &s.fail_count, &s.fail_ns);
      AddDuration(is.queue(), &s.queue_count, &s.queue_ns);
      AddDuration(is.compute_input(), &s.compute_input_count, &s.compute_input_ns);
      AddDuration(is.compute_infer(), &s.compute_infer_count, &s.compute_infer_ns);
      AddDuration(is.compute_output(), &s.compute_output_count, &s.compute_output_ns);
    }
    return s;
  }

  absl::Status SetInferRequest(const InferRequest& request) override {
    infer_.Clear();
    infer_.set_model_name(request.model);
    infer_.set_model_version(request.version);
    for (const InferInput& in : request.inputs) {
      auto* t = infer_.add_inputs();
      t->set_name(in.name);
      t->set_datatype(in.datatype);
      for (int64_t d : in.shape) t->add_shape(d);
      infer_.add_raw_input_contents(in.raw);
    }
    have_request_ = true;
    return absl::OkStatus();
  }

  absl::Status Infer() override {
    if (!have_request_) return absl::FailedPreconditionError("Infer before SetInferRequest");
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    WaitForReady(ctx);
    grpc::Status st = stub_->ModelInfer(&ctx, infer_, &response_);
    if (!st.ok())
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                          absl::StrCat("inference of model '", infer_.model_name(), "' failed: ", Describe(st)));
    return absl::OkStatus();
  }

 private:
  void SetDeadline(grpc::ClientContext& ctx) const { ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout); }

  // Every call but ServerLive waits for the channel's connection, up to its
  // deadline, rather than failing at once while a failed connection attempt
  // waits for its retry (gRPC's default for a call is to fail at once then).
  // So a fresh connection whose first attempt fails and whose retry works
  // costs the 0.1 s backoff, not failed requests. ServerLive asks whether
  // the server is there now: it fails at once when nothing answers.
  static void WaitForReady(grpc::ClientContext& ctx) { ctx.set_wait_for_ready(true); }

  std::string Describe(const grpc::Status& st) const {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE)
      return absl::StrCat("gRPC server at ", address(), ": ", st.error_message());
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      return absl::StrCat("no answer from ", address(), " within ", options_.timeout.count(), " ms");
    return st.error_message();
  }

  absl::Status Check(const grpc::Status& st, const char* rpc) const {
    if (st.ok()) return absl::OkStatus();
    // UNAVAILABLE and DEADLINE_EXCEEDED name the address; the server's own
    // errors (an unknown model) are passed on as they are.
    std::string message = Describe(st);
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE || st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      message = absl::StrCat(rpc, ": ", message);
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), message);
  }

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  inference::ModelInferRequest infer_;
  inference::ModelInferResponse response_;
  bool have_request_ = false;
};

}  // namespace

std::unique_ptr<InferenceClient> NewGrpcClient(const std::string& address, const ClientOptions& options) {
  return std::make_unique<GrpcClient>(address, options);
}

}  // namespace hepml::serve::client::internal
