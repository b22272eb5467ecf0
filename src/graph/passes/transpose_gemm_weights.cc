// transpose-gemm-weights: stores the constant B of Gemm and FusedGemm with
// transB = 1 (how PyTorch exports nn.Linear: B is [N, K]) transposed, as a new
// [K, N] initializer, and sets transB = 0. The GEMM routine (linalg.h) reads
// rows of B and otherwise transposes B into a scratch panel on every call;
// done once here, a batch-1 dense layer costs what its multiply-adds cost.
// The result is bit-identical (same products, same order). Leaves alone: B
// that is not a constant (a graph input, even with an initializer default),
// B of a string or otherwise non-plain type, and every other node. The old
// initializer stays while anything else reads it.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "graph/passes/graph_util.h"
#include "graph/passes/pass.h"

namespace hepml::passes {
namespace {

// [r, c] -> [c, r] of any fixed-size element type.
Tensor Transposed(const Tensor& t) {
  const int64_t r = t.dim(0), c = t.dim(1);
  Tensor out = Tensor::Empty(t.dtype(), {c, r});
  const size_t e = DTypeSize(t.dtype());
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_mutable_data());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) std::memcpy(dst + (j * r + i) * e, src + (i * c + j) * e, e);
  return out;
}

}  // namespace

absl::StatusOr<bool> TransposeGemmWeights(Graph& graph) {
  NameGenerator names(graph);
  absl::flat_hash_map<std::string, std::string> done;  // B -> its transposed copy, shared by readers
  bool changed = false;
  for (Node& node : graph.nodes) {
    const bool gemm = node.op_type == "Gemm" && node.domain.empty();
    const bool fused = node.op_type == "FusedGemm" && node.domain == "ai.hepml";
    if (!(gemm || fused) || node.GetInt("transB", 0) == 0 || node.inputs.size() < 2) continue;
    const Tensor* b = ConstantTensor(graph, node.inputs[1]);
    if (b == nullptr || b->rank() != 2 || b->dtype() == DType::kString || DTypeSize(b->dtype()) == 0) continue;
    auto [it, fresh] = done.try_emplace(node.inputs[1]);
    if (fresh) {
      it->second = names.Fresh(absl::StrCat(node.inputs[1], "/transposed"));
      graph.initializers[it->second] = Transposed(*b);
    }
    node.inputs[1] = it->second;
    for (Attribute& a : node.attributes) {
      if (a.name == "transB") a.i = 0;
    }
    changed = true;
  }
  return changed;
}

}  // namespace hepml::passes
