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
//
//   EdgeFeatures(X, Idx)  (written by fuse-edge-features) the input of an
//                        EdgeConv block: X [N, C, P] float32 point features,
//                        Idx [N, P, K] int64 neighbour indices along P (from
//                        -P, wrapped as GatherElements does); output
//                        [N, 2C, P, K] with channel c holding X[n, c, p]
//                        (the point itself, for each of its K neighbours)
//                        and channel C + c holding X[n, c, Idx[n, p, j]] -
//                        X[n, c, p]. This is Concat(Xe, GatherElements(Xe,
//                        Ie, axis 2) - Xe, axis 1) with Xe = X expanded over
//                        K and Ie = Idx expanded over C, without writing
//                        either expansion.
//   EdgeGatherAdd(H, Idx) (written by factor-edge-conv) the first layer of
//                        an EdgeConv MLP after factoring: H [N, 2M, P]
//                        float32 holds per point the M-channel term of the
//                        point (channels 0..M-1) and of it as a neighbour
//                        (M..2M-1), Idx [N, P, K] as above; output
//                        [N, M, P, K] = H[n, m, p] + H[n, M + m, Idx[n, p, j]]
//                        with `activation` applied as FusedConv does.
//
// FusedConv's `pool` = "MaxPool2x2" (written by fuse-conv-maxpool; 2-D only)
// then takes MaxPool(kernel 2x2, strides 2, no pads, floor) of that result
// as output 0: [N, M, H / 2, W / 2] for a [N, M, H, W] convolution. The
// Winograd kernel (winograd_conv.h) pools its output blocks before storing
// them, the other stride-1 paths pool each channel from a staging plane, and
// the rest (strided, pointwise, non-fp32) pool a scratch copy of the output.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

#include "hepml/status.h"
#include "ops/conv.h"
#include "ops/epilogue.h"
#include "ops/kernel_util.h"
#include "ops/linalg.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

absl::Status ComputeFusedGemm(KernelContext& ctx) {
  auto spec = GemmActivation(ctx);
  if (!spec.ok()) return spec.status();
  auto y = RunGemm(ctx, /*flatten_a=*/true);
  if (!y.ok()) return y.status();
  return ApplyActivation(ctx, *spec, *y);
}

// FusedConv's `pool` attribute: true for "MaxPool2x2", false when absent or
// empty; anything else is an error naming the node.
absl::StatusOr<bool> ParsePool(const Node& node) {
  const std::string pool = node.GetString("pool", "");
  if (pool.empty()) return false;
  if (pool == "MaxPool2x2") return true;
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": unknown pool '", pool,
                                                 "' (expected \"MaxPool2x2\" or none)"));
}

absl::Status ComputeFusedConv(KernelContext& ctx) {
  auto spec = ParseActivation(ctx.node());
  if (!spec.ok()) return spec.status();
  auto pool = ParsePool(ctx.node());
  if (!pool.ok()) return pool.status();
  return RunConv(ctx, *spec, *pool).status();  // the activation runs in Conv's epilogue
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
  auto pool = ParsePool(ctx.node);
  if (!pool.ok()) return pool.status();
  HEPML_RETURN_IF_ERROR(InferConvOutput(ctx, outputs));
  if (*pool && !outputs.empty() && outputs[0].has_shape) {
    std::vector<Dim>& dims = outputs[0].shape;
    if (dims.size() != 4) return absl::InvalidArgumentError("FusedConv: pool needs a 2-D convolution");
    for (size_t d = 2; d < 4; ++d) dims[d] = dims[d].known() ? Dim{dims[d].value / 2, ""} : Dim{};
  }
  return absl::OkStatus();
}

absl::Status ComputeEdgeFeatures(KernelContext& ctx) {
  if (ctx.num_inputs() != 2 || !ctx.HasInput(0) || !ctx.HasInput(1)) return ctx.Error("expects inputs X and Idx");
  const Tensor& x = ctx.Input(0);
  const Tensor& idx = ctx.Input(1);
  if (x.dtype() != DType::kFloat32 || x.rank() != 3) {
    return ctx.Error("X must be a float32 tensor [N, C, P], got ", DTypeName(x.dtype()), " ", ShapeToString(x.shape()));
  }
  if (idx.dtype() != DType::kInt64 || idx.rank() != 3 || idx.dim(0) != x.dim(0) || idx.dim(1) != x.dim(2)) {
    return ctx.Error("Idx must be an int64 tensor [N, P, K] = [", x.dim(0), ", ", x.dim(2), ", K] for X ",
                     ShapeToString(x.shape()), ", got ", DTypeName(idx.dtype()), " ", ShapeToString(idx.shape()));
  }
  const int64_t n = x.dim(0), c = x.dim(1), p = x.dim(2), k = idx.dim(2);
  const int64_t* id = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.size(); ++i) {
    if (id[i] < -p || id[i] >= p) {
      return ctx.Error("neighbour index ", id[i], " out of range [", -p, ", ", p, ") at element ", i, " of Idx ",
                       ShapeToString(idx.shape()));
    }
  }
  Tensor* out = ctx.Output(0, DType::kFloat32, {n, 2 * c, p, k});
  if (out->size() == 0) return absl::OkStatus();
  const float* px = x.data<float>();
  float* po = out->mutable_data<float>();
  // One (sample, channel) plane per task: a row of X read from L1, its two
  // output planes written in order.
  ctx.ParallelFor(0, n * c, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, p * k)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t s = t / c, ch = t % c;
      const float* xr = px + t * p;
      const int64_t* ir = id + s * p * k;
      float* center = po + ((s * 2 * c + ch) * p) * k;
      float* diff = po + ((s * 2 * c + c + ch) * p) * k;
      for (int64_t q = 0; q < p; ++q) {
        const float v = xr[q];
        for (int64_t j = 0; j < k; ++j) {
          int64_t m = ir[q * k + j];
          m += m < 0 ? p : 0;
          center[q * k + j] = v;
          diff[q * k + j] = xr[m] - v;
        }
      }
    }
  });
  return absl::OkStatus();
}

absl::Status ComputeEdgeGatherAdd(KernelContext& ctx) {
  auto spec = ParseActivation(ctx.node());
  if (!spec.ok()) return spec.status();
  if (ctx.num_inputs() != 2 || !ctx.HasInput(0) || !ctx.HasInput(1)) return ctx.Error("expects inputs H and Idx");
  const Tensor& h = ctx.Input(0);
  const Tensor& idx = ctx.Input(1);
  if (h.dtype() != DType::kFloat32 || h.rank() != 3 || h.dim(1) % 2 != 0) {
    return ctx.Error("H must be a float32 tensor [N, 2M, P], got ", DTypeName(h.dtype()), " ", ShapeToString(h.shape()));
  }
  if (idx.dtype() != DType::kInt64 || idx.rank() != 3 || idx.dim(0) != h.dim(0) || idx.dim(1) != h.dim(2)) {
    return ctx.Error("Idx must be an int64 tensor [N, P, K] = [", h.dim(0), ", ", h.dim(2), ", K] for H ",
                     ShapeToString(h.shape()), ", got ", DTypeName(idx.dtype()), " ", ShapeToString(idx.shape()));
  }
  const int64_t n = h.dim(0), m = h.dim(1) / 2, p = h.dim(2), k = idx.dim(2);
  const int64_t* id = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.size(); ++i) {
    if (id[i] < -p || id[i] >= p) {
      return ctx.Error("neighbour index ", id[i], " out of range [", -p, ", ", p, ") at element ", i, " of Idx ",
                       ShapeToString(idx.shape()));
    }
  }
  Tensor* out = ctx.Output(0, DType::kFloat32, {n, m, p, k});
  if (out->size() == 0) return absl::OkStatus();
  const float* ph = h.data<float>();
  float* po = out->mutable_data<float>();
  const ActivationSpec act = *spec;
  // One (sample, channel) plane per task, activated while it is in cache.
  ctx.ParallelFor(0, n * m, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, p * k)), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t s = t / m, ch = t % m;
      const float* self = ph + (s * 2 * m + ch) * p;
      const float* neighbour = ph + (s * 2 * m + m + ch) * p;
      const int64_t* ir = id + s * p * k;
      float* y = po + t * p * k;
      for (int64_t q = 0; q < p; ++q) {
        const float v = self[q];
        for (int64_t j = 0; j < k; ++j) {
          int64_t at = ir[q * k + j];
          at += at < 0 ? p : 0;
          y[q * k + j] = v + neighbour[at];
        }
      }
      if (act.kind != Activation::kNone) BiasActivateF32(act, 0.0f, y, p * k);
    }
  });
  return absl::OkStatus();
}

absl::Status InferEdgeGatherAdd(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (auto spec = ParseActivation(ctx.node); !spec.ok()) return spec.status();
  if (ctx.input_types.size() != 2 || outputs.empty()) {
    return absl::InvalidArgumentError("EdgeGatherAdd: expects inputs H and Idx");
  }
  const TypeInfo& h = ctx.input_types[0];
  const TypeInfo& idx = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(DType::kFloat32);
  if (!h.has_shape || !idx.has_shape) return absl::OkStatus();
  if (h.shape.size() != 3 || idx.shape.size() != 3) {
    return absl::InvalidArgumentError("EdgeGatherAdd: H must be [N, 2M, P] and Idx [N, P, K]");
  }
  Dim channels = h.shape[1].known() ? Dim{h.shape[1].value / 2, ""} : Dim{};
  outputs[0] = TypeInfo::Tensor(DType::kFloat32, {h.shape[0], channels, h.shape[2], idx.shape[2]});
  return absl::OkStatus();
}

absl::Status InferEdgeFeatures(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() != 2 || outputs.empty()) {
    return absl::InvalidArgumentError("EdgeFeatures: expects inputs X and Idx");
  }
  const TypeInfo& x = ctx.input_types[0];
  const TypeInfo& idx = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(DType::kFloat32);
  if (!x.has_shape || !idx.has_shape) return absl::OkStatus();
  if (x.shape.size() != 3 || idx.shape.size() != 3) {
    return absl::InvalidArgumentError("EdgeFeatures: X must be [N, C, P] and Idx [N, P, K]");
  }
  Dim channels = x.shape[1].known() ? Dim{2 * x.shape[1].value, ""} : Dim{};
  outputs[0] = TypeInfo::Tensor(DType::kFloat32, {x.shape[0], channels, x.shape[2], idx.shape[2]});
  return absl::OkStatus();
}

const OpTableRegistration kFusedOps({
    {.domain = "ai.hepml", .name = "FusedGemm", .since = 1, .until = 1, .types = kFloatTypes,
     .infer = InferFusedGemm, .compute = ComputeFusedGemm,
     .prepare = PrepareGemmWeights},
    {.domain = "ai.hepml", .name = "FusedConv", .since = 1, .until = 1, .types = kFloatTypes,
     .infer = InferFusedConv, .compute = ComputeFusedConv, .prepare = PrepareConv},
    {.domain = "ai.hepml", .name = "EdgeFeatures", .since = 1, .until = 1, .types = Bit(DType::kFloat32),
     .infer = InferEdgeFeatures, .compute = ComputeEdgeFeatures},
    {.domain = "ai.hepml", .name = "EdgeGatherAdd", .since = 1, .until = 1, .types = Bit(DType::kFloat32),
     .infer = InferEdgeGatherAdd, .compute = ComputeEdgeGatherAdd},
});

}  // namespace
}  // namespace hepml::ops
