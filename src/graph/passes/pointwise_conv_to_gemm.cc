// pointwise-conv-to-gemm: a 1-D pointwise convolution whose input is a
// channels-last tensor transposed to channels-first (DeepJet's and
// ParticleNet's per-particle dense layers: Transpose(perm [0, 2, 1]) of
// [N, L, C], then Conv with kernel 1) runs on the channels-last tensor as a
// dense layer,
//
//   Conv(Transpose(Xt, [0, 2, 1]), W [M, C, 1], B)
//     -> Transpose(FusedGemm(Xt, W as [M, C], B, transB = 1), [0, 2, 1])
//
// keeping Conv's activation (FusedConv's `activation` attributes, which
// FusedGemm takes alike). The [N * L, C] x [C, M] product reads Xt and
// writes [N, L, M] in place, where the convolution transposes its input and
// output around a GEMM on every call. A chain of such layers becomes a chain
// of FusedGemms: the next layer's input Transpose is the one written here,
// so it reads the previous FusedGemm's output directly, and the Transposes
// nothing reads any more go (eliminate-dead-nodes); a Transpose read after
// the chain merges with whatever transposes it again
// (cancel-transpose-reshape). The products are those of the convolution
// (one sum over C per output), up to the order of the additions.
// Requires: Conv (or FusedConv without `pool`) with constant float32
// weights of shape [M, C, 1], kernel 1, stride 1, dilation 1, no pads,
// group 1; a constant float32 bias of [M] or none; the data input produced
// by a Transpose with perm [0, 2, 1]. Leaves alone every other convolution
// (2-D, wider kernels, grouped, padded, run-time weights) and pointwise
// convolutions whose input is not such a Transpose.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

constexpr char kHepmlDomain[] = "ai.hepml";

bool IntsAbsentOr(const Node& n, const char* name, const std::vector<int64_t>& want) {
  return !n.HasAttribute(name) || n.GetInts(name) == want;
}

bool IsSwapLastTwo(const Node& n) {
  return n.domain.empty() && n.op_type == "Transpose" && n.inputs.size() == 1 && n.outputs.size() == 1 &&
         n.GetInts("perm") == std::vector<int64_t>({0, 2, 1});
}

// The [M, C] weights of a pointwise 1-D convolution, or null.
const Tensor* PointwiseWeights(const Graph& graph, const Node& n) {
  const bool conv = n.domain.empty() && n.op_type == "Conv";
  const bool fused = n.domain == kHepmlDomain && n.op_type == "FusedConv" && n.GetString("pool", "").empty();
  if (!(conv || fused) || n.outputs.size() != 1 || n.inputs.size() < 2 || n.inputs.size() > 3) return nullptr;
  const Tensor* w = ConstantTensor(graph, n.inputs[1]);
  if (w == nullptr || w->dtype() != DType::kFloat32 || w->rank() != 3 || w->dim(2) != 1) return nullptr;
  if (!IntsAbsentOr(n, "kernel_shape", {1}) || !IntsAbsentOr(n, "strides", {1}) ||
      !IntsAbsentOr(n, "dilations", {1}) || !IntsAbsentOr(n, "pads", {0, 0}) || n.GetInt("group", 1) != 1) {
    return nullptr;
  }
  const std::string auto_pad = n.GetString("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && !auto_pad.empty()) return nullptr;
  if (n.HasInput(2)) {
    const Tensor* b = ConstantTensor(graph, n.inputs[2]);
    if (b == nullptr || b->dtype() != DType::kFloat32 || b->rank() != 1 || b->dim(0) != w->dim(0)) return nullptr;
  }
  return w;
}

}  // namespace

absl::StatusOr<bool> PointwiseConvToGemm(Graph& graph) {
  NameGenerator names(graph);
  // Values that are Transpose(v, [0, 2, 1]) of a value v: value -> (v, the
  // Transpose's opset, which the Transposes written here take too).
  absl::flat_hash_map<std::string, std::pair<std::string, int>> swapped;
  std::vector<Node> out;
  out.reserve(graph.nodes.size());
  bool changed = false;
  for (Node& node : graph.nodes) {
    if (IsSwapLastTwo(node)) swapped[node.outputs[0]] = {node.inputs[0], node.opset};
    const Tensor* w = PointwiseWeights(graph, node);
    auto source = w == nullptr ? swapped.end() : swapped.find(node.inputs[0]);
    if (source == swapped.end()) {
      out.push_back(std::move(node));
      continue;
    }
    const std::string w2d = names.Fresh(node.inputs[1] + "/as_gemm");
    Tensor t = Tensor::Empty(DType::kFloat32, {w->dim(0), w->dim(1)});
    std::copy_n(w->data<float>(), w->size(), t.mutable_data<float>());
    graph.initializers[w2d] = std::move(t);

    const std::string y = node.outputs[0];
    const std::string y_last = names.Fresh(y + "/channels_last");
    Node gemm;
    gemm.name = node.name;
    gemm.op_type = "FusedGemm";
    gemm.domain = kHepmlDomain;
    gemm.opset = 1;
    gemm.inputs = {source->second.first, w2d};
    if (node.HasInput(2)) gemm.inputs.push_back(node.inputs[2]);
    gemm.outputs = {y_last};
    Attribute trans_b;
    trans_b.name = "transB";
    trans_b.type = Attribute::Type::kInt;
    trans_b.i = 1;
    gemm.attributes.push_back(trans_b);
    for (const Attribute& a : node.attributes) {
      if (a.name == "activation" || a.name == "activation_alpha" || a.name == "activation_beta") {
        gemm.attributes.push_back(a);
      }
    }
    Node back;
    back.name = names.Fresh(node.name.empty() ? y + "/to_channels_first" : node.name + "/to_channels_first");
    back.op_type = "Transpose";
    back.opset = source->second.second;
    back.inputs = {y_last};
    back.outputs = {y};
    Attribute perm;
    perm.name = "perm";
    perm.type = Attribute::Type::kInts;
    perm.ints = {0, 2, 1};
    back.attributes.push_back(perm);
    swapped[y] = {y_last, back.opset};
    out.push_back(std::move(gemm));
    out.push_back(std::move(back));
    changed = true;
  }
  graph.nodes = std::move(out);
  return changed;
}

}  // namespace hepml::passes
