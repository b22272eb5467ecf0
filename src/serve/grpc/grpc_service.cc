#include "serve/grpc/grpc_service.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc_service.grpc.pb.h"
#include "serve/http/kserve_http.h"
#include "serve/model_config.h"
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

absl::StatusOr<InferRequest> FromProto(const inference::ModelInferRequest& req) {
  InferRequest out;
  out.model_name = req.model_name();
  out.model_version = req.model_version();
  out.id = req.id();
  bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size())
    return absl::InvalidArgumentError(absl::StrCat("raw_input_contents holds ", req.raw_input_contents_size(),
                                                   " tensors for ", req.inputs_size(), " inputs"));
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    std::string what = absl::StrCat("input '", in.name(), "'");
    if (in.parameters().count("shared_memory_region"))
      return absl::InvalidArgumentError(absl::StrCat(what, ": shared memory is not supported"));
    HEPML_ASSIGN_OR_RETURN(DType dtype, DTypeFromProtocolName(in.datatype()));
    HEPML_ASSIGN_OR_RETURN(Shape shape, CheckedShape(what, {in.shape().begin(), in.shape().end()}));
    if (raw) {
      if (in.has_contents())
        return absl::InvalidArgumentError(absl::StrCat(what, " has contents while raw_input_contents is used"));
      HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromRaw(what, dtype, shape, req.raw_input_contents(i)));
      out.inputs.emplace_back(in.name(), std::move(t));
    } else {
      HEPML_ASSIGN_OR_RETURN(Tensor t, FromContents(what, dtype, shape, in.contents()));
      out.inputs.emplace_back(in.name(), std::move(t));
    }
  }
  for (const auto& o : req.outputs()) {
    if (o.parameters().count("shared_memory_region"))
      return absl::InvalidArgumentError(absl::StrCat("output '", o.name(), "': shared memory is not supported"));
    if (o.parameters().count("classification"))
      return absl::InvalidArgumentError("the classification extension is not supported");
    out.outputs.push_back(o.name());
  }
  return out;
}

void ToProto(const InferResponse& r, inference::ModelInferResponse* out) {
  out->set_model_name(r.model_name);
  out->set_model_version(r.model_version);
  out->set_id(r.id);
  for (const auto& [name, t] : r.outputs) {
    auto* o = out->add_outputs();
    o->set_name(name);
    o->set_datatype(ProtocolDataTypeName(t.dtype()));
    for (int64_t d : t.shape()) o->add_shape(d);
    out->add_raw_output_contents(TensorToRaw(t));
  }
}

void FillDuration(const Duration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

}  // namespace

class GrpcServer::Service final : public inference::GRPCInferenceService::Service {
 public:
  Service(ModelRepository* repo, std::function<bool()> ready) : repo_(repo), ready_(std::move(ready)) {}

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
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* req,
                          inference::ModelInferResponse* res) override {
    auto m = repo_->Get(req->model_name(), req->model_version());
    if (!m.ok()) return ToGrpc(m.status());
    auto request = FromProto(*req);
    if (!request.ok()) return ToGrpc(request.status());
    auto response = (*m)->Infer(std::move(*request));
    if (!response.ok()) return ToGrpc(response.status());
    ToProto(*response, res);
    return grpc::Status::OK;
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
      auto request = FromProto(req);
      if (!request.ok()) {
        error(request.status());
        continue;
      }
      (*m)->InferAsync(std::move(*request), [&finish, name = req.model_name(), version = req.model_version(),
                                              id = req.id()](absl::StatusOr<InferResponse> response) {
        inference::ModelStreamInferResponse out;
        if (response.ok()) {
          ToProto(*response, out.mutable_infer_response());
        } else {
          out.set_error_message(std::string(response.status().message()));
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

 private:
  ModelRepository* repo_;
  std::function<bool()> ready_;
};

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const std::string& host, int port,
                                                              ModelRepository* repository,
                                                              std::function<bool()> ready) {
  std::unique_ptr<GrpcServer> server(new GrpcServer());
  server->service_ = std::make_unique<Service>(repository, std::move(ready));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::string address = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                                            : absl::StrCat(host, ":", port);
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
