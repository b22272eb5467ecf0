// Parsing of fixed<W,I,Q,O>, weight quantisation for the int8 and fixed-point
// kernels, and calibration of activation ranges with hepml's Session.
#include "codegen/quantize.h"

#include <algorithm>
#include <cstring>
#include <optional>
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

namespace hepml::codegen {
namespace {

// A constant per-tensor quantisation parameter pair of a Q or DQ node.
struct QParams {
  float scale = 0;
  int zero_point = 0;
  bool uint8 = true;
};

std::optional<QParams> ConstQParams(const Graph& g, const Node& n) {
  auto s = g.initializers.find(n.inputs.size() > 1 ? n.inputs[1] : "");
  if (s == g.initializers.end() || s->second.dtype() != DType::kFloat32 || s->second.size() != 1) return std::nullopt;
  QParams p;
  p.scale = s->second.data<float>()[0];
  if (n.HasInput(2)) {
    auto z = g.initializers.find(n.inputs[2]);
    if (z == g.initializers.end() || z->second.size() != 1) return std::nullopt;
    if (z->second.dtype() == DType::kUInt8) p.zero_point = z->second.data<uint8_t>()[0];
    else if (z->second.dtype() == DType::kInt8) {
      p.zero_point = z->second.data<int8_t>()[0];
      p.uint8 = false;
    } else {
      return std::nullopt;
    }
  }
  if (!(p.scale > 0) || !std::isfinite(p.scale)) return std::nullopt;
  return p;
}

}  // namespace

std::vector<QdqWeight> CollectQdqWeights(const Graph& graph) {
  std::vector<QdqWeight> out;
  for (const Node& n : graph.nodes) {
    if (n.op_type != "DequantizeLinear" || !n.domain.empty() || n.inputs.size() < 2) continue;
    auto q = graph.initializers.find(n.inputs[0]);
    auto s = graph.initializers.find(n.inputs[1]);
    if (q == graph.initializers.end() || s == graph.initializers.end()) continue;
    if (q->second.dtype() != DType::kInt8 || s->second.dtype() != DType::kFloat32 || q->second.rank() < 1) continue;
    if (n.HasInput(2)) {
      auto z = graph.initializers.find(n.inputs[2]);
      if (z == graph.initializers.end() || z->second.dtype() != DType::kInt8) continue;
      bool zero = true;
      for (int64_t i = 0; i < z->second.size(); ++i) zero &= z->second.data<int8_t>()[i] == 0;
      if (!zero) continue;
    }
    QdqWeight w;
    w.q = q->second;
    w.scales.assign(s->second.data<float>(), s->second.data<float>() + s->second.size());
    int64_t axis = n.GetInt("axis", 1);
    if (axis < 0) axis += q->second.rank();
    w.axis = static_cast<int>(axis);
    if (w.scales.size() != 1 && (axis >= q->second.rank() || q->second.dim(w.axis) != static_cast<int64_t>(w.scales.size()))) {
      continue;
    }
    if (n.GetInt("block_size", 0) != 0) continue;
    int64_t inner = 1;
    for (int d = w.axis + 1; d < q->second.rank(); ++d) inner *= q->second.dim(d);
    w.dequantized = Tensor::Zeros(DType::kFloat32, q->second.shape());
    for (int64_t i = 0; i < q->second.size(); ++i) {
      const size_t c = w.scales.size() == 1 ? 0 : static_cast<size_t>((i / inner) % q->second.dim(w.axis));
      w.dequantized.mutable_data<float>()[i] =
          static_cast<float>(static_cast<int64_t>(q->second.data<int8_t>()[i])) * w.scales[c];
    }
    out.push_back(std::move(w));
  }
  return out;
}

void PlanQdq(const Graph& graph, const std::vector<QdqWeight>& weights, WeightFormats* formats, bool fuse) {
  std::map<std::string, const Node*> producer;
  std::map<std::string, std::vector<std::pair<const Node*, size_t>>> readers;
  for (const Node& n : graph.nodes) {
    for (const std::string& o : n.outputs) producer[o] = &n;
    for (size_t i = 0; i < n.inputs.size(); ++i) readers[n.inputs[i]].emplace_back(&n, i);
  }
  std::set<std::string> graph_outputs;
  for (const auto& o : graph.outputs) graph_outputs.insert(o.name);
  // A DequantizeLinear reading a QuantizeLinear with the same constant
  // per-tensor parameters: its QuantizeLinear and their parameters.
  auto pair_of = [&](const Node* dq) -> std::optional<std::pair<const Node*, QParams>> {
    if (dq == nullptr || dq->op_type != "DequantizeLinear" || !dq->domain.empty()) return std::nullopt;
    auto it = producer.find(dq->inputs[0]);
    if (it == producer.end() || it->second->op_type != "QuantizeLinear" || !it->second->domain.empty()) return std::nullopt;
    const Node* q = it->second;
    if (q->GetInt("saturate", 1) != 1 || q->HasInput(3)) return std::nullopt;
    auto pq = ConstQParams(graph, *q), pd = ConstQParams(graph, *dq);
    if (!pq || !pd || pq->scale != pd->scale || pq->zero_point != pd->zero_point || pq->uint8 != pd->uint8) {
      return std::nullopt;
    }
    // QuantizeLinear's output type comes from its zero point (uint8 without one).
    return std::make_pair(q, *pq);
  };
  std::set<const Node*> fused;
  for (const Node& n : graph.nodes) {
    if (!fuse || !IsQuantizableLayer(graph, n)) continue;
    auto act = pair_of(producer.count(n.inputs[0]) ? producer[n.inputs[0]] : nullptr);
    if (!act) continue;
    const Tensor& wf = graph.initializers.at(n.inputs[1]);
    // The layer's weight as [N, K] rows: its output-channel axis.
    int out_axis = 0;
    if (n.op_type == "Gemm" || n.op_type == "FusedGemm") out_axis = n.GetInt("transB", 0) ? 0 : 1;
    else if (n.op_type == "MatMul") out_axis = 1;
    const int64_t N = wf.dim(out_axis), K = wf.size() / N;
    for (const QdqWeight& w : weights) {
      if (w.dequantized.size() != wf.size()) continue;
      const float* d = w.dequantized.data<float>();
      const float* f = wf.data<float>();
      bool same = w.dequantized.shape() == wf.shape() &&
                  std::memcmp(d, f, static_cast<size_t>(wf.size()) * 4) == 0;
      bool transposed = false;
      if (!same && wf.rank() == 2 && w.q.rank() == 2 && w.q.dim(0) == wf.dim(1) && w.q.dim(1) == wf.dim(0)) {
        transposed = true;
        const int64_t r = wf.dim(0), c = wf.dim(1);
        for (int64_t i = 0; transposed && i < r; ++i)
          for (int64_t j = 0; transposed && j < c; ++j) transposed = std::memcmp(&f[i * c + j], &d[j * r + i], 4) == 0;
      }
      if (!same && !transposed) continue;
      // The scale axis in the layer's orientation must be its output axis.
      const int scale_axis = transposed ? 1 - w.axis : w.axis;
      if (w.scales.size() != 1 && scale_axis != out_axis) continue;
      WeightFormats::QdqLayer l;
      l.x = act->first->inputs[0];
      l.x_scale = act->second.scale;
      l.x_zero_point = act->second.zero_point;
      l.x_uint8 = act->second.uint8;
      l.rows.resize(static_cast<size_t>(N * K));
      l.w_scales.resize(static_cast<size_t>(N));
      const int8_t* q = w.q.data<int8_t>();
      for (int64_t j = 0; j < N; ++j) {
        l.w_scales[j] = w.scales.size() == 1 ? w.scales[0] : w.scales[j];
        for (int64_t k = 0; k < K; ++k) {
          // Element (j, k) of the rows in the layer's weight, then in q.
          int64_t i = 0;
          if (wf.rank() == 2 && out_axis == 1) i = k * N + j;  // [K, N]
          else i = j * K + k;                                   // [N, K...]
          if (transposed) {
            const int64_t r = wf.dim(0), c = wf.dim(1);
            i = (i % c) * r + i / c;
          }
          l.rows[j * K + k] = q[i];
        }
      }
      formats->qdq[n.name] = std::move(l);
      fused.insert(&n);
      break;
    }
  }
  // The pairs: skipped when only fused layers read them, else in float.
  for (const Node& n : graph.nodes) {
    auto p = pair_of(&n);
    if (!p) continue;
    bool only_fused = !graph_outputs.count(n.outputs[0]);
    for (const auto& [r, pos] : readers[n.outputs[0]]) only_fused &= fused.count(r) && pos == 0;
    if (only_fused) {
      formats->skip.insert(n.name);
    } else {
      WeightFormats::FakeQuant fq;
      fq.x = p->first->inputs[0];
      fq.scale = p->second.scale;
      fq.zero_point = p->second.zero_point;
      fq.lo = p->second.uint8 ? 0 : -128;
      fq.hi = p->second.uint8 ? 255 : 127;
      formats->fake_quant[n.name] = fq;
    }
  }
  for (const Node& n : graph.nodes) {
    if (n.op_type != "QuantizeLinear" || graph_outputs.count(n.outputs[0])) continue;
    bool all = true;
    for (const auto& [r, pos] : readers[n.outputs[0]]) all &= formats->skip.count(r->name) || formats->fake_quant.count(r->name);
    if (all) formats->skip.insert(n.name);
  }
}

}  // namespace hepml::codegen
