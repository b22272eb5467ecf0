#include "codegen/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hepml::codegen {

absl::StatusOr<PruneSpec> ParsePruneSpec(const std::string& text) {
  PruneSpec spec;
  const size_t colon = text.find(':');
  if (colon == std::string::npos) {
    double s = 0;
    if (!absl::SimpleAtod(text, &s) || !(s >= 0.0 && s < 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prune '", text, "': expected a sparsity in [0, 1) (e.g. 0.8) or N:M (e.g. 2:4)"));
    }
    spec.sparsity = s;
    return spec;
  }
  int n = 0, m = 0;
  if (!absl::SimpleAtoi(text.substr(0, colon), &n) || !absl::SimpleAtoi(text.substr(colon + 1), &m) || n < 1 ||
      m < 2 || n >= m || m > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--prune '", text, "': expected N:M with 1 <= N < M <= 64 (e.g. 2:4)"));
  }
  spec.n = n;
  spec.m = m;
  return spec;
}

namespace {

double ZeroFraction(const float* w, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += w[i] == 0.f;
  return n ? static_cast<double>(z) / static_cast<double>(n) : 0.0;
}

// Zeroes the `count` smallest |w| of w[0..n) (ties: lowest index first).
void ZeroSmallest(float* w, int64_t n, int64_t count, int64_t stride = 1) {
  if (count <= 0) return;
  std::vector<int64_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  auto less = [&](int64_t a, int64_t b) {
    const float fa = std::fabs(w[a * stride]), fb = std::fabs(w[b * stride]);
    return fa < fb || (fa == fb && a < b);
  };
  if (count < n) std::nth_element(idx.begin(), idx.begin() + count, idx.end(), less);
  for (int64_t i = 0; i < std::min(count, n); ++i) w[idx[i] * stride] = 0.f;
}

}  // namespace

std::vector<PrunedLayer> PruneWeights(Graph& graph, const PruneSpec& spec) {
  std::vector<PrunedLayer> layers;
  for (size_t ni = 0; ni < graph.nodes.size(); ++ni) {
    const Node& node = graph.nodes[ni];
    const std::string& op = node.op_type;
    if (op != "Gemm" && op != "MatMul" && op != "Conv" && op != "FusedGemm" && op != "FusedConv") continue;
    if (node.inputs.size() < 2) continue;
    auto it = graph.initializers.find(node.inputs[1]);
    if (it == graph.initializers.end() || it->second.dtype() != DType::kFloat32 || it->second.shape().size() < 2)
      continue;
    PrunedLayer layer;
    layer.node = node.name.empty() ? absl::StrCat(op, "#", ni) : node.name;
    layer.weight = node.inputs[1];
    Tensor w = it->second.Clone();
    float* d = w.mutable_data<float>();
    const int64_t size = w.size();
    layer.size = size;
    layer.zeros_before = ZeroFraction(d, size);
    const Shape& s = w.shape();
    // The weights as [outer, reduction, inner] with the reduction axis in the
    // middle: Gemm [K, N] (transB: [N, K]), MatMul [..., K, N], Conv
    // [C_out, C_in / group * kernel...] (the reduction is all but axis 0).
    int64_t outer = 1, red = 1, inner = 1;
    const bool gemm = op == "Gemm" || op == "FusedGemm";
    if (op == "Conv" || op == "FusedConv") {
      outer = s[0];
      red = size / std::max<int64_t>(1, s[0]);
    } else if (gemm && node.GetInt("transB", 0) != 0) {
      outer = s[0];
      red = s[1];
    } else {
      const size_t r = s.size();
      red = s[r - 2];
      inner = s[r - 1];
      outer = size / std::max<int64_t>(1, red * inner);
    }
    if (spec.m > 0) {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i)
          for (int64_t k0 = 0; k0 < red; k0 += spec.m) {
            const int64_t g = std::min<int64_t>(spec.m, red - k0);
            // A short last group keeps the same share (rounded up).
            const int64_t keep = g == spec.m ? spec.n : (g * spec.n + spec.m - 1) / spec.m;
            ZeroSmallest(d + (o * red + k0) * inner + i, g, g - keep, inner);
          }
    } else if (spec.sparsity > 0) {
      const int64_t target = static_cast<int64_t>(std::ceil(spec.sparsity * static_cast<double>(size) - 1e-9));
      ZeroSmallest(d, size, target);
    }
    layer.zeros_after = ZeroFraction(d, size);
    it->second = std::move(w);
    layers.push_back(layer);
  }
  return layers;
}

}  // namespace hepml::codegen
