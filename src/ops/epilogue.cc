// Activation epilogues (see epilogue.h).
#include "ops/epilogue.h"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "ops/gemm.h"
#include "ops/vec_math.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

constexpr int64_t kGrain = 1 << 14;

template <typename T, typename F>
void ApplyInPlace(KernelContext& ctx, Tensor* y, F f) {
  using C = ComputeT<T>;
  T* p = y->mutable_data<T>();
  ctx.ParallelFor(0, y->size(), kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) p[i] = static_cast<T>(f(static_cast<C>(p[i])));
  });
}

}  // namespace

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
  else if (name == "Softplus") spec.kind = Activation::kSoftplus;
  else return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": unknown activation '", name, "'"));
  if (spec.kind == Activation::kLeakyRelu) spec.alpha = node.GetFloat("activation_alpha", 0.01f);
  if (spec.kind == Activation::kClip) {
    spec.alpha = node.GetFloat("activation_alpha", -std::numeric_limits<float>::infinity());
    spec.beta = node.GetFloat("activation_beta", std::numeric_limits<float>::infinity());
  }
  return spec;
}

absl::Status ApplyActivation(KernelContext& ctx, const ActivationSpec& spec, Tensor* y) {
  if (spec.kind == Activation::kNone || y->size() == 0) return absl::OkStatus();
  if (y->dtype() == DType::kFloat32) {
    float* p = y->mutable_data<float>();
    ctx.ParallelFor(0, y->size(), kGrain, [&spec, p](int64_t lo, int64_t hi) {
      BiasActivateF32(spec, 0.0f, p + lo, hi - lo);
    });
    return absl::OkStatus();
  }
  return VisitFloat(y->dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    switch (spec.kind) {
      case Activation::kNone: break;
      case Activation::kRelu: ApplyInPlace<T>(ctx, y, [](C x) { return x > C(0) ? x : C(0); }); break;
      case Activation::kLeakyRelu: {
        const C a = static_cast<C>(spec.alpha);
        ApplyInPlace<T>(ctx, y, [a](C x) { return x >= C(0) ? x : a * x; });
        break;
      }
      case Activation::kSigmoid:
        ApplyInPlace<T>(ctx, y, [](C x) {
          const C e = std::exp(-std::fabs(x));
          const C r = C(1) / (C(1) + e);
          return x >= C(0) ? r : e * r;
        });
        break;
      case Activation::kTanh: ApplyInPlace<T>(ctx, y, [](C x) { return std::tanh(x); }); break;
      case Activation::kClip: {
        const C lo = static_cast<C>(spec.alpha), hi = static_cast<C>(spec.beta);
        ApplyInPlace<T>(ctx, y, [lo, hi](C x) {
          x = x < lo ? lo : x;
          return x > hi ? hi : x;
        });
        break;
      }
      case Activation::kGelu:
        ApplyInPlace<T>(ctx, y, [](C x) {
          return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.70710678118654752440084436210485)));
        });
        break;
      case Activation::kSoftplus:  // as activations.cc's StableSoftplus
        ApplyInPlace<T>(ctx, y, [](C x) { return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); });
        break;
    }
    return absl::OkStatus();
  });
}

void BiasActivateF32(const ActivationSpec& spec, float bias, float* y, int64_t n) {
  if (spec.kind == Activation::kNone || spec.kind == Activation::kRelu) {
    if (bias != 0.0f || spec.kind == Activation::kRelu) BiasReluF32(y, y, bias, spec.kind == Activation::kRelu, n);
    return;
  }
  if (bias != 0.0f) BiasReluF32(y, y, bias, false, n);
  switch (spec.kind) {
    case Activation::kNone: break;
    case Activation::kRelu: ReluF32(y, y, n); break;
    case Activation::kSigmoid: SigmoidF32(y, y, n); break;
    case Activation::kTanh: TanhF32(y, y, n); break;
    case Activation::kGelu: GeluF32(y, y, n); break;
    case Activation::kSoftplus: SoftplusF32(y, y, n); break;
    case Activation::kLeakyRelu: LeakyReluF32(y, y, n, spec.alpha); break;
    case Activation::kClip: ClipF32(y, y, n, spec.alpha, spec.beta); break;
  }
}

}  // namespace hepml::ops
