// factor-edge-conv: the first layer of an EdgeConv MLP, a pointwise
// convolution over the edge features EdgeFeatures(X, Idx) = [x_p ; x_q - x_p]
// (fuse-edge-features), computed per point instead of per edge:
//
//   W [x_p ; x_q - x_p] + b = ((W1 - W2) x_p + b) + W2 x_q     (W = [W1 | W2])
//
// so  Y = act(Conv(EdgeFeatures(X, Idx), W, b))  becomes
//
//   H = Conv(X, [W1 - W2 ; W2] as [2M, C, 1], [b ; 0])    [N, 2M, P]
//   Y = EdgeGatherAdd(H, Idx, activation)                  [N, M, P, K]
//
// (ai.hepml, see src/ops/fused.cc): the multiply-adds run on the P points
// rather than the P * K edges (K times fewer; ParticleNet: 8), and the K
// neighbour terms are gathered and added. The sums are the same up to
// rounding: W1 - W2 is rounded once to float32 and the additions are
// reassociated (about one float32 ulp of |W1 x_p| + |W2 x_q| per output).
// Requires: a Conv or FusedConv (no `pool`) whose data input is an
// EdgeFeatures read by it alone, with constant float32 weights
// [M, 2C, 1, 1], kernel 1x1, stride 1, dilation 1, no pads, group 1, and a
// constant float32 bias [M] or none. The Conv keeps its output name and
// activation; the EdgeFeatures node's place goes to the new Conv. Leaves
// alone every other convolution and EdgeFeatures read elsewhere.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

constexpr char kHepmlDomain[] = "ai.hepml";

bool IntsAbsentOr(const Node& n, const char* name, const std::vector<int64_t>& want) {
  return !n.HasAttribute(name) || n.GetInts(name) == want;
}

Attribute IntsAttribute(const std::string& name, std::vector<int64_t> v) {
  Attribute a;
  a.name = name;
  a.type = Attribute::Type::kInts;
  a.ints = std::move(v);
  return a;
}

}  // namespace

absl::StatusOr<bool> FactorEdgeConv(Graph& graph) {
  NodeIndex index(graph);
  NameGenerator names(graph);
  bool changed = false;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    const bool plain = conv.domain.empty() && conv.op_type == "Conv";
    const bool fused = conv.domain == kHepmlDomain && conv.op_type == "FusedConv" && conv.GetString("pool", "").empty();
    if (!(plain || fused) || conv.outputs.size() != 1 || conv.inputs.size() < 2 || conv.inputs.size() > 3) continue;
    size_t ef_index = 0;
    Node* ef = index.Producer(conv.inputs[0], &ef_index);
    if (ef == nullptr || ef->domain != kHepmlDomain || ef->op_type != "EdgeFeatures" || ef->inputs.size() != 2 ||
        !index.ReadOnce(conv.inputs[0])) {
      continue;
    }
    const Tensor* w = ConstantTensor(graph, conv.inputs[1]);
    if (w == nullptr || w->dtype() != DType::kFloat32 || w->rank() != 4 || w->dim(1) % 2 != 0 || w->dim(2) != 1 ||
        w->dim(3) != 1) {
      continue;
    }
    if (!IntsAbsentOr(conv, "kernel_shape", {1, 1}) || !IntsAbsentOr(conv, "strides", {1, 1}) ||
        !IntsAbsentOr(conv, "dilations", {1, 1}) || !IntsAbsentOr(conv, "pads", {0, 0, 0, 0}) ||
        conv.GetInt("group", 1) != 1) {
      continue;
    }
    const std::string auto_pad = conv.GetString("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && !auto_pad.empty()) continue;
    const int64_t m = w->dim(0), c = w->dim(1) / 2;
    const Tensor* b = conv.HasInput(2) ? ConstantTensor(graph, conv.inputs[2]) : nullptr;
    if (conv.HasInput(2) && (b == nullptr || b->dtype() != DType::kFloat32 || b->rank() != 1 || b->dim(0) != m)) {
      continue;
    }

    // [W1 - W2 ; W2] and [b ; 0].
    Tensor wf = Tensor::Empty(DType::kFloat32, {2 * m, c, 1});
    Tensor bf = Tensor::Empty(DType::kFloat32, {2 * m});
    const float* pw = w->data<float>();
    float* pwf = wf.mutable_data<float>();
    float* pbf = bf.mutable_data<float>();
    for (int64_t o = 0; o < m; ++o) {
      for (int64_t ch = 0; ch < c; ++ch) {
        const float self = pw[o * 2 * c + ch], neighbour = pw[o * 2 * c + c + ch];
        pwf[o * c + ch] = self - neighbour;
        pwf[(m + o) * c + ch] = neighbour;
      }
      pbf[o] = b != nullptr ? b->data<float>()[o] : 0.0f;
      pbf[m + o] = 0.0f;
    }
    const std::string w_name = names.Fresh(conv.inputs[1] + "/factored");
    const std::string b_name = names.Fresh(conv.inputs[1] + "/factored_bias");
    graph.initializers[w_name] = std::move(wf);
    graph.initializers[b_name] = std::move(bf);

    const std::string terms = names.Fresh(conv.outputs[0] + "/point_terms");
    Node lin;
    lin.name = names.Fresh(conv.name.empty() ? terms : conv.name + "/point_terms");
    lin.op_type = "Conv";
    lin.opset = 11;
    lin.inputs = {ef->inputs[0], w_name, b_name};
    lin.outputs = {terms};
    lin.attributes = {IntsAttribute("kernel_shape", {1})};

    Node gather;
    gather.name = conv.name;
    gather.op_type = "EdgeGatherAdd";
    gather.domain = kHepmlDomain;
    gather.opset = 1;
    gather.inputs = {terms, ef->inputs[1]};
    gather.outputs = conv.outputs;
    for (const Attribute& a : conv.attributes) {
      if (a.name == "activation" || a.name == "activation_alpha" || a.name == "activation_beta") {
        gather.attributes.push_back(a);
      }
    }
    *ef = std::move(lin);
    conv = std::move(gather);
    changed = true;
  }
  return changed;
}

}  // namespace hepml::passes
