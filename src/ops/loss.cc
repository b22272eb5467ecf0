// Loss operators: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
// (opsets 12 and 13; 13 adds bfloat16).
//
// Both take scores/log-probabilities [N, C, D1, ..., Dk] and targets
// [N, D1, ..., Dk] holding class indices, with optional per-class weights [C]
// and an optional ignore_index whose elements contribute nothing (weight 0).
// reduction "none" returns the per-element loss; "sum" its sum; "mean" the
// sum divided by the sum of the applied weights (NaN when every element is
// ignored). Sums run in double.
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

enum class Reduction { kNone, kSum, kMean };

struct LossArgs {
  int64_t n = 0, c = 0, d = 1;  // batch, classes, product of the extra dims
  Reduction reduction = Reduction::kMean;
  bool has_ignore = false;
  int64_t ignore_index = 0;
  std::vector<int64_t> targets;  // n * d
  std::vector<double> weights;   // c entries, empty: all 1
};

// Checks shapes and reads targets, weights and attributes.
absl::StatusOr<LossArgs> ReadLossArgs(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& t = ctx.Input(1);
  LossArgs a;
  const std::string reduction = ctx.node().GetString("reduction", "mean");
  if (reduction == "none") a.reduction = Reduction::kNone;
  else if (reduction == "sum") a.reduction = Reduction::kSum;
  else if (reduction == "mean") a.reduction = Reduction::kMean;
  else return ctx.Error("reduction must be none, sum or mean, got '", reduction, "'");
  if (x.rank() < 2) return ctx.Error("input must be [N, C, ...], got ", ShapeToString(x.shape()));
  if (t.rank() != x.rank() - 1 || t.dim(0) != x.dim(0) ||
      !std::equal(t.shape().begin() + 1, t.shape().end(), x.shape().begin() + 2)) {
    return ctx.Error("target shape ", ShapeToString(t.shape()), " does not match input shape ",
                     ShapeToString(x.shape()), " (expected [N, D1, ...])");
  }
  if (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64) {
    return ctx.Error("target must be int32 or int64, got ", DTypeName(t.dtype()));
  }
  a.n = x.dim(0);
  a.c = x.dim(1);
  for (int i = 2; i < x.rank(); ++i) a.d *= x.dim(i);
  auto targets = ReadInt64s(t);
  if (!targets.ok()) return ctx.Error(targets.status().message());
  a.targets = std::move(*targets);
  if (ctx.HasInput(2)) {
    const Tensor& w = ctx.Input(2);
    if (w.rank() != 1 || w.dim(0) != a.c) {
      return ctx.Error("weights must be [C] = [", a.c, "], got ", ShapeToString(w.shape()));
    }
    if (w.dtype() != x.dtype()) return ctx.Error("weights type differs from the input type");
    auto weights = ReadDoubles(w);
    if (!weights.ok()) return ctx.Error(weights.status().message());
    a.weights = std::move(*weights);
  }
  if (const Attribute* ii = ctx.node().FindAttribute("ignore_index")) {
    a.has_ignore = true;
    a.ignore_index = ii->i;
  }
  for (size_t i = 0; i < a.targets.size(); ++i) {
    const int64_t v = a.targets[i];
    if (a.has_ignore && v == a.ignore_index) continue;
    if (v < 0 || v >= a.c) return ctx.Error("target ", v, " at element ", i, " is outside [0, ", a.c, ")");
  }
  return a;
}

// loss = -logp[n, target, d] * weight[target]; writes output 0.
// logp(n, c, d) returns the log-probability as double.
template <typename T, typename LogP>
absl::Status WriteNll(KernelContext& ctx, const LossArgs& a, const Shape& target_shape, LogP logp) {
  const int64_t count = a.n * a.d;
  std::vector<double> loss(static_cast<size_t>(count));
  double loss_sum = 0, weight_sum = 0;
  for (int64_t n = 0; n < a.n; ++n) {
    for (int64_t d = 0; d < a.d; ++d) {
      const int64_t i = n * a.d + d;
      const int64_t t = a.targets[i];
      if (a.has_ignore && t == a.ignore_index) {
        loss[i] = 0;
        continue;
      }
      const double w = a.weights.empty() ? 1.0 : a.weights[t];
      loss[i] = -logp(n, t, d) * w;
      loss_sum += loss[i];
      weight_sum += w;
    }
  }
  using C = ComputeT<T>;
  if (a.reduction == Reduction::kNone) {
    Tensor* out = ctx.Output(0, DTypeOf<T>::value, target_shape);
    T* po = out->mutable_data<T>();
    for (int64_t i = 0; i < count; ++i) po[i] = static_cast<T>(static_cast<C>(loss[i]));
    return absl::OkStatus();
  }
  Tensor* out = ctx.Output(0, DTypeOf<T>::value, Shape{});
  const double v = a.reduction == Reduction::kSum ? loss_sum : loss_sum / weight_sum;
  out->mutable_data<T>()[0] = static_cast<T>(static_cast<C>(v));
  return absl::OkStatus();
}

absl::Status ComputeNll(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 2); !st.ok()) return st;
  auto args = ReadLossArgs(ctx);
  if (!args.ok()) return args.status();
  const Tensor& x = ctx.Input(0);
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    const LossArgs& a = *args;
    return WriteNll<T>(ctx, a, ctx.Input(1).shape(), [&](int64_t n, int64_t c, int64_t d) {
      return static_cast<double>(static_cast<C>(px[(n * a.c + c) * a.d + d]));
    });
  });
}

// log_prob = log_softmax(scores, axis 1); loss = NLL(log_prob, labels).
absl::Status ComputeSoftmaxCrossEntropy(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 2); !st.ok()) return st;
  auto args = ReadLossArgs(ctx);
  if (!args.ok()) return args.status();
  const Tensor& x = ctx.Input(0);
  const LossArgs& a = *args;
  std::vector<double> logp(static_cast<size_t>(x.size()));
  absl::Status st = VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    for (int64_t n = 0; n < a.n; ++n) {
      for (int64_t d = 0; d < a.d; ++d) {
        const int64_t base = n * a.c * a.d + d;
        double mx = -INFINITY;
        for (int64_t c = 0; c < a.c; ++c) mx = std::max(mx, static_cast<double>(static_cast<C>(px[base + c * a.d])));
        double sum = 0;
        for (int64_t c = 0; c < a.c; ++c) sum += std::exp(static_cast<double>(static_cast<C>(px[base + c * a.d])) - mx);
        const double lse = mx + std::log(sum);
        for (int64_t c = 0; c < a.c; ++c) {
          logp[base + c * a.d] = static_cast<double>(static_cast<C>(px[base + c * a.d])) - lse;
        }
      }
    }
    if (ctx.HasOutput(1)) {
      Tensor* lp = ctx.Output(1, x.dtype(), x.shape());
      T* plp = lp->mutable_data<T>();
      for (int64_t i = 0; i < x.size(); ++i) plp[i] = static_cast<T>(static_cast<C>(logp[i]));
    }
    return WriteNll<T>(ctx, a, ctx.Input(1).shape(), [&](int64_t n, int64_t c, int64_t d) {
      return logp[(n * a.c + c) * a.d + d];
    });
  });
  return st;
}

// Output 0: input 0's type; the target's shape for "none", a scalar otherwise.
// Output 1 (log_prob): input 0's type and shape.
absl::Status InferLoss(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  if (ctx.input_types.size() < 2) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  const TypeInfo& t = ctx.input_types[1];
  if (ctx.node.GetString("reduction", "mean") == "none") {
    outputs[0] = t.has_shape ? TypeInfo::Tensor(x.dtype, t.shape) : TypeInfo::Tensor(x.dtype);
  } else {
    outputs[0] = TypeInfo::Tensor(x.dtype, {});
  }
  if (outputs.size() > 1) outputs[1] = x;
  return absl::OkStatus();
}

constexpr DTypeSet kLoss12Types = Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kFloat16);

const OpTableRegistration kLossOps({
    {.name = "NegativeLogLikelihoodLoss", .since = 12, .until = 12, .types = kLoss12Types,
     .infer = InferLoss, .compute = ComputeNll},
    {.name = "NegativeLogLikelihoodLoss", .since = 13, .types = kFloatTypes, .infer = InferLoss,
     .compute = ComputeNll},
    {.name = "SoftmaxCrossEntropyLoss", .since = 12, .until = 12, .types = kLoss12Types,
     .infer = InferLoss, .compute = ComputeSoftmaxCrossEntropy},
    {.name = "SoftmaxCrossEntropyLoss", .since = 13, .types = kFloatTypes, .infer = InferLoss,
     .compute = ComputeSoftmaxCrossEntropy},
});

}  // namespace
}  // namespace hepml::ops
