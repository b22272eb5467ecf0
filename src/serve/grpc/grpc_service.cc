#include "serve/grpc/grpc_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpc_service.grpc.pb.h"
#include "serve/http/kserve_http.h"
#include "serve/model_config.h"
#include "serve/shared_memory.h"
#include "serve/tensor_codec.h"

namespace hepml::serve {
namespace {

grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

template <typename T, typename Repeated>
absl::StatusOr<Tensor> FromRepeated(const std::string& what, DType dtype, const Shape& shape, const Repeated& values,
                                    const char* field) {
  int64_t n = NumElements(shape);
  if (values.size() != n)
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " holds ", values.size(),
                                                   " elements but shape ", ShapeToString(shape), " needs ", n));
  Tensor t = Tensor::Empty(dtype, shape);
  T* out = t.mutable_data<T>();
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(values.Get(static_cast<int>(i)));
  return t;
}

absl::StatusOr<Tensor> FromContents(const std::string& what, DType dtype, const Shape& shape,
                                    const inference::InferTensorContents& c) {
  switch (dtype) {
    case DType::kBool: return FromRepeated<bool>(what, dtype, shape, c.bool_contents(), "bool_contents");
    case DType::kInt8: return FromRepeated<int8_t>(what, dtype, shape, c.int_contents(), "int_contents");
    case DType::kInt16: return FromRepeated<int16_t>(what, dtype, shape, c.int_contents(), "int_contents");
    case DType::kInt32: return FromRepeated<int32_t>(what, dtype, shape, c.int_contents(), "int_contents");
    case DType::kInt64: return FromRepeated<int64_t>(what, dtype, shape, c.int64_contents(), "int64_contents");
    case DType::kUInt8: return FromRepeated<uint8_t>(what, dtype, shape, c.uint_contents(), "uint_contents");
    case DType::kUInt16: return FromRepeated<uint16_t>(what, dtype, shape, c.uint_contents(), "uint_contents");
    case DType::kUInt32: return FromRepeated<uint32_t>(what, dtype, shape, c.uint_contents(), "uint_contents");
    case DType::kUInt64: return FromRepeated<uint64_t>(what, dtype, shape, c.uint64_contents(), "uint64_contents");
    case DType::kFloat32: return FromRepeated<float>(what, dtype, shape, c.fp32_contents(), "fp32_contents");
    case DType::kFloat64: return FromRepeated<double>(what, dtype, shape, c.fp64_contents(), "fp64_contents");
    case DType::kString: {
      int64_t n = NumElements(shape);
      if (c.bytes_contents_size() != n)
        return absl::InvalidArgumentError(absl::StrCat(what, ": bytes_contents holds ", c.bytes_contents_size(),
                                                       " elements but shape ", ShapeToString(shape), " needs ", n));
      Tensor t = Tensor::Empty(dtype, shape);
      for (int64_t i = 0; i < n; ++i) t.mutable_data<std::string>()[i] = c.bytes_contents(static_cast<int>(i));
      return t;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", ProtocolDataTypeName(dtype), " data must be sent in raw_input_contents"));
  }
}

// The shared_memory_* parameters of a tensor, if it has any (as the HTTP
// front end reads them).
absl::StatusOr<std::optional<SharedMemoryRef>> SharedMemoryParams(
    const std::string& what, const google::protobuf::Map<std::string, inference::InferParameter>& params) {
  auto region = params.find("shared_memory_region");
  auto size = params.find("shared_memory_byte_size");
  auto offset = params.find("shared_memory_offset");
  if (region == params.end() && size == params.end() && offset == params.end()) return std::nullopt;
  if (region == params.end() || size == params.end())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": shared_memory_region and shared_memory_byte_size must be given together"));
  if (region->second.parameter_choice_case() != inference::InferParameter::kStringParam)
    return absl::InvalidArgumentError(absl::StrCat(what, ": shared_memory_region must be a string_param"));
  SharedMemoryRef ref;
  ref.region = region->second.string_param();
  auto integer = [&](const inference::InferParameter& p, const char* field, uint64_t* value) -> absl::Status {
    if (p.parameter_choice_case() != inference::InferParameter::kInt64Param || p.int64_param() < 0)
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", field, " must be a non-negative int64_param"));
    *value = static_cast<uint64_t>(p.int64_param());
    return absl::OkStatus();
  };
  HEPML_RETURN_IF_ERROR(integer(size->second, "shared_memory_byte_size", &ref.byte_size));
  if (offset != params.end()) HEPML_RETURN_IF_ERROR(integer(offset->second, "shared_memory_offset", &ref.offset));
  return ref;
}

struct ParsedRequest {
  InferRequest request;
  std::vector<SharedMemoryOutput> shm_outputs;
};

absl::StatusOr<ParsedRequest> FromProto(const inference::ModelInferRequest& req, const SharedMemoryManager& shm) {
  ParsedRequest parsed;
  InferRequest& out = parsed.request;
  out.model_name = req.model_name();
  out.model_version = req.model_version();
  out.id = req.id();
  bool raw = req.raw_input_contents_size() > 0;
  // raw_input_contents holds one entry per input, or (as tritonclient sends
  // it when some inputs are in shared memory) one per input not in shared
  // memory, in order.
  int in_shm = 0;
  for (const auto& in : req.inputs()) in_shm += in.parameters().count("shared_memory_region") > 0;
  bool raw_skips_shm = in_shm > 0 && req.raw_input_contents_size() == req.inputs_size() - in_shm;
  if (raw && req.raw_input_contents_size() != req.inputs_size() && !raw_skips_shm)
    return absl::InvalidArgumentError(absl::StrCat("raw_input_contents holds ", req.raw_input_contents_size(),
                                                   " tensors for ", req.inputs_size(), " inputs"));
  int next_raw = 0;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    std::string what = absl::StrCat("input '", in.name(), "'");
    HEPML_ASSIGN_OR_RETURN(DType dtype, DTypeFromProtocolName(in.datatype()));
    HEPML_ASSIGN_OR_RETURN(Shape shape, CheckedShape(what, {in.shape().begin(), in.shape().end()}));
    HEPML_ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> shm_ref, SharedMemoryParams(what, in.parameters()));
    if (shm_ref) {
      // With one raw_input_contents entry per input, its entry (empty, as a
      // rule) is skipped.
      if (in.has_contents())
        return absl::InvalidArgumentError(absl::StrCat(what, " has both shared memory parameters and contents"));
      HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromSharedMemory(what, dtype, shape, shm, *shm_ref));
      out.inputs.emplace_back(in.name(), std::move(t));
      if (!raw_skips_shm) ++next_raw;
    } else if (raw) {
      if (in.has_contents())
        return absl::InvalidArgumentError(absl::StrCat(what, " has contents while raw_input_contents is used"));
      HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromRaw(what, dtype, shape, req.raw_input_contents(next_raw++)));
      out.inputs.emplace_back(in.name(), std::move(t));
    } else {
      HEPML_ASSIGN_OR_RETURN(Tensor t, FromContents(what, dtype, shape, in.contents()));
      out.inputs.emplace_back(in.name(), std::move(t));
    }
  }
  for (const auto& o : req.outputs()) {
    if (o.parameters().count("classification"))
      return absl::InvalidArgumentError("the classification extension is not supported");
    std::string what = absl::StrCat("output '", o.name(), "'");
    HEPML_ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> shm_ref, SharedMemoryParams(what, o.parameters()));
    if (shm_ref) {
      HEPML_ASSIGN_OR_RETURN(SharedMemoryView view, shm.Slice(what, shm_ref->region, shm_ref->offset, shm_ref->byte_size));
      parsed.shm_outputs.push_back({o.name(), *shm_ref, std::move(view)});
    }
    out.outputs.push_back(o.name());
  }
  return parsed;
}

// An output bound to shared memory is written there; the response carries
// its metadata and an empty raw_output_contents entry (the indices of the
// others stay aligned with `outputs`).
absl::Status ToProto(const InferResponse& r, const std::vector<SharedMemoryOutput>& shm_outputs,
                     inference::ModelInferResponse* out) {
  out->set_model_name(r.model_name);
  out->set_model_version(r.model_version);
  out->set_id(r.id);
  for (const auto& [name, t] : r.outputs) {
    auto* o = out->add_outputs();
    o->set_name(name);
    o->set_datatype(ProtocolDataTypeName(t.dtype()));
    for (int64_t d : t.shape()) o->add_shape(d);
    const SharedMemoryOutput* shm_out = nullptr;
    for (const SharedMemoryOutput& s : shm_outputs)
      if (s.name == name) shm_out = &s;
    if (shm_out) {
      std::string raw = TensorToRaw(t);
      HEPML_RETURN_IF_ERROR(WriteSharedMemoryOutput(*shm_out, raw));
      auto& params = *o->mutable_parameters();
      params["shared_memory_region"].set_string_param(shm_out->ref.region);
      params["shared_memory_offset"].set_int64_param(static_cast<int64_t>(shm_out->ref.offset));
      params["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(raw.size()));
      out->add_raw_output_contents();
    } else {
      out->add_raw_output_contents(TensorToRaw(t));
    }
  }
  return absl::OkStatus();
}

void FillDuration(const Duration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

}  // namespace

class GrpcServer::Service final
    : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<inference::GRPCInferenceService::Service> {
 public:
  Service(ModelRepository* repo, std::function<bool()> ready, SharedMemoryManager* shm)
      : repo_(repo), ready_(std::move(ready)), shm_(shm) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* res) override {
    res->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* res) override {
    res->set_ready(ready_());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* req,
                          inference::ModelReadyResponse* res) override {
    res->set_ready(repo_->Get(req->name(), req->version()).ok());
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* res) override {
    res->set_name(kServerName);
    res->set_version(kServerVersion);
    for (const std::string& e : ServerExtensions()) res->add_extensions(e);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* req,
                             inference::ModelMetadataResponse* res) override {
    auto m = repo_->Get(req->name(), req->version());
    if (!m.ok()) return ToGrpc(m.status());
    const auto& config = (*m)->config();
    res->set_name(config.name());
    for (int64_t v : repo_->Versions(config.name())) res->add_versions(absl::StrCat(v));
    res->set_platform(config.platform());
    for (const auto& in : config.input()) {
      auto* t = res->add_inputs();
      t->set_name(in.name());
      t->set_datatype(ProtocolDataTypeName(*DTypeFromConfig(in.data_type())));
      for (int64_t d : ProtocolShape(config, in.dims())) t->add_shape(d);
    }
    for (const auto& out : config.output()) {
      auto* t = res->add_outputs();
      t->set_name(out.name());
      t->set_datatype(ProtocolDataTypeName(*DTypeFromConfig(out.data_type())));
      for (int64_t d : ProtocolShape(config, out.dims())) t->add_shape(d);
    }
    return grpc::Status::OK;
  }
  // A unary inference is a callback (reactor) call: it starts on the gRPC
  // thread that read the request, with no hand-off to a thread pool. A model
  // that executes quickly runs right there when an instance is idle and
  // nothing is queued (the answer goes out from the same thread); otherwise
  // the request queues in the batcher and the batcher's thread finishes the
  // call, so no gRPC thread waits for a batch. (The ModelVersion outlives
  // the callback: it answers every queued request before it goes.)
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* res) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto m = repo_->Get(req->model_name(), req->model_version());
    if (!m.ok()) {
      reactor->Finish(ToGrpc(m.status()));
      return reactor;
    }
    auto request = FromProto(*req, *shm_);
    if (!request.ok()) {
      reactor->Finish(ToGrpc(request.status()));
      return reactor;
    }
    std::shared_ptr<ModelVersion> model = *m;
    bool run_here = model->ExecutesQuickly();
    model->InferAsync(
        std::move(request->request),
        [reactor, res, shm_outputs = std::move(request->shm_outputs)](absl::StatusOr<InferResponse> response) {
          reactor->Finish(ToGrpc(response.ok() ? ToProto(*response, shm_outputs, res) : response.status()));
        },
        run_here);
    return reactor;
  }
  // Requests of a stream run concurrently (so they can share batches);
  // responses are written in completion order by a writer thread, each with
  // its request's id.
  grpc::Status ModelStreamInfer(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>* stream) override {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<inference::ModelStreamInferResponse> ready;
    int outstanding = 0;
    bool reading_done = false;
    auto finish = [&](inference::ModelStreamInferResponse out) {
      std::lock_guard<std::mutex> lock(mu);
      ready.push_back(std::move(out));
      --outstanding;
      cv.notify_all();
    };
    std::thread writer([&] {
      bool ok = true;
      std::unique_lock<std::mutex> lock(mu);
      for (;;) {
        cv.wait(lock, [&] { return !ready.empty() || (reading_done && outstanding == 0); });
        if (ready.empty()) return;
        inference::ModelStreamInferResponse out = std::move(ready.front());
        ready.pop_front();
        lock.unlock();
        if (ok) ok = stream->Write(out);  // after a failed write, drain without writing
        lock.lock();
      }
    });
    inference::ModelInferRequest req;
    while (stream->Read(&req)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++outstanding;
      }
      auto error = [&](const absl::Status& st) {
        inference::ModelStreamInferResponse out;
        out.set_error_message(std::string(st.message()));
        out.mutable_infer_response()->set_model_name(req.model_name());
        out.mutable_infer_response()->set_model_version(req.model_version());
        out.mutable_infer_response()->set_id(req.id());
        finish(std::move(out));
      };
      auto m = repo_->Get(req.model_name(), req.model_version());
      if (!m.ok()) {
        error(m.status());
        continue;
      }
      auto request = FromProto(req, *shm_);
      if (!request.ok()) {
        error(request.status());
        continue;
      }
      (*m)->InferAsync(std::move(request->request), [&finish, shm_outputs = std::move(request->shm_outputs),
                                                     name = req.model_name(), version = req.model_version(),
                                                     id = req.id()](absl::StatusOr<InferResponse> response) {
        inference::ModelStreamInferResponse out;
        absl::Status st = response.ok() ? ToProto(*response, shm_outputs, out.mutable_infer_response())
                                        : response.status();
        if (!st.ok()) {
          out.Clear();
          out.set_error_message(std::string(st.message()));
          out.mutable_infer_response()->set_model_name(name);
          out.mutable_infer_response()->set_model_version(version);
          out.mutable_infer_response()->set_id(id);
        }
        finish(std::move(out));
      });
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      reading_done = true;
      cv.notify_all();
    }
    writer.join();
    return grpc::Status::OK;
  }
  grpc::Status ModelConfig(grpc::ServerContext*, const inference::ModelConfigRequest* req,
                           inference::ModelConfigResponse* res) override {
    auto m = repo_->Get(req->name(), req->version());
    if (!m.ok()) return ToGrpc(m.status());
    *res->mutable_config() = (*m)->config();
    return grpc::Status::OK;
  }
  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest* req,
                               inference::ModelStatisticsResponse* res) override {
    if (!req->name().empty()) {
      auto m = repo_->Get(req->name(), req->version());
      if (!m.ok()) return ToGrpc(m.status());
    }
    for (const auto& m : repo_->Loaded()) {
      if (!req->name().empty() && m->name() != req->name()) continue;
      if (!req->version().empty() && absl::StrCat(m->version()) != req->version()) continue;
      ModelStats s = m->stats();
      auto* o = res->add_model_stats();
      o->set_name(m->name());
      o->set_version(absl::StrCat(m->version()));
      o->set_last_inference(s.last_inference_ms);
      o->set_inference_count(s.inference_count);
      o->set_execution_count(s.execution_count);
      auto* is = o->mutable_inference_stats();
      FillDuration(s.success, is->mutable_success());
      FillDuration(s.fail, is->mutable_fail());
      FillDuration(s.queue, is->mutable_queue());
      FillDuration(s.compute_input, is->mutable_compute_input());
      FillDuration(s.compute_infer, is->mutable_compute_infer());
      FillDuration(s.compute_output, is->mutable_compute_output());
      for (const auto& [size, b] : s.batches) {
        auto* bs = o->add_batch_stats();
        bs->set_batch_size(size);
        FillDuration(b.compute_input, bs->mutable_compute_input());
        FillDuration(b.compute_infer, bs->mutable_compute_infer());
        FillDuration(b.compute_output, bs->mutable_compute_output());
      }
    }
    return grpc::Status::OK;
  }
  grpc::Status RepositoryIndex(grpc::ServerContext*, const inference::RepositoryIndexRequest* req,
                               inference::RepositoryIndexResponse* res) override {
    for (const ModelIndexEntry& e : repo_->Index(req->ready())) {
      auto* o = res->add_models();
      o->set_name(e.name);
      o->set_version(e.version);
      o->set_state(e.state);
      o->set_reason(e.reason);
    }
    return grpc::Status::OK;
  }
  grpc::Status RepositoryModelLoad(grpc::ServerContext*, const inference::RepositoryModelLoadRequest* req,
                                   inference::RepositoryModelLoadResponse*) override {
    return ToGrpc(repo_->Load(req->model_name()));
  }
  grpc::Status RepositoryModelUnload(grpc::ServerContext*, const inference::RepositoryModelUnloadRequest* req,
                                     inference::RepositoryModelUnloadResponse*) override {
    return ToGrpc(repo_->Unload(req->model_name()));
  }
  grpc::Status SystemSharedMemoryStatus(grpc::ServerContext*, const inference::SystemSharedMemoryStatusRequest* req,
                                        inference::SystemSharedMemoryStatusResponse* res) override {
    auto regions = shm_->Status(req->name());
    if (!regions.ok()) return ToGrpc(regions.status());
    for (const SharedMemoryRegionStatus& r : *regions) {
      auto& o = (*res->mutable_regions())[r.name];
      o.set_name(r.name);
      o.set_key(r.key);
      o.set_offset(r.offset);
      o.set_byte_size(r.byte_size);
    }
    return grpc::Status::OK;
  }
  grpc::Status SystemSharedMemoryRegister(grpc::ServerContext*, const inference::SystemSharedMemoryRegisterRequest* req,
                                          inference::SystemSharedMemoryRegisterResponse*) override {
    return ToGrpc(shm_->Register(req->name(), req->key(), req->offset(), req->byte_size()));
  }
  grpc::Status SystemSharedMemoryUnregister(grpc::ServerContext*,
                                            const inference::SystemSharedMemoryUnregisterRequest* req,
                                            inference::SystemSharedMemoryUnregisterResponse*) override {
    return ToGrpc(shm_->Unregister(req->name()));
  }
  grpc::Status CudaSharedMemoryStatus(grpc::ServerContext*, const inference::CudaSharedMemoryStatusRequest*,
                                      inference::CudaSharedMemoryStatusResponse*) override {
    return ToGrpc(CudaSharedMemoryUnsupported());
  }
  grpc::Status CudaSharedMemoryRegister(grpc::ServerContext*, const inference::CudaSharedMemoryRegisterRequest*,
                                        inference::CudaSharedMemoryRegisterResponse*) override {
    return ToGrpc(CudaSharedMemoryUnsupported());
  }
  grpc::Status CudaSharedMemoryUnregister(grpc::ServerContext*, const inference::CudaSharedMemoryUnregisterRequest*,
                                          inference::CudaSharedMemoryUnregisterResponse*) override {
    return ToGrpc(CudaSharedMemoryUnsupported());
  }

 private:
  ModelRepository* repo_;
  std::function<bool()> ready_;
  SharedMemoryManager* shm_;
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const std::string& host, int port,
                                                              ModelRepository* repository,
                                                              std::function<bool()> ready,
                                                              SharedMemoryManager* shm) {
  // gRPC locks absl::Mutex many times per call, and Debian's abseil checks
  // each lock for lock-order cycles (a debugging aid: about 4 % of the
  // server's CPU samples for a small request in `perf record`). The setting
  // is process-wide; a server does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->service_ = std::make_unique<Service>(repository, std::move(ready), shm);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::string address = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                            : absl::StrCat(host, ":", port);
  // gRPC sets SO_REUSEPORT by default: a second server on the same port
  // (or one given the same free port for port 0, as the kernel may do for
  // sockets of the same user with SO_REUSEPORT) would start without error
  // and take a share of the connections. A port is this server's alone.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(1 << 30);
  builder.SetMaxSendMessageSize(1 << 30);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0)
    return absl::UnavailableError(absl::StrCat("cannot listen for gRPC on ", address));
  if (auto* health = server->server_->GetHealthCheckService()) health->SetServingStatus(true);
  return server;
}

GrpcServer::~GrpcServer() { Shutdown(); }

void GrpcServer::Shutdown() {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  // Calls in flight finish; new ones are refused. Streams still open after
  // the grace period are cancelled.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  server_->Wait();
}

}  // namespace hepml::serve
