// hepml::QuantizeModel (include/hepml/quantize.h): rewrites the ModelProto
// itself, so everything not quantised (names, metadata, opsets of other
// domains, value infos) is kept as it was.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "codegen/quantize.h"
#include "hepml/quantize.h"
#include "onnx/onnx_pb.h"
#include "onnx/proto_convert.h"

namespace hepml {
namespace {

struct Names {
  std::set<std::string> used;
  std::string Fresh(const std::string& base) {
    std::string n = base;
    for (int i = 1; used.count(n); ++i) n = absl::StrCat(base, "_", i);
    used.insert(n);
    return n;
  }
};

onnx::TensorProto Scalar(const std::string& name, float v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_float_data(v);
  return t;
}

onnx::TensorProto Int8Tensor(const std::string& name, int type, const std::vector<int64_t>& dims,
                             const std::vector<uint8_t>& bytes) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(bytes.begin(), bytes.end()));
  return t;
}

}  // namespace

absl::StatusOr<QuantizeReport> QuantizeModel(const std::string& model_path, const std::string& out_path,
                                             const QuantizeOptions& options) {
  if (options.calibration.empty()) {
    return absl::InvalidArgumentError("hepml quantize needs --calibration NAME=FILE.npy for the model's inputs");
  }
  HEPML_ASSIGN_OR_RETURN(auto calibration, codegen::ReadCalibration(model_path, options.calibration));
  std::ifstream in(model_path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes)) return absl::InvalidArgumentError(absl::StrCat(model_path, ": not an ONNX model"));
  onnx::GraphProto* g = proto.mutable_graph();
  const std::string model_dir = std::filesystem::path(model_path).parent_path().string();
  Names names;
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g->initializer()) {
    inits[t.name()] = &t;
    names.used.insert(t.name());
  }
  std::set<std::string> node_names;
  for (const auto& n : g->node()) {
    node_names.insert(n.name());
    names.used.insert(n.name());
    for (const auto& v : n.input()) names.used.insert(v);
    for (const auto& v : n.output()) names.used.insert(v);
  }
  for (const auto& v : g->input()) names.used.insert(v.name());
  for (const std::string& e : options.exclude) {
    if (!node_names.count(e)) {
      return absl::InvalidArgumentError(absl::StrCat("--exclude '", e, "': no node of that name in ", model_path));
    }
  }
  QuantizeReport report;
  // The layers, their weights and the activations they read.
  struct Layer {
    int index;
    int channel_axis;  // of the weight
  };
  std::vector<Layer> layers;
  std::set<std::string> activations;
  for (int i = 0; i < g->node_size(); ++i) {
    const onnx::NodeProto& n = g->node(i);
    const std::string& op = n.op_type();
    if (!n.domain().empty() && n.domain() != "ai.onnx") continue;
    if (op != "Gemm" && op != "MatMul" && op != "Conv") continue;
    const std::string label = absl::StrCat(n.name().empty() ? n.output(0) : n.name(), " (", op, ")");
    if (options.exclude.count(n.name())) {
      report.skipped.push_back(absl::StrCat(label, ": excluded"));
      continue;
    }
    auto w = n.input_size() >= 2 ? inits.find(n.input(1)) : inits.end();
    if (w == inits.end() || w->second->data_type() != onnx::TensorProto::FLOAT) {
      report.skipped.push_back(absl::StrCat(label, ": the weight is not a float initializer"));
      continue;
    }
    int axis = 0;
    bool trans_a = false, trans_b = false;
    for (const auto& a : n.attribute()) {
      if (a.name() == "transA") trans_a = a.i() != 0;
      if (a.name() == "transB") trans_b = a.i() != 0;
    }
    if (op == "Gemm") {
      if (trans_a) {
        report.skipped.push_back(absl::StrCat(label, ": transA"));
        continue;
      }
      axis = trans_b ? 0 : 1;
    } else if (op == "MatMul") {
      if (w->second->dims_size() != 2) {
        report.skipped.push_back(absl::StrCat(label, ": the weight is not 2-D"));
        continue;
      }
      axis = 1;
    }
    layers.push_back(Layer{i, axis});
    activations.insert(n.input(0));
  }
  HEPML_ASSIGN_OR_RETURN(auto ranges, codegen::CalibrateRanges(model_path, calibration, activations));
  // Opset: per-axis DequantizeLinear needs 13.
  report.opset = 0;
  for (auto& o : *proto.mutable_opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      if (o.version() < 13) o.set_version(13);
      report.opset = static_cast<int>(o.version());
    }
  }
  // Activation Q/DQ pairs, created at the first layer reading each value.
  struct ActQ {
    std::string dq_output;
    bool inserted = false;
    onnx::NodeProto q, dq;
    float scale;
    int zp;
  };
  std::map<std::string, ActQ> acts;
  const int act_type = options.int8_activations ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8;
  for (const std::string& v : activations) {
    const codegen::ValueRange r = ranges.at(v);
    ActQ a;
    float lo = r.min > r.max ? 0.f : std::min(r.min, 0.f), hi = r.min > r.max ? 0.f : std::max(r.max, 0.f);
    if (options.int8_activations) {
      const float m = std::max(std::fabs(lo), std::fabs(hi));
      a.scale = m > 0 ? m / 127.f : 1.f;
      a.zp = 0;
    } else {
      a.scale = hi > lo ? (hi - lo) / 255.f : 1.f;
      a.zp = static_cast<int>(std::min(255.f, std::max(0.f, std::nearbyint(-lo / a.scale))));
    }
    const std::string base = v.empty() ? "x" : v;
    const std::string s = names.Fresh(base + "_scale"), z = names.Fresh(base + "_zero_point");
    const std::string qo = names.Fresh(base + "_quantized"), dqo = names.Fresh(base + "_dequantized");
    *g->add_initializer() = Scalar(s, a.scale);
    uint8_t zb = static_cast<uint8_t>(a.zp);
    *g->add_initializer() = Int8Tensor(z, act_type, {}, {zb});
    a.q.set_op_type("QuantizeLinear");
    a.q.set_name(names.Fresh(base + "_QuantizeLinear"));
    a.q.add_input(v);
    a.q.add_input(s);
    a.q.add_input(z);
    a.q.add_output(qo);
    a.dq.set_op_type("DequantizeLinear");
    a.dq.set_name(names.Fresh(base + "_DequantizeLinear"));
    a.dq.add_input(qo);
    a.dq.add_input(s);
    a.dq.add_input(z);
    a.dq.add_output(dqo);
    a.dq_output = dqo;
    acts[v] = std::move(a);
  }
  // Weights: int8 initializer + DequantizeLinear.
  std::vector<onnx::NodeProto> before(static_cast<size_t>(g->node_size()));
  std::vector<std::vector<onnx::NodeProto>> inserted(static_cast<size_t>(g->node_size()));
  std::map<std::string, int> weight_uses;
  for (const auto& n : g->node())
    for (const auto& v : n.input()) weight_uses[v]++;
  for (const Layer& l : layers) {
    onnx::NodeProto* n = g->mutable_node(l.index);
    auto t = TensorFromProto(*inits.at(n->input(1)), model_dir);
    if (!t.ok()) return t.status();
    const Tensor& w = *t;
    const int64_t channels = w.dim(l.channel_axis);
    int64_t inner = 1;  // elements after the channel axis
    for (int d = l.channel_axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
    const int64_t outer = w.size() / (channels * inner);
    std::vector<float> scales(static_cast<size_t>(options.per_tensor ? 1 : channels), 0.f);
    for (int64_t i = 0; i < w.size(); ++i) {
      const int64_t c = options.per_tensor ? 0 : (i / inner) % channels;
      scales[c] = std::max(scales[c], std::fabs(w.data<float>()[i]));
    }
    for (float& s : scales) s = s > 0 ? s / 127.f : 1.f;
    std::vector<uint8_t> q(static_cast<size_t>(w.size()));
    for (int64_t i = 0; i < w.size(); ++i) {
      const int64_t c = options.per_tensor ? 0 : (i / inner) % channels;
      const float v = std::nearbyint(w.data<float>()[i] / scales[c]);
      q[i] = static_cast<uint8_t>(static_cast<int8_t>(std::min(127.f, std::max(-127.f, v))));
    }
    (void)outer;
    const std::string base = n->input(1);
    const std::string qn = names.Fresh(base + "_quantized"), sn = names.Fresh(base + "_scale");
    const std::string zn = names.Fresh(base + "_zero_point"), dqo = names.Fresh(base + "_dequantized");
    std::vector<int64_t> dims(w.shape().begin(), w.shape().end());
    *g->add_initializer() = Int8Tensor(qn, onnx::TensorProto::INT8, dims, q);
    onnx::TensorProto st;
    st.set_name(sn);
    st.set_data_type(onnx::TensorProto::FLOAT);
    if (!options.per_tensor) st.add_dims(channels);
    for (float s : scales) st.add_float_data(s);
    *g->add_initializer() = st;
    std::vector<int64_t> zdims;
    if (!options.per_tensor) zdims.push_back(channels);
    *g->add_initializer() = Int8Tensor(zn, onnx::TensorProto::INT8, zdims, std::vector<uint8_t>(scales.size(), 0));
    onnx::NodeProto dq;
    dq.set_op_type("DequantizeLinear");
    dq.set_name(names.Fresh(base + "_DequantizeLinear"));
    dq.add_input(qn);
    dq.add_input(sn);
    dq.add_input(zn);
    dq.add_output(dqo);
    if (!options.per_tensor) {
      onnx::AttributeProto* a = dq.add_attribute();
      a->set_name("axis");
      a->set_type(onnx::AttributeProto::INT);
      a->set_i(l.channel_axis);
    }
    inserted[l.index].push_back(dq);
    if (--weight_uses[base] == 0) weight_uses[base] = -1;  // no other reader: drop it
    n->set_input(1, dqo);
    ActQ& a = acts.at(n->input(0));
    if (!a.inserted) {
      inserted[l.index].insert(inserted[l.index].begin(), {a.q, a.dq});
      a.inserted = true;
    }
    const std::string x = n->input(0);
    n->set_input(0, a.dq_output);
    report.layers.push_back(absl::StrCat(n->name().empty() ? n->output(0) : n->name(), " (", n->op_type(),
                                         "): activation '", x, "' scale ", a.scale, " zero point ", a.zp,
                                         options.per_tensor ? ", weights per tensor" : ", weights per channel"));
  }
  // Nodes in order with the new ones before their first reader; initializers
  // no node reads any more dropped.
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (int i = 0; i < g->node_size(); ++i) {
    for (onnx::NodeProto& extra : inserted[i]) *nodes.Add() = std::move(extra);
    *nodes.Add() = g->node(i);
  }
  g->mutable_node()->Swap(&nodes);
  std::set<std::string> graph_inputs;
  for (const auto& v : g->input()) graph_inputs.insert(v.name());
  google::protobuf::RepeatedPtrField<onnx::TensorProto> kept;
  for (auto& t : *g->mutable_initializer()) {
    auto it = weight_uses.find(t.name());
    if (it != weight_uses.end() && it->second == -1 && !graph_inputs.count(t.name())) continue;
    *kept.Add() = std::move(t);
  }
  g->mutable_initializer()->Swap(&kept);
  const std::string tmp = absl::StrCat(out_path, ".tmp-", getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f || !proto.SerializeToOstream(&f)) {
      std::remove(tmp.c_str());
      return absl::PermissionDeniedError(absl::StrCat(out_path, ": cannot write"));
    }
  }
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(absl::StrCat(out_path, ": cannot write"));
  }
  return report;
}

}  // namespace hepml
