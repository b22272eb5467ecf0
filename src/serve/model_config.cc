#include "serve/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace hepml::serve {
namespace {

struct TypeRow {
  DType dtype;
  const char* protocol;
  inference::DataType config;
};
constexpr TypeRow kTypes[] = {
    {DType::kBool, "BOOL", inference::TYPE_BOOL},       {DType::kUInt8, "UINT8", inference::TYPE_UINT8},
    {DType::kUInt16, "UINT16", inference::TYPE_UINT16}, {DType::kUInt32, "UINT32", inference::TYPE_UINT32},
    {DType::kUInt64, "UINT64", inference::TYPE_UINT64}, {DType::kInt8, "INT8", inference::TYPE_INT8},
    {DType::kInt16, "INT16", inference::TYPE_INT16},    {DType::kInt32, "INT32", inference::TYPE_INT32},
    {DType::kInt64, "INT64", inference::TYPE_INT64},    {DType::kFloat16, "FP16", inference::TYPE_FP16},
    {DType::kFloat32, "FP32", inference::TYPE_FP32},    {DType::kFloat64, "FP64", inference::TYPE_FP64},
    {DType::kString, "BYTES", inference::TYPE_STRING},  {DType::kBFloat16, "BF16", inference::TYPE_BF16},
};

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    if (error.empty()) error = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ", message);
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column, const std::string& message) override {
    warnings.push_back(absl::StrCat("line ", line + 1, ": ", message));
  }
  std::string error;
  std::vector<std::string> warnings;
};

std::string DimsString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// The dims the backend sees for a configured tensor (its reshape if any).
std::vector<int64_t> BackendDims(const google::protobuf::RepeatedField<int64_t>& dims, bool has_reshape,
                                 const inference::ModelTensorReshape& reshape) {
  if (has_reshape) return {reshape.shape().begin(), reshape.shape().end()};
  return {dims.begin(), dims.end()};
}

// Checks configured backend dims against the model's declared shape.
absl::Status CheckDims(const char* what, const std::string& name, const std::vector<int64_t>& dims,
                       const TensorInfo& info, bool batched) {
  if (!info.has_shape) return absl::OkStatus();
  size_t offset = batched ? 1 : 0;
  if (info.shape.size() != dims.size() + offset)
    return absl::InvalidArgumentError(absl::StrCat(
        what, " '", name, "': config dims ", DimsString(dims), batched ? " (plus the batch dimension)" : "",
        " do not match the model's shape ", DimsString(info.shape)));
  if (batched && info.shape[0] != -1)
    return absl::InvalidArgumentError(absl::StrCat(what, " '", name, "': max_batch_size > 0 but the model's first dimension is fixed to ",
                                                   info.shape[0], "; set max_batch_size: 0 and list the full dims"));
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t m = info.shape[i + offset];
    if (dims[i] != -1 && m != -1 && dims[i] != m)
      return absl::InvalidArgumentError(absl::StrCat(what, " '", name, "': config dims ", DimsString(dims),
                                                     " do not match the model's shape ", DimsString(info.shape)));
  }
  return absl::OkStatus();
}

bool FirstDimSymbolic(const TensorInfo& info) {
  return info.has_shape && !info.shape.empty() && info.shape[0] == -1;
}

}  // namespace

const char* ProtocolDataTypeName(DType dtype) {
  for (const TypeRow& r : kTypes)
    if (r.dtype == dtype) return r.protocol;
  return "";
}

absl::StatusOr<DType> DTypeFromProtocolName(std::string_view name) {
  for (const TypeRow& r : kTypes)
    if (name == r.protocol) return r.dtype;
  std::vector<std::string> names;
  for (const TypeRow& r : kTypes) names.push_back(r.protocol);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown datatype '", std::string(name), "' (expected one of ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<DType> DTypeFromConfig(inference::DataType type) {
  for (const TypeRow& r : kTypes)
    if (r.config == type) return r.dtype;
  return absl::InvalidArgumentError(
      absl::StrCat("data_type ", inference::DataType_Name(type), " is not supported"));
}

inference::DataType ConfigDataType(DType dtype) {
  for (const TypeRow& r : kTypes)
    if (r.dtype == dtype) return r.config;
  return inference::TYPE_INVALID;
}

absl::StatusOr<inference::ModelConfig> ParseModelConfig(const std::string& text, std::vector<std::string>* ignored) {
  inference::ModelConfig config;
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(text, &config))
    return absl::InvalidArgumentError(absl::StrCat("config.pbtxt: ", errors.error.empty() ? "parse error" : errors.error));
  // Skipping these would serve the model with the wrong semantics.
  for (const char* field : {"sequence_batching", "ensemble_scheduling", "batch_input", "batch_output"})
    for (const std::string& w : errors.warnings)
      if (w.find(absl::StrCat("\"", field, "\"")) != std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat("config.pbtxt: ", field, " is not supported by hepml serve"));
  if (ignored) ignored->insert(ignored->end(), errors.warnings.begin(), errors.warnings.end());
  return config;
}

absl::Status CompleteModelConfig(const std::string& model_name, const Session& session,
                                 inference::ModelConfig* config) {
  if (config->name().empty()) config->set_name(model_name);
  if (config->name() != model_name)
    return absl::InvalidArgumentError(absl::StrCat("config.pbtxt names the model '", config->name(),
                                                   "' but its directory is '", model_name, "'"));
  static const std::set<std::string> kPlatforms = {"", "onnxruntime_onnx", "onnx"};
  static const std::set<std::string> kBackends = {"", "onnxruntime", "onnx", "hepml"};
  if (!kPlatforms.count(config->platform()))
    return absl::InvalidArgumentError(absl::StrCat("platform '", config->platform(),
                                                   "' is not supported (hepml serves ONNX models: onnxruntime_onnx)"));
  if (!kBackends.count(config->backend()))
    return absl::InvalidArgumentError(
        absl::StrCat("backend '", config->backend(), "' is not supported (hepml serves ONNX models: onnxruntime)"));
  config->set_platform("onnxruntime_onnx");
  config->set_backend("onnxruntime");

  for (const TensorInfo& t : session.inputs())
    if (t.kind != "tensor")
      return absl::InvalidArgumentError(absl::StrCat("model input '", t.name, "' is a ", t.kind, "; only tensors can be served"));
  for (const TensorInfo& t : session.outputs())
    if (t.kind != "tensor")
      return absl::InvalidArgumentError(absl::StrCat("model output '", t.name, "' is a ", t.kind, "; only tensors can be served"));

  if (config->max_batch_size() < 0)
    return absl::InvalidArgumentError(absl::StrCat("max_batch_size ", config->max_batch_size(), " is negative"));
  if (config->input_size() == 0 && config->output_size() == 0 && config->max_batch_size() == 0) {
    bool batchable = !session.inputs().empty();
    for (const TensorInfo& t : session.inputs()) batchable = batchable && FirstDimSymbolic(t);
    for (const TensorInfo& t : session.outputs()) batchable = batchable && FirstDimSymbolic(t);
    if (batchable) {
      config->set_max_batch_size(kDefaultMaxBatchSize);
      if (config->scheduling_choice_case() == inference::ModelConfig::SCHEDULING_CHOICE_NOT_SET)
        config->mutable_dynamic_batching();
    }
  }
  const bool batched = config->max_batch_size() > 0;

  auto fill = [&](const TensorInfo& info, auto* tensor) -> absl::Status {
    tensor->set_name(info.name);
    inference::DataType type = ConfigDataType(info.dtype);
    if (type == inference::TYPE_INVALID)
      return absl::InvalidArgumentError(absl::StrCat("'", info.name, "' has dtype ", DTypeName(info.dtype),
                                                     ", which the inference protocol cannot carry"));
    tensor->set_data_type(type);
    if (!info.has_shape)
      return absl::InvalidArgumentError(
          absl::StrCat("'", info.name, "' has no declared shape; list its dims in config.pbtxt"));
    for (size_t i = batched ? 1 : 0; i < info.shape.size(); ++i) tensor->add_dims(info.shape[i]);
    return absl::OkStatus();
  };

  if (config->input_size() == 0) {
    for (const TensorInfo& info : session.inputs()) HEPML_RETURN_IF_ERROR(fill(info, config->add_input()));
  } else {
    std::set<std::string> listed;
    for (const inference::ModelInput& in : config->input()) {
      const TensorInfo* info = nullptr;
      for (const TensorInfo& t : session.inputs())
        if (t.name == in.name()) info = &t;
      if (!info) return absl::InvalidArgumentError(absl::StrCat("config input '", in.name(), "' is not an input of the model"));
      if (!listed.insert(in.name()).second)
        return absl::InvalidArgumentError(absl::StrCat("config input '", in.name(), "' is listed twice"));
      HEPML_ASSIGN_OR_RETURN(DType dtype, DTypeFromConfig(in.data_type()));
      if (dtype != info->dtype)
        return absl::InvalidArgumentError(absl::StrCat("config input '", in.name(), "' has data_type ",
                                                       inference::DataType_Name(in.data_type()), " but the model takes ",
                                                       DTypeName(info->dtype)));
      HEPML_RETURN_IF_ERROR(CheckDims("input", in.name(), BackendDims(in.dims(), in.has_reshape(), in.reshape()), *info, batched));
    }
    for (const TensorInfo& t : session.inputs())
      if (!listed.count(t.name))
        return absl::InvalidArgumentError(absl::StrCat("model input '", t.name, "' is missing from config.pbtxt"));
  }
  if (config->output_size() == 0) {
    for (const TensorInfo& info : session.outputs()) HEPML_RETURN_IF_ERROR(fill(info, config->add_output()));
  } else {
    for (const inference::ModelOutput& out : config->output()) {
      const TensorInfo* info = nullptr;
      for (const TensorInfo& t : session.outputs())
        if (t.name == out.name()) info = &t;
      if (!info)
        return absl::InvalidArgumentError(absl::StrCat("config output '", out.name(), "' is not an output of the model"));
      HEPML_ASSIGN_OR_RETURN(DType dtype, DTypeFromConfig(out.data_type()));
      if (dtype != info->dtype)
        return absl::InvalidArgumentError(absl::StrCat("config output '", out.name(), "' has data_type ",
                                                       inference::DataType_Name(out.data_type()),
                                                       " but the model produces ", DTypeName(info->dtype)));
      HEPML_RETURN_IF_ERROR(
          CheckDims("output", out.name(), BackendDims(out.dims(), out.has_reshape(), out.reshape()), *info, batched));
    }
  }
  if (config->has_dynamic_batching()) {
    for (int p : config->dynamic_batching().preferred_batch_size())
      if (p < 1 || (batched && p > config->max_batch_size()))
        return absl::InvalidArgumentError(absl::StrCat("preferred_batch_size ", p, " is outside [1, max_batch_size ",
                                                       config->max_batch_size(), "]"));
  }
  if (config->instance_group_size() == 0) {
    auto* g = config->add_instance_group();
    g->set_count(1);
    g->set_kind(inference::ModelInstanceGroup::KIND_CPU);
  }
  for (int i = 0; i < config->instance_group_size(); ++i) {
    auto* g = config->mutable_instance_group(i);
    if (g->count() < 0) return absl::InvalidArgumentError(absl::StrCat("instance_group count ", g->count(), " is negative"));
    if (g->count() == 0) g->set_count(1);
    if (g->name().empty()) g->set_name(absl::StrCat(config->name(), "_", i));
  }
  if (config->version_policy().policy_choice_case() == inference::ModelVersionPolicy::POLICY_CHOICE_NOT_SET)
    config->mutable_version_policy()->mutable_latest()->set_num_versions(1);
  return absl::OkStatus();
}

std::string ModelConfigToJson(const inference::ModelConfig& config) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(config, &text, options);
  // proto3 JSON writes 64-bit integers as strings; Triton writes numbers.
  static const std::set<std::string> kInt64Keys = {"dims", "shape", "versions", "max_queue_delay_microseconds",
                                                   "default_timeout_microseconds", "priority_levels",
                                                   "default_priority_level"};
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return text;
  std::function<void(nlohmann::json&)> fix = [&](nlohmann::json& node) {
    if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (kInt64Keys.count(it.key())) {
          auto conv = [](nlohmann::json& v) {
            if (v.is_string()) v = std::stoll(v.get<std::string>());
          };
          if (it->is_array())
            for (auto& v : *it) conv(v);
          else
            conv(*it);
        } else {
          fix(*it);
        }
      }
    } else if (node.is_array()) {
      for (auto& v : node) fix(v);
    }
  };
  fix(j);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<int64_t> ProtocolShape(const inference::ModelConfig& config,
                                   const google::protobuf::RepeatedField<int64_t>& dims) {
  std::vector<int64_t> shape;
  if (config.max_batch_size() > 0) shape.push_back(-1);
  shape.insert(shape.end(), dims.begin(), dims.end());
  return shape;
}

}  // namespace hepml::serve
