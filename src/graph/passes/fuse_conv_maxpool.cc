// fuse-conv-maxpool: a 2-D Conv or FusedConv (after fuse-gemm-activation)
// followed by MaxPool 2x2/2 becomes one FusedConv (ai.hepml) with
// pool = "MaxPool2x2": the kernel pools the convolution's output as it
// stores it (see src/ops/fused.cc), so the full-resolution activation is
// never written to memory. The MaxPool must have kernel_shape [2, 2],
// strides [2, 2], no (or zero) pads, unit dilations, ceil_mode 0 and no
// Indices output; the convolution's output must be read only by it and not
// be a graph output, and its weights a constant float32 tensor of rank 4
// (image CNNs: calo_cnn's three Conv -> BN -> Relu -> MaxPool stages). The
// fused node takes the MaxPool's output name and place. Leaves alone every
// other pooling (other sizes, padding, ceil mode, Indices), 1-D and 3-D
// convolutions, and FusedConvs that already pool.
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

constexpr char kHepmlDomain[] = "ai.hepml";

bool IntsAre(const Node& n, const char* name, std::initializer_list<int64_t> want, bool absent_ok) {
  if (!n.HasAttribute(name)) return absent_ok;
  const std::vector<int64_t> v = n.GetInts(name);
  return v == std::vector<int64_t>(want);
}

// MaxPool(kernel 2x2, stride 2, no pads, floor) with one output.
bool IsMaxPool2x2(const Node& p) {
  if (!p.domain.empty() || p.op_type != "MaxPool" || p.inputs.size() != 1) return false;
  if (p.outputs.size() > 1 && !p.outputs[1].empty()) return false;  // Indices
  if (!IntsAre(p, "kernel_shape", {2, 2}, false)) return false;
  if (!IntsAre(p, "strides", {2, 2}, false)) return false;
  if (!IntsAre(p, "pads", {0, 0, 0, 0}, true)) return false;
  if (!IntsAre(p, "dilations", {1, 1}, true)) return false;
  if (p.GetInt("ceil_mode", 0) != 0) return false;
  const std::string auto_pad = p.GetString("auto_pad", "NOTSET");
  return auto_pad == "NOTSET" || auto_pad.empty() || auto_pad == "VALID";
}

class ConvPoolFuser {
 public:
  explicit ConvPoolFuser(Graph& graph) : graph_(graph), index_(graph) {}

  bool Run() {
    bool changed = false;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (!index_.removed(i)) changed |= Fuse(i);
    }
    index_.Compact();
    return changed;
  }

 private:
  bool Fuse(size_t conv_index) {
    Node& conv = graph_.nodes[conv_index];
    const bool plain = conv.op_type == "Conv" && conv.domain.empty();
    const bool fused = conv.op_type == "FusedConv" && conv.domain == kHepmlDomain;
    if (!(plain || fused) || conv.outputs.size() != 1 || conv.inputs.size() < 2) return false;
    if (fused && !conv.GetString("pool", "").empty()) return false;
    const Tensor* w = ConstantTensor(graph_, conv.inputs[1]);
    if (w == nullptr || w->dtype() != DType::kFloat32 || w->rank() != 4) return false;
    size_t pool_index = 0;
    Node* pool = index_.SoleReader(conv.outputs[0], &pool_index);
    if (pool == nullptr || pool->inputs[0] != conv.outputs[0] || !IsMaxPool2x2(*pool)) return false;
    Node out = conv;
    if (plain) {
      out.op_type = "FusedConv";
      out.domain = kHepmlDomain;
      out.opset = 1;
    }
    out.name = pool->name.empty() ? conv.name : pool->name;
    out.outputs = {pool->outputs[0]};
    Attribute a;
    a.name = "pool";
    a.type = Attribute::Type::kString;
    a.s = "MaxPool2x2";
    out.attributes.push_back(std::move(a));
    *pool = std::move(out);
    index_.Remove(conv_index);
    return true;
  }

  Graph& graph_;
  NodeIndex index_;
};

}  // namespace

absl::StatusOr<bool> FuseConvMaxPool(Graph& graph) { return ConvPoolFuser(graph).Run(); }

}  // namespace hepml::passes
