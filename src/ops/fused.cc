// hepml's own fused operators (domain "ai.hepml", opset 1), written by the
// graph passes (fuse-gemm-activation) and accepted in models hepml saves:
//
//   FusedGemm(A, B, C?)  Gemm's inputs and attributes (transA, transB, alpha,
//                        beta); A may also have rank > 2 when transA = 0: its
//                        leading dims are flattened into M and kept in the
//                        output, as MatMul([..., M, K], [K, N]) -> [..., M, N].
//   FusedConv(X, W, B?)  Conv's inputs and attributes.
//
// Both then apply `activation` in place on the output:
//   ""/"None"  nothing           "Relu"     max(x, 0)
//   "LeakyRelu"  x >= 0 ? x : activation_alpha * x   (alpha default 0.01)
//   "Sigmoid", "Tanh"            "Gelu"     0.5 x (1 + erf(x / sqrt 2))
//   "Clip"       clamp to [activation_alpha, activation_beta] (defaults -inf, inf)
// with the same arithmetic as the standalone operators (activations.cc,
// elementwise.cc), so a fused node computes what the pair computed.
#include <cmath>
#include <limits>

#include "ops/conv.h"
#include "ops/gemm.h"
#include "ops/kernel_util.h"
#include "ops/linalg.h"
#include "ops/op_registry.h"
#include "ops/vec_math.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

constexpr int64_t kGrain = 1 << 14;

enum class Activation { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kGelu };

struct ActivationSpec {
  Activation kind = Activation::kNone;
  float alpha = 0;
  float beta = 0;
};

absl::StatusOr<ActivationSpec> ParseActivation(const Node& node) {
  const std::string name = node.GetString("activation", "");
  ActivationSpec spec;
  if (name.empty() || name == "None") return spec;
  if (name == "Relu") spec.kind = Activation::kRelu;
  else if (name == "LeakyRelu") spec.kind = Activation::kLeakyRelu;
  else if (name == "Sigmoid") spec.kind = Activation::kSigmoid;
  else if (name == "Tanh") spec.kind = Activation::kTanh;
  else if (name == "Clip") spec.kind = Activation::kClip;
  else if (name == "Gelu") spec.kind = Activation::kGelu;
  else return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": unknown activation '", name, "'"));
  if (spec.kind == Activation::kLeakyRelu) spec.alpha = node.GetFloat("activation_alpha", 0.01f);
  if (spec.kind == Activation::kClip) {
    spec.alpha = node.GetFloat("activation_alpha", -std::numeric_limits<float>::infinity());
    spec.beta = node.GetFloat("activation_beta", std::numeric_limits<float>::infinity());
  }
  return spec;
}

template <typename T, typename F>
void ApplyInPlace(KernelContext& ctx, Tensor* y, F f) {
  using C = ComputeT<T>;
  T* p = y->mutable_data<T>();
  ctx.ParallelFor(0, y->size(), kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) p[i] = static_cast<T>(f(static_cast<C>(p[i])));
  });
}

absl::Status ApplyActivation(KernelContext& ctx, const ActivationSpec& spec, Tensor* y) {
  if (spec.kind == Activation::kNone || y->size() == 0) return absl::OkStatus();
  return VisitFloat(y->dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    switch (spec.kind) {
      case Activation::kNone: break;
      case Activation::kRelu:
        if constexpr (std::is_same_v<T, float>) {
          float* p = y->mutable_data<float>();
          ctx.ParallelFor(0, y->size(), kGrain, [p](int64_t lo, int64_t hi) { ReluF32(p + lo, p + lo, hi - lo); });
        } else {
          ApplyInPlace<T>(ctx, y, [](C x) { return x > C(0) ? x : C(0); });
        }
        break;
      case Activation::kLeakyRelu: {
        const C a = static_cast<C>(spec.alpha);
        ApplyInPlace<T>(ctx, y, [a](C x) { return x >= C(0) ? x : a * x; });
        break;
      }
      case Activation::kSigmoid:
        if constexpr (std::is_same_v<T, float>) {
          float* p = y->mutable_data<float>();
          ctx.ParallelFor(0, y->size(), kGrain, [p](int64_t lo, int64_t hi) { SigmoidF32(p + lo, p + lo, hi - lo); });
          break;
        }
        ApplyInPlace<T>(ctx, y, [](C x) {
          const C e = std::exp(-std::fabs(x));
          const C r = C(1) / (C(1) + e);
          return x >= C(0) ? r : e * r;
        });
        break;
      case Activation::kTanh:
        if constexpr (std::is_same_v<T, float>) {
          float* p = y->mutable_data<float>();
          ctx.ParallelFor(0, y->size(), kGrain, [p](int64_t lo, int64_t hi) { TanhF32(p + lo, p + lo, hi - lo); });
        } else {
          ApplyInPlace<T>(ctx, y, [](C x) { return std::tanh(x); });
        }
        break;
      case Activation::kClip: {
        const C lo = static_cast<C>(spec.alpha), hi = static_cast<C>(spec.beta);
        ApplyInPlace<T>(ctx, y, [lo, hi](C x) {
          x = x < lo ? lo : x;
          return x > hi ? hi : x;
        });
        break;
      }
      case Activation::kGelu:
        if constexpr (std::is_same_v<T, float>) {
          float* p = y->mutable_data<float>();
          ctx.ParallelFor(0, y->size(), kGrain, [p](int64_t lo, int64_t hi) { GeluF32(p + lo, p + lo, hi - lo); });
          break;
        }
        ApplyInPlace<T>(ctx, y, [](C x) {
          return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.70710678118654752440084436210485)));
        });
        break;
    }
    return absl::OkStatus();
  });
}

absl::Status ComputeFusedGemm(KernelContext& ctx) {
  auto spec = ParseActivation(ctx.node());
  if (!spec.ok()) return spec.status();
  auto y = RunGemm(ctx, /*flatten_a=*/true);
  if (!y.ok()) return y.status();
  return ApplyActivation(ctx, *spec, *y);
}

absl::Status ComputeFusedConv(KernelContext& ctx) {
  auto spec = ParseActivation(ctx.node());
  if (!spec.ok()) return spec.status();
  auto y = RunConv(ctx);
  if (!y.ok()) return y.status();
  return ApplyActivation(ctx, *spec, *y);
}

absl::Status InferFusedGemm(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2 || outputs.empty()) return absl::OkStatus();
  if (auto spec = ParseActivation(ctx.node); !spec.ok()) return spec.status();
  const TypeInfo& a = ctx.input_types[0];
  const TypeInfo& b = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(a.dtype);
  if (!a.has_shape || !b.has_shape) return absl::OkStatus();
  const bool ta = ctx.node.GetInt("transA", 0) != 0, tb = ctx.node.GetInt("transB", 0) != 0;
  if (b.shape.size() != 2 || a.shape.size() < 2 || (ta && a.shape.size() != 2)) {
    return absl::InvalidArgumentError("FusedGemm: B must be 2-D and A 2-D (or N-D without transA)");
  }
  std::vector<Dim> dims;
  if (ta) dims.push_back(a.shape[1]);
  else dims.assign(a.shape.begin(), a.shape.end() - 1);
  dims.push_back(b.shape[tb ? 0 : 1]);
  outputs[0] = TypeInfo::Tensor(a.dtype, std::move(dims));
  return absl::OkStatus();
}

absl::Status InferFusedConv(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (auto spec = ParseActivation(ctx.node); !spec.ok()) return spec.status();
  return InferConvOutput(ctx, outputs);
}

const OpTableRegistration kFusedOps({
    {.domain = "ai.hepml", .name = "FusedGemm", .since = 1, .until = 1, .types = kFloatTypes,
     .infer = InferFusedGemm, .compute = ComputeFusedGemm,
     .prepare = PrepareGemmWeights},
    {.domain = "ai.hepml", .name = "FusedConv", .since = 1, .until = 1, .types = kFloatTypes,
     .infer = InferFusedConv, .compute = ComputeFusedConv, .prepare = PrepareConv},
});

}  // namespace
}  // namespace hepml::ops
