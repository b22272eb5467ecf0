#include "serve/http/kserve_http.h"

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "serve/metrics.h"
#include "serve/model_config.h"
#include "serve/tensor_codec.h"

namespace hepml::serve {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;

constexpr const char* kHeaderLength = "Inference-Header-Content-Length";

void SetJson(HttpResponse& res, http::status code, const json& body) {
  res.result(code);
  res.set(http::field::content_type, "application/json");
  res.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SetError(HttpResponse& res, const absl::Status& status) {
  http::status code = http::status::bad_request;
  if (absl::IsNotFound(status)) code = http::status::not_found;
  if (absl::IsUnavailable(status)) code = http::status::service_unavailable;
  SetJson(res, code, json{{"error", std::string(status.message())}});
}

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      if (absl::SimpleHexAtoi(std::string(s.substr(i + 1, 2)), &v)) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// The shared_memory_* parameters of a tensor, if it has any: the region and
// byte size are required together, the offset defaults to 0.
absl::StatusOr<std::optional<SharedMemoryRef>> SharedMemoryParams(const std::string& what, const json* params) {
  if (!params) return std::nullopt;
  bool has_region = params->contains("shared_memory_region");
  bool has_size = params->contains("shared_memory_byte_size");
  bool has_offset = params->contains("shared_memory_offset");
  if (!has_region && !has_size && !has_offset) return std::nullopt;
  if (!has_region || !has_size)
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": shared_memory_region and shared_memory_byte_size must be given together"));
  SharedMemoryRef ref;
  const json& region = (*params)["shared_memory_region"];
  if (!region.is_string()) return absl::InvalidArgumentError(absl::StrCat(what, ": shared_memory_region must be a string"));
  ref.region = region.get<std::string>();
  const json& size = (*params)["shared_memory_byte_size"];
  if (!size.is_number_unsigned())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": shared_memory_byte_size ", size.dump(), " is not a non-negative integer"));
  ref.byte_size = size.get<uint64_t>();
  if (has_offset) {
    const json& offset = (*params)["shared_memory_offset"];
    if (!offset.is_number_unsigned())
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": shared_memory_offset ", offset.dump(), " is not a non-negative integer"));
    ref.offset = offset.get<uint64_t>();
  }
  return ref;
}

json StatDuration(const Duration& d) { return json{{"count", d.count}, {"ns", d.ns}}; }

// GET /v2/models/NAME[/versions/V]/drift (hepml's own extension).
json DriftJson(const ModelVersion& m) {
  DriftSnapshot d = m.drift();
  json out = {{"name", m.name()},
              {"version", absl::StrCat(m.version())},
              {"enabled", d.enabled},
              {"reference_ready", d.reference_ready},
              {"reference_events", d.reference_events},
              {"events", d.events},
              {"windows", d.windows}};
  if (d.last) {
    out["last_window"] = {{"window", d.last->window},       {"events", d.last->events},
                          {"psi_max", d.last->psi_max},     {"psi_mean", d.last->psi_mean},
                          {"worst_input", d.last->worst_input}, {"worst_feature", d.last->worst_feature}};
  }
  return out;
}

json StatsJson(const ModelVersion& m) {
  ModelStats s = m.stats();
  json batches = json::array();
  for (const auto& [size, b] : s.batches)
    batches.push_back({{"batch_size", size},
                       {"compute_input", StatDuration(b.compute_input)},
                       {"compute_infer", StatDuration(b.compute_infer)},
                       {"compute_output", StatDuration(b.compute_output)}});
  return json{{"name", m.name()},
              {"version", absl::StrCat(m.version())},
              {"last_inference", s.last_inference_ms},
              {"inference_count", s.inference_count},
              {"execution_count", s.execution_count},
              {"inference_stats",
               {{"success", StatDuration(s.success)},
                {"fail", StatDuration(s.fail)},
                {"queue", StatDuration(s.queue)},
                {"compute_input", StatDuration(s.compute_input)},
                {"compute_infer", StatDuration(s.compute_infer)},
                {"compute_output", StatDuration(s.compute_output)},
                {"cache_hit", StatDuration({})},
                {"cache_miss", StatDuration({})}}},
              {"batch_stats", batches}};
}

json MetadataJson(const ModelRepository& repo, const ModelVersion& m) {
  const auto& config = m.config();
  json versions = json::array();
  for (int64_t v : repo.Versions(m.name())) versions.push_back(absl::StrCat(v));
  json inputs = json::array(), outputs = json::array();
  for (const auto& in : config.input())
    inputs.push_back({{"name", in.name()},
                      {"datatype", ProtocolDataTypeName(*DTypeFromConfig(in.data_type()))},
                      {"shape", ProtocolShape(config, in.dims())}});
  for (const auto& out : config.output())
    outputs.push_back({{"name", out.name()},
                       {"datatype", ProtocolDataTypeName(*DTypeFromConfig(out.data_type()))},
                       {"shape", ProtocolShape(config, out.dims())}});
  return json{{"name", m.name()}, {"versions", versions}, {"platform", config.platform()},
              {"inputs", inputs},   {"outputs", outputs}};
}

}  // namespace

absl::StatusOr<HttpInfer> ParseInfer(const HttpRequest& req, const std::string& model, const std::string& version,
                                     const SharedMemoryManager* shm) {
  const std::string& body = req.body();
  size_t header_length = body.size();
  auto h = req.find(kHeaderLength);
  if (h != req.end()) {
    if (!absl::SimpleAtoi(std::string(h->value()), &header_length) || header_length > body.size())
      return absl::InvalidArgumentError(absl::StrCat(kHeaderLength, " '", std::string(h->value()),
                                                     "' is not a length within the ", body.size(), "-byte body"));
  }
  json j = json::parse(body.begin(), body.begin() + header_length, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the request body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  HttpInfer out;
  out.request.model_name = model;
  out.request.model_version = version;
  std::string_view binary(body.data() + header_length, body.size() - header_length);
  size_t offset = 0;
  try {
    if (j.contains("id")) out.request.id = j["id"].get<std::string>();
    if (j.contains("parameters")) {
      const json& p = j["parameters"];
      if (!p.is_object()) return absl::InvalidArgumentError("'parameters' must be an object");
      if (p.contains("binary_data_output")) out.all_binary = p["binary_data_output"].get<bool>();
      if (p.contains("classification"))
        return absl::InvalidArgumentError("the classification extension is not supported");
    }
    if (!j.contains("inputs") || !j["inputs"].is_array())
      return absl::InvalidArgumentError("the request needs an 'inputs' array");
    for (const json& in : j["inputs"]) {
      if (!in.is_object() || !in.contains("name") || !in.contains("shape") || !in.contains("datatype"))
        return absl::InvalidArgumentError("each input needs 'name', 'shape' and 'datatype'");
      std::string name = in["name"].get<std::string>();
      std::string what = absl::StrCat("input '", name, "'");
      HEPML_ASSIGN_OR_RETURN(DType dtype, DTypeFromProtocolName(in["datatype"].get<std::string>()));
      // Integers only: nlohmann would convert 1e30 or -1.5 to int64 with
      // an out-of-range (undefined) cast.
      const json& js = in["shape"];
      if (!js.is_array()) return absl::InvalidArgumentError(absl::StrCat(what, ": 'shape' must be an array"));
      std::vector<int64_t> dims;
      for (const json& d : js) {
        if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t{INT64_MAX}))
          return absl::InvalidArgumentError(absl::StrCat(what, ": shape dimension ", d.dump(), " is not a 64-bit integer"));
        dims.push_back(d.get<int64_t>());
      }
      HEPML_ASSIGN_OR_RETURN(Shape shape, CheckedShape(what, dims));
      const json* params = in.contains("parameters") ? &in["parameters"] : nullptr;
      if (params && !params->is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": 'parameters' must be an object"));
      HEPML_ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> shm_ref, SharedMemoryParams(what, params));
      if (shm_ref) {
        if (!shm) return absl::InvalidArgumentError(absl::StrCat(what, ": shared memory is not supported"));
        if (in.contains("data") || params->contains("binary_data_size"))
          return absl::InvalidArgumentError(absl::StrCat(what, " has both shared memory parameters and data"));
        HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromSharedMemory(what, dtype, shape, *shm, *shm_ref));
        out.request.inputs.emplace_back(name, std::move(t));
      } else if (params && params->contains("binary_data_size")) {
        if (in.contains("data"))
          return absl::InvalidArgumentError(absl::StrCat(what, " has both 'data' and binary_data_size"));
        const json& js_size = (*params)["binary_data_size"];
        if (!js_size.is_number_unsigned())
          return absl::InvalidArgumentError(
              absl::StrCat(what, ": binary_data_size ", js_size.dump(), " is not a non-negative integer"));
        uint64_t size = js_size.get<uint64_t>();
        if (size > binary.size() - offset)
          return absl::InvalidArgumentError(absl::StrCat(what, ": binary_data_size ", size, " runs past the ",
                                                         binary.size(), " bytes of binary data after the JSON header"));
        HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromRaw(what, dtype, shape, binary.substr(offset, size)));
        offset += size;
        out.request.inputs.emplace_back(name, std::move(t));
      } else {
        if (!in.contains("data")) return absl::InvalidArgumentError(absl::StrCat(what, " has no 'data'"));
        HEPML_ASSIGN_OR_RETURN(Tensor t, TensorFromJson(what, dtype, shape, in["data"]));
        out.request.inputs.emplace_back(name, std::move(t));
      }
    }
    if (offset != binary.size())
      return absl::InvalidArgumentError(absl::StrCat(binary.size() - offset,
                                                     " bytes of binary data follow the inputs that no input claims"));
    if (j.contains("outputs")) {
      if (!j["outputs"].is_array()) return absl::InvalidArgumentError("'outputs' must be an array");
      for (const json& o : j["outputs"]) {
        if (!o.is_object() || !o.contains("name")) return absl::InvalidArgumentError("each output needs a 'name'");
        std::string name = o["name"].get<std::string>();
        out.request.outputs.push_back(name);
        bool bin = out.all_binary;
        if (o.contains("parameters")) {
          const json& p = o["parameters"];
          if (!p.is_object())
            return absl::InvalidArgumentError(absl::StrCat("output '", name, "': 'parameters' must be an object"));
          if (p.contains("binary_data")) bin = p["binary_data"].get<bool>();
          if (p.contains("classification"))
            return absl::InvalidArgumentError("the classification extension is not supported");
          std::string what = absl::StrCat("output '", name, "'");
          HEPML_ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> shm_ref, SharedMemoryParams(what, &p));
          if (shm_ref) {
            if (!shm) return absl::InvalidArgumentError(absl::StrCat(what, ": shared memory is not supported"));
            HEPML_ASSIGN_OR_RETURN(SharedMemoryView view,
                                   shm->Slice(what, shm_ref->region, shm_ref->offset, shm_ref->byte_size));
            out.shm_outputs.push_back({name, *shm_ref, std::move(view)});
          }
        }
        out.binary.push_back(bin);
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed inference request: ", e.what()));
  }
  return out;
}

namespace {

void AnswerInfer(const HttpInfer& parsed, const InferResponse& response, HttpResponse& res) {
  json outputs = json::array();
  std::string binary;
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    const auto& [name, t] = response.outputs[i];
    bool bin = parsed.all_binary;
    for (size_t k = 0; k < parsed.request.outputs.size(); ++k)
      if (parsed.request.outputs[k] == name) bin = parsed.binary[k];
    const SharedMemoryOutput* shm_out = nullptr;
    for (const SharedMemoryOutput& s : parsed.shm_outputs)
      if (s.name == name) shm_out = &s;
    json o{{"name", name},
           {"datatype", ProtocolDataTypeName(t.dtype())},
           {"shape", std::vector<int64_t>(t.shape().begin(), t.shape().end())}};
    if (shm_out) {
      // The data goes to the region; the response carries its metadata only.
      std::string raw = TensorToRaw(t);
      absl::Status st = WriteSharedMemoryOutput(*shm_out, raw);
      if (!st.ok()) return SetError(res, st);
      o["parameters"] = {{"shared_memory_region", shm_out->ref.region},
                         {"shared_memory_offset", shm_out->ref.offset},
                         {"shared_memory_byte_size", raw.size()}};
    } else if (bin) {
      std::string raw = TensorToRaw(t);
      o["parameters"] = {{"binary_data_size", raw.size()}};
      binary += raw;
    } else {
      o["data"] = TensorToJson(t);
    }
    outputs.push_back(std::move(o));
  }
  json body{{"model_name", response.model_name}, {"model_version", response.model_version}, {"outputs", outputs}};
  if (!response.id.empty()) body["id"] = response.id;
  std::string header = body.dump(-1, ' ', false, json::error_handler_t::replace);
  res.result(http::status::ok);
  if (binary.empty()) {
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(header);
  } else {
    res.set(http::field::content_type, "application/octet-stream");
    res.set(kHeaderLength, std::to_string(header.size()));
    res.body() = header + binary;
  }
}

void HandleModel(ModelRepository& repo, const SharedMemoryManager* shm, const HttpRequest& req,
                 const std::vector<std::string>& seg, HttpResponse& res) {
  // seg: v2 models NAME [versions V] [action]
  std::string name = seg[2];
  std::string version;
  size_t i = 3;
  if (seg.size() > 4 && seg[3] == "versions") {
    version = seg[4];
    i = 5;
  }
  std::string action = i < seg.size() ? seg[i] : "";
  if (i + 1 < seg.size()) return SetError(res, absl::NotFoundError("unknown path"));
  bool get = req.method() == http::verb::get;
  bool post = req.method() == http::verb::post;
  if (action == "ready" && get) {
    auto m = repo.Get(name, version);
    res.result(m.ok() ? http::status::ok : http::status::bad_request);
    return;
  }
  if (action == "stats" && get) {
    json stats = json::array();
    for (const auto& m : repo.Loaded())
      if (m->name() == name && (version.empty() || absl::StrCat(m->version()) == version)) stats.push_back(StatsJson(*m));
    if (stats.empty()) {
      auto m = repo.Get(name, version);
      return SetError(res, m.ok() ? absl::NotFoundError("no statistics") : m.status());
    }
    return SetJson(res, http::status::ok, json{{"model_stats", stats}});
  }
  auto m = repo.Get(name, version);
  if (!m.ok()) return SetError(res, m.status());
  if (action.empty() && get) return SetJson(res, http::status::ok, MetadataJson(repo, **m));
  if (action == "drift" && get) return SetJson(res, http::status::ok, DriftJson(**m));
  if (action == "config" && get) {
    res.result(http::status::ok);
    res.set(http::field::content_type, "application/json");
    res.body() = ModelConfigToJson((*m)->config());
    return;
  }
  if (action == "infer" && post) {
    auto parsed = ParseInfer(req, name, version, shm);
    if (!parsed.ok()) return SetError(res, parsed.status());
    auto response = (*m)->Infer(parsed->request);
    if (!response.ok()) return SetError(res, response.status());
    return AnswerInfer(*parsed, *response, res);
  }
  SetError(res, absl::NotFoundError(absl::StrCat("no ", std::string(req.method_string()), " ", std::string(req.target()))));
}

// v2/systemsharedmemory[/region/NAME]/{status,register,unregister}, and the
// same under cudasharedmemory (refused: no GPU).
void HandleSharedMemory(SharedMemoryManager& shm, const HttpRequest& req, const std::vector<std::string>& seg,
                        HttpResponse& res) {
  std::string region;
  std::string action;
  if (seg.size() == 3) {
    action = seg[2];
  } else if (seg.size() == 5 && seg[2] == "region") {
    region = seg[3];
    action = seg[4];
  } else {
    return SetError(res, absl::NotFoundError("unknown shared memory path"));
  }
  bool get = req.method() == http::verb::get;
  bool post = req.method() == http::verb::post;
  bool known = (action == "status" && get) || (action == "unregister" && post) ||
               (action == "register" && post && !region.empty());
  if (!known)
    return SetError(res, absl::NotFoundError(absl::StrCat("no ", std::string(req.method_string()), " ",
                                                          std::string(req.target()))));
  if (seg[1] == "cudasharedmemory") return SetError(res, CudaSharedMemoryUnsupported());
  if (action == "status") {
    auto regions = shm.Status(region);
    if (!regions.ok()) return SetError(res, regions.status());
    json out = json::array();
    for (const SharedMemoryRegionStatus& r : *regions)
      out.push_back({{"name", r.name}, {"key", r.key}, {"offset", r.offset}, {"byte_size", r.byte_size}});
    return SetJson(res, http::status::ok, out);
  }
  if (action == "unregister") {
    absl::Status st = shm.Unregister(region);
    if (!st.ok()) return SetError(res, st);
    return;
  }
  json body = json::parse(req.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return SetError(res, absl::InvalidArgumentError("the register request body must be a JSON object"));
  if (!body.contains("key") || !body["key"].is_string())
    return SetError(res, absl::InvalidArgumentError("the register request needs a string 'key'"));
  if (!body.contains("byte_size") || !body["byte_size"].is_number_unsigned())
    return SetError(res, absl::InvalidArgumentError("the register request needs a non-negative integer 'byte_size'"));
  uint64_t offset = 0;
  if (body.contains("offset")) {
    if (!body["offset"].is_number_unsigned())
      return SetError(res, absl::InvalidArgumentError("'offset' must be a non-negative integer"));
    offset = body["offset"].get<uint64_t>();
  }
  absl::Status st = shm.Register(region, body["key"].get<std::string>(), offset, body["byte_size"].get<uint64_t>());
  if (!st.ok()) return SetError(res, st);
}

}  // namespace

const std::vector<std::string>& ServerExtensions() {
  static const std::vector<std::string> kExtensions = {"binary_tensor_data",  "model_repository",
                                                       "model_configuration", "statistics",
                                                       "schedule_policy",     "system_shared_memory"};
  return kExtensions;
}

HttpHandler MakeKServeHttpHandler(ModelRepository* repository, std::function<bool()> ready,
                                  SharedMemoryManager* shm) {
  return [repository, ready, shm](const HttpRequest& req, HttpResponse& res) {
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    std::vector<std::string> seg;
    for (absl::string_view s : absl::StrSplit(absl::string_view(target.data(), target.size()), '/', absl::SkipEmpty()))
      seg.push_back(UrlDecode(std::string_view(s.data(), s.size())));
    bool get = req.method() == http::verb::get;
    bool post = req.method() == http::verb::post;
    ModelRepository& repo = *repository;
    if (seg.empty() || seg[0] != "v2") return SetError(res, absl::NotFoundError("unknown path; the API is under /v2"));
    if (seg.size() == 1 && get) {
      return SetJson(res, http::status::ok,
                     json{{"name", kServerName}, {"version", kServerVersion}, {"extensions", ServerExtensions()}});
    }
    if (seg.size() == 3 && seg[1] == "health" && get) {
      if (seg[2] == "live") return;  // 200
      if (seg[2] == "ready") {
        if (!ready()) res.result(http::status::bad_request);
        return;
      }
    }
    if (seg.size() == 3 && seg[1] == "models" && seg[2] == "stats" && get) {
      json stats = json::array();
      for (const auto& m : repo.Loaded()) stats.push_back(StatsJson(*m));
      return SetJson(res, http::status::ok, json{{"model_stats", stats}});
    }
    if (seg.size() >= 3 && seg[1] == "models") return HandleModel(repo, shm, req, seg, res);
    if (seg.size() >= 2 && (seg[1] == "systemsharedmemory" || seg[1] == "cudasharedmemory"))
      return HandleSharedMemory(*shm, req, seg, res);
    if (seg.size() == 3 && seg[1] == "repository" && seg[2] == "index" && (post || get)) {
      bool ready_only = false;
      json body = req.body().empty() ? json::object() : json::parse(req.body(), nullptr, false);
      if (body.is_discarded() || !body.is_object())
        return SetError(res, absl::InvalidArgumentError("the request body is not a JSON object"));
      if (body.contains("ready") && body["ready"].is_boolean()) ready_only = body["ready"].get<bool>();
      json index = json::array();
      for (const ModelIndexEntry& e : repo.Index(ready_only)) {
        json row{{"name", e.name}};
        if (!e.version.empty()) row["version"] = e.version;
        if (!e.state.empty()) row["state"] = e.state;
        if (!e.reason.empty()) row["reason"] = e.reason;
        index.push_back(row);
      }
      return SetJson(res, http::status::ok, index);
    }
    if (seg.size() == 5 && seg[1] == "repository" && seg[2] == "models" && post &&
        (seg[4] == "load" || seg[4] == "unload")) {
      absl::Status st = seg[4] == "load" ? repo.Load(seg[3]) : repo.Unload(seg[3]);
      if (!st.ok()) return SetError(res, st);
      return;
    }
    SetError(res, absl::NotFoundError(absl::StrCat("no ", std::string(req.method_string()), " ", std::string(target))));
  };
}

HttpHandler MakeMetricsHttpHandler(ModelRepository* repository) {
  return [repository](const HttpRequest& req, HttpResponse& res) {
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target != "/metrics" || req.method() != http::verb::get)
      return SetError(res, absl::NotFoundError("metrics are at GET /metrics"));
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = RenderMetrics(*repository);
  };
}

}  // namespace hepml::serve
