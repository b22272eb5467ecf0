#include "remote/signature.h"

#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hepml::remote_internal {
namespace {

struct WireName {
  DType dtype;
  const char* name;
};
constexpr WireName kWireNames[] = {
    {DType::kBool, "BOOL"},     {DType::kUInt8, "UINT8"},   {DType::kUInt16, "UINT16"}, {DType::kUInt32, "UINT32"},
    {DType::kUInt64, "UINT64"}, {DType::kInt8, "INT8"},     {DType::kInt16, "INT16"},   {DType::kInt32, "INT32"},
    {DType::kInt64, "INT64"},   {DType::kFloat16, "FP16"},  {DType::kFloat32, "FP32"},  {DType::kFloat64, "FP64"},
    {DType::kBFloat16, "BF16"}, {DType::kString, "BYTES"},
};

std::string Describe(const TensorInfo& t) {
  std::string dims;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) dims += ",";
    dims += t.shape[i] < 0 ? std::string("-1") : std::to_string(t.shape[i]);
  }
  return absl::StrCat(DTypeName(t.dtype), t.has_shape ? absl::StrCat("[", dims, "]") : std::string());
}

std::string DescribeWire(const std::string& datatype, const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat(datatype, "[", absl::StrJoin(shape, ","), "]");
}

// Does the server's tensor (datatype, shape) match the expected one?
bool Matches(const TensorInfo& expected, const std::string& datatype,
             const google::protobuf::RepeatedField<int64_t>& shape) {
  if (DTypeFromWire(datatype) != expected.dtype) return false;
  if (!expected.has_shape) return true;
  if (shape.size() != static_cast<int>(expected.shape.size())) return false;
  for (int i = 0; i < shape.size(); ++i) {
    if (shape[i] >= 0 && expected.shape[i] >= 0 && shape[i] != expected.shape[i]) return false;
  }
  return true;
}

template <typename List>
absl::Status CheckSide(const std::string& address, const std::string& model, const char* side,
                       const std::vector<TensorInfo>& expected, const List& got) {
  std::vector<std::string> expected_names, got_names;
  for (const TensorInfo& t : expected) expected_names.push_back(t.name);
  for (const auto& t : got) got_names.push_back(t.name());
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (sorted(expected_names) != sorted(got_names)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "server ", address, " serves model '", model, "' with ", side, " [", absl::StrJoin(got_names, ", "),
        "], expected [", absl::StrJoin(expected_names, ", "), "]"));
  }
  for (const auto& t : got) {
    for (const TensorInfo& e : expected) {
      if (e.name != t.name()) continue;
      if (!Matches(e, t.datatype(), t.shape())) {
        return absl::FailedPreconditionError(absl::StrCat("server ", address, " serves model '", model, "' with ",
                                                          side == std::string("inputs") ? "input" : "output", " '",
                                                          t.name(), "' as ", DescribeWire(t.datatype(), t.shape()),
                                                          ", expected ", Describe(e)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string WireDatatype(DType dtype) {
  for (const WireName& w : kWireNames)
    if (w.dtype == dtype) return w.name;
  return "";
}

DType DTypeFromWire(const std::string& datatype) {
  for (const WireName& w : kWireNames)
    if (datatype == w.name) return w.dtype;
  return DType::kUndefined;
}

absl::StatusOr<Session::NamedTensors> CheckInputs(const std::vector<TensorInfo>& signature,
                                                  const Session::NamedTensors& inputs) {
  for (const auto& [name, tensor] : inputs) {
    if (std::none_of(signature.begin(), signature.end(), [&](const TensorInfo& t) { return t.name == name; })) {
      std::vector<std::string> names;
      for (const TensorInfo& t : signature) names.push_back(t.name);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown input '", name, "' (the model's inputs: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  Session::NamedTensors ordered;
  for (const TensorInfo& info : signature) {
    const Tensor* found = nullptr;
    for (const auto& [name, tensor] : inputs) {
      if (name != info.name) continue;
      if (found != nullptr) return absl::InvalidArgumentError(absl::StrCat("input '", name, "' given twice"));
      found = &tensor;
    }
    if (found == nullptr) return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' missing"));
    const Tensor& t = *found;
    if (t.dtype() != info.dtype)
      return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' is ", DTypeName(t.dtype()),
                                                     ", the model expects ", DTypeName(info.dtype)));
    if (t.dtype() == DType::kString || WireDatatype(t.dtype()).empty())
      return absl::InvalidArgumentError(
          absl::StrCat("input '", info.name, "': ", DTypeName(t.dtype()), " tensors are not sent to servers"));
    if (info.has_shape) {
      bool ok = t.rank() == static_cast<int>(info.shape.size());
      for (int i = 0; ok && i < t.rank(); ++i) ok = info.shape[i] < 0 || info.shape[i] == t.dim(i);
      if (!ok)
        return absl::InvalidArgumentError(absl::StrCat("input '", info.name, "' has shape ", ShapeToString(t.shape()),
                                                       ", the model expects ", Describe(info)));
    }
    ordered.emplace_back(info.name, t);
  }
  return ordered;
}

int64_t BatchRows(const std::vector<TensorInfo>& signature, const Session::NamedTensors& inputs) {
  int64_t rows = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& info = signature[i];
    const Tensor& t = inputs[i].second;
    if (!info.has_shape || info.shape.empty() || info.shape[0] >= 0 || t.rank() == 0) return 0;
    if (rows >= 0 && t.dim(0) != rows) return 0;
    rows = t.dim(0);
  }
  return rows > 0 ? rows : 0;
}

std::string BatchKey(const Session::NamedTensors& inputs, const std::vector<std::string>& output_names) {
  std::string key;
  for (const auto& [name, t] : inputs) {
    absl::StrAppend(&key, name, ":", static_cast<int>(t.dtype()));
    for (int d = 1; d < t.rank(); ++d) absl::StrAppend(&key, ",", t.dim(d));
    key += ";";
  }
  absl::StrAppend(&key, "->", absl::StrJoin(output_names, ","));
  return key;
}

absl::StatusOr<std::pair<std::vector<TensorInfo>, std::vector<TensorInfo>>> SignatureFromMetadata(
    const std::string& address, const inference::ModelMetadataResponse& meta) {
  std::pair<std::vector<TensorInfo>, std::vector<TensorInfo>> sig;
  for (int side = 0; side < 2; ++side) {
    const auto& list = side == 0 ? meta.inputs() : meta.outputs();
    for (const auto& t : list) {
      TensorInfo info;
      info.name = t.name();
      info.dtype = DTypeFromWire(t.datatype());
      if (info.dtype == DType::kUndefined)
        return absl::FailedPreconditionError(absl::StrCat("server ", address, ": tensor '", t.name(),
                                                          "' has datatype '", t.datatype(), "', unknown to hepml"));
      info.shape.assign(t.shape().begin(), t.shape().end());
      info.dim_names.assign(info.shape.size(), "");
      info.has_shape = true;
      (side == 0 ? sig.first : sig.second).push_back(std::move(info));
    }
  }
  return sig;
}

absl::Status CheckMetadata(const std::string& address, const std::string& model,
                           const std::vector<TensorInfo>& inputs, const std::vector<TensorInfo>& outputs,
                           const inference::ModelMetadataResponse& meta) {
  HEPML_RETURN_IF_ERROR(CheckSide(address, model, "inputs", inputs, meta.inputs()));
  return CheckSide(address, model, "outputs", outputs, meta.outputs());
}

absl::StatusOr<std::vector<Tensor>> ParseResponse(const std::string& address, const std::string& model,
                                                  const std::vector<TensorInfo>& outputs,
                                                  const std::vector<std::string>& requested,
                                                  const inference::ModelInferResponse& response) {
  const std::string where = absl::StrCat("server ", address, ", model '", model, "': ");
  if (response.raw_output_contents_size() != response.outputs_size())
    return absl::InternalError(absl::StrCat(where, "answer has ", response.outputs_size(), " outputs but ",
                                            response.raw_output_contents_size(), " raw contents"));
  std::vector<std::string> names = requested;
  if (names.empty())
    for (const TensorInfo& t : outputs) names.push_back(t.name);
  std::vector<Tensor> result;
  for (const std::string& name : names) {
    const TensorInfo* info = nullptr;
    for (const TensorInfo& t : outputs)
      if (t.name == name) info = &t;
    int index = -1;
    for (int i = 0; i < response.outputs_size(); ++i)
      if (response.outputs(i).name() == name) index = i;
    if (index < 0) return absl::InternalError(absl::StrCat(where, "answer lacks output '", name, "'"));
    const auto& out = response.outputs(index);
    if (info == nullptr || !Matches(*info, out.datatype(), out.shape()))
      return absl::InternalError(absl::StrCat(where, "output '", name, "' came as ",
                                              DescribeWire(out.datatype(), out.shape()), ", expected ",
                                              info ? Describe(*info) : std::string("nothing")));
    Shape shape(out.shape().begin(), out.shape().end());
    for (int64_t d : shape)
      if (d < 0) return absl::InternalError(absl::StrCat(where, "output '", name, "' has a negative dimension"));
    Tensor t = Tensor::Empty(info->dtype, shape);
    const std::string& raw = response.raw_output_contents(index);
    if (raw.size() != t.nbytes())
      return absl::InternalError(absl::StrCat(where, "output '", name, "' has ", raw.size(), " bytes, ",
                                              ShapeToString(shape), " of ", DTypeName(info->dtype), " needs ",
                                              t.nbytes()));
    if (!raw.empty()) std::memcpy(t.raw_mutable_data(), raw.data(), raw.size());
    result.push_back(std::move(t));
  }
  return result;
}

absl::StatusOr<std::vector<std::vector<Tensor>>> SplitRows(const std::string& address,
                                                           const std::vector<Tensor>& outputs,
                                                           const std::vector<int64_t>& rows) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  std::vector<std::vector<Tensor>> parts(rows.size());
  for (const Tensor& out : outputs) {
    if (out.rank() == 0 || out.dim(0) != total)
      return absl::InternalError(absl::StrCat("server ", address, ": an output of a batch of ", total,
                                              " rows has shape ", ShapeToString(out.shape())));
    auto keep = std::make_shared<Tensor>(out);
    const size_t row_bytes = total == 0 ? 0 : out.nbytes() / total;
    int64_t offset = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      Shape shape = out.shape();
      shape[0] = rows[i];
      char* base = static_cast<char*>(const_cast<void*>(out.raw_data())) + offset * row_bytes;
      parts[i].push_back(Tensor::Wrap(out.dtype(), shape, base, keep));
      offset += rows[i];
    }
  }
  return parts;
}

}  // namespace hepml::remote_internal
