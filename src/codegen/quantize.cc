// Parsing of fixed<W,I,Q,O>, weight quantisation for the int8 and fixed-point
// kernels, and calibration of activation ranges with hepml's Session.
#include "codegen/quantize.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "codegen/emitted/fixed.h"
#include "common/npy.h"
#include "hepml/session.h"
#include "hepml/status.h"
#include "onnx/importer.h"
#include "onnx/onnx_pb.h"

namespace hepml::codegen {

absl::StatusOr<FixedType> ParseFixedType(const std::string& text) {
  const std::string usage = absl::StrCat(
      "'", text, "': expected fixed<W,I> or fixed<W,I,Q> or fixed<W,I,Q,O> (1 <= W <= 32, 0 <= I <= W, Q: TRN, RND, "
      "RND_CONV; O: WRAP, SAT)");
  std::string s = text;
  s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
  if (s.rfind("fixed<", 0) != 0 || s.back() != '>') return absl::InvalidArgumentError(usage);
  std::vector<std::string> parts = absl::StrSplit(s.substr(6, s.size() - 7), ',');
  if (parts.size() < 2 || parts.size() > 4) return absl::InvalidArgumentError(usage);
  FixedType t;
  if (!absl::SimpleAtoi(parts[0], &t.width) || !absl::SimpleAtoi(parts[1], &t.integer)) {
    return absl::InvalidArgumentError(usage);
  }
  if (t.width < 1 || t.width > 32) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': W = ", t.width, " total bits; expected 1 to 32"));
  }
  if (t.integer > t.width || t.integer < 0) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': I = ", t.integer,
                                                   " integer bits; expected 0 <= I <= W = ", t.width));
  }
  auto mode = [](std::string m) {
    m = absl::AsciiStrToUpper(m);
    if (m.rfind("AP_", 0) == 0) m = m.substr(3);
    return m;
  };
  if (parts.size() >= 3) {
    const std::string q = mode(parts[2]);
    if (q == "TRN") t.quant = hepml_emitted::kFxTrn;
    else if (q == "RND") t.quant = hepml_emitted::kFxRnd;
    else if (q == "RND_CONV") t.quant = hepml_emitted::kFxRndConv;
    else {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': quantisation mode '", parts[2],
                                                     "' is not TRN, RND or RND_CONV"));
    }
  }
  if (parts.size() == 4) {
    const std::string o = mode(parts[3]);
    if (o == "WRAP") t.overflow = hepml_emitted::kFxWrap;
    else if (o == "SAT") t.overflow = hepml_emitted::kFxSat;
    else {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': overflow mode '", parts[3], "' is not WRAP or SAT"));
    }
  }
  return t;
}

std::string FixedTypeName(const FixedType& t) {
  if (t.quant == hepml_emitted::kFxTrn && t.overflow == hepml_emitted::kFxWrap) {
    return absl::StrCat("fixed<", t.width, ",", t.integer, ">");
  }
  const char* q = t.quant == hepml_emitted::kFxRnd ? "RND" : t.quant == hepml_emitted::kFxRndConv ? "RND_CONV" : "TRN";
  return absl::StrCat("fixed<", t.width, ",", t.integer, ",", q, ",",
                      t.overflow == hepml_emitted::kFxSat ? "SAT" : "WRAP", ">");
}

Int8Weights QuantizeRowsInt8(const float* w, int64_t rows, int64_t k, int64_t kp) {
  Int8Weights out;
  out.values.assign(static_cast<size_t>(rows * kp), 0);
  out.scales.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float m = 0.f;
    for (int64_t j = 0; j < k; ++j) m = std::max(m, std::fabs(w[r * k + j]));
    const float scale = m > 0.f ? m / 127.f : 1.f;
    out.scales[r] = scale;
    for (int64_t j = 0; j < k; ++j) {
      out.values[r * kp + j] = hepml_emitted::QuantizeOne<int8_t>(w[r * k + j], scale, 0, -127, 127);
    }
  }
  return out;
}

std::vector<int32_t> ToFixedRaw(const float* w, int64_t n, const FixedType& t) {
  std::vector<int32_t> raw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    raw[i] = static_cast<int32_t>(hepml_emitted::FxFromFloat(w[i], t.frac(), t.width, t.quant, t.overflow));
  }
  return raw;
}

bool IsQuantizableLayer(const Graph& graph, const Node& n) {
  const std::string& op = n.op_type;
  if (n.inputs.size() < 2) return false;
  auto it = graph.initializers.find(n.inputs[1]);
  if (it == graph.initializers.end() || it->second.dtype() != DType::kFloat32) return false;
  if (op == "Gemm" || op == "FusedGemm") return n.GetInt("transA", 0) == 0 && it->second.rank() == 2;
  if (op == "MatMul") return it->second.rank() == 2;
  return op == "Conv" || op == "FusedConv";
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadCalibration(const std::string& model_path,
                                                                          const std::vector<std::string>& specs) {
  HEPML_ASSIGN_OR_RETURN(Model model, LoadModel(model_path));
  std::vector<std::pair<std::string, Tensor>> out;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--calibration '", spec, "': expected NAME=FILE.npy"));
    }
    const std::string name = spec.substr(0, eq);
    auto t = ReadNpy(spec.substr(eq + 1));
    if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("--calibration: ", t.status().message()));
    const ValueInfo* info = nullptr;
    std::vector<std::string> names;
    for (const ValueInfo* vi : model.graph.RequiredInputs()) {
      names.push_back(vi->name);
      if (vi->name == name) info = vi;
    }
    if (info == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--calibration ", spec, ": the model has no input '", name,
                                                     "' (inputs: ", absl::StrJoin(names, ", "), ")"));
    }
    if (info->type.dtype != t->dtype()) {
      return absl::InvalidArgumentError(absl::StrCat("--calibration ", spec, ": ", DTypeName(t->dtype()),
                                                     " data; input '", name, "' is ", info->type.ToString()));
    }
    if (info->type.has_shape) {
      bool ok = info->type.shape.size() == static_cast<size_t>(t->rank());
      for (size_t d = 0; ok && d < info->type.shape.size(); ++d) {
        if (info->type.shape[d].known() && info->type.shape[d].value != t->dim(static_cast<int>(d))) ok = false;
      }
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat("--calibration ", spec, ": shape ", ShapeToString(t->shape()),
                                                       " does not fit input '", name, "' ", info->type.ToString()));
      }
    }
    for (const auto& [seen, unused] : out) {
      if (seen == name) return absl::InvalidArgumentError(absl::StrCat("--calibration: input '", name, "' given twice"));
    }
    out.emplace_back(name, std::move(*t));
  }
  return out;
}

absl::StatusOr<std::map<std::string, ValueRange>> CalibrateRanges(
    const std::string& model_path, const std::vector<std::pair<std::string, Tensor>>& inputs,
    const std::set<std::string>& values) {
  std::ifstream in(model_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return absl::DataLossError(absl::StrCat(model_path, ": cannot reparse"));
  auto range_of = [](const Tensor& t) {
    ValueRange r;
    if (t.dtype() != DType::kFloat32) return r;
    for (int64_t i = 0; i < t.size(); ++i) {
      const float v = t.data<float>()[i];
      if (!std::isfinite(v)) continue;
      r.min = std::min(r.min, v);
      r.max = std::max(r.max, v);
    }
    return r;
  };
  std::map<std::string, ValueRange> out;
  std::set<std::string> made, outputs;
  for (const auto& n : proto.graph().node())
    for (const std::string& o : n.output()) made.insert(o);
  for (const auto& o : proto.graph().output()) outputs.insert(o.name());
  std::vector<std::string> wanted;
  for (const std::string& v : values) {
    bool is_input = false;
    for (const auto& [name, t] : inputs) {
      if (name != v) continue;
      is_input = true;
      out[v] = range_of(t);
    }
    if (is_input) continue;
    if (!made.count(v)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "calibration: value '", v,
          "' (the input of a quantised layer) is made by a graph pass, not by the model; switch that pass off with "
          "--disable-pass or keep the layer float"));
    }
    wanted.push_back(v);
    if (!outputs.count(v)) {
      onnx::ValueInfoProto* vi = proto.mutable_graph()->add_output();
      vi->set_name(v);
      vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    }
  }
  if (wanted.empty()) return out;
  const std::string patched = proto.SerializeAsString();
  HEPML_ASSIGN_OR_RETURN(auto session, Session::CreateFromBytes(patched));
  auto result = session->Run(inputs, wanted);
  if (!result.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--calibration: running the model: ", result.status().message()));
  }
  for (size_t i = 0; i < wanted.size(); ++i) out[wanted[i]] = range_of((*result)[i]);
  return out;
}

absl::StatusOr<std::map<std::string, float>> CalibrateMaxAbs(const std::string& model_path,
                                                             const std::vector<std::pair<std::string, Tensor>>& inputs,
                                                             const std::set<std::string>& values) {
  HEPML_ASSIGN_OR_RETURN(auto ranges, CalibrateRanges(model_path, inputs, values));
  std::map<std::string, float> out;
  for (const auto& [name, r] : ranges) out[name] = r.min > r.max ? 0.f : std::max(std::fabs(r.min), std::fabs(r.max));
  return out;
}

}  // namespace hepml::codegen
