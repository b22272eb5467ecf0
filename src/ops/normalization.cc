// Normalization operators: BatchNormalization (inference and training
// mode), InstanceNormalization, LayerNormalization, GroupNormalization, LRN,
// MeanVarianceNormalization and LpNormalization.
//
// Statistics accumulate in double; elementwise work runs in ComputeT<T>.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "ops/kernel_util.h"
#include "ops/vec_math.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// Error unless inputs [0, n) are all present.
absl::Status RequireInputs(const KernelContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  return absl::OkStatus();
}


// Mean and biased variance of n contiguous values (two passes).
template <typename T>
void MeanVar(const T* x, int64_t n, double& mean, double& var) {
  using C = ComputeT<T>;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<C>(x[i]);
  mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  double sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(static_cast<C>(x[i])) - mean;
    sq += d * d;
  }
  var = n > 0 ? sq / static_cast<double>(n) : 0.0;
}

// y[i] = x[i] * a + b over n contiguous values.
template <typename T>
void ScaleShift(const T* x, T* y, int64_t n, double a, double b) {
  using C = ComputeT<T>;
  const C ca = static_cast<C>(a), cb = static_cast<C>(b);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(static_cast<C>(x[i]) * ca + cb);
}

// Writes `values` into a new output i of `dtype` (a float type) and `shape`.
absl::Status WriteDoubles(KernelContext& ctx, size_t i, DType dtype, Shape shape,
                          const std::vector<double>& values) {
  if (!ctx.HasOutput(i)) return absl::OkStatus();
  Tensor* t = ctx.Output(i, dtype, std::move(shape));
  return VisitFloat(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* p = t->mutable_data<T>();
    for (int64_t k = 0; k < t->size(); ++k) p[k] = static_cast<T>(static_cast<ComputeT<T>>(values[k]));
    return absl::OkStatus();
  });
}

// Reads a parameter input that must hold exactly `count` values.
absl::StatusOr<std::vector<double>> ReadParam(KernelContext& ctx, size_t i, const char* name,
                                              int64_t count) {
  const Tensor& t = ctx.Input(i);
  if (t.size() != count) {
    return ctx.Error(name, " has shape ", ShapeToString(t.shape()), ", expected ", count,
                     " values");
  }
  if (!IsFloatingPoint(t.dtype())) {
    return ctx.Error(name, " has type ", DTypeName(t.dtype()), ", expected a float type");
  }
  return ReadDoubles(t);
}

// Runs fn(i) for i in [0, count) in parallel, each costing about `work`.
template <typename F>
void ParallelRows(KernelContext& ctx, int64_t count, int64_t work, F&& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(work, 1));
  ctx.ParallelFor(0, count, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) fn(i);
  });
}

// ---------------------------------------------------------------------------
// BatchNormalization
// ---------------------------------------------------------------------------

absl::Status ComputeBatchNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 (N, C, ...), got ", ShapeToString(x.shape()));
  for (size_t i = 1; i <= 4; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  const int64_t batches = x.dim(0), channels = x.dim(1);
  const int64_t spatial = channels == 0 || batches == 0 ? 0 : x.size() / (batches * channels);
  const double eps = ctx.node().GetFloat("epsilon", 1e-5f);
  const double momentum = ctx.node().GetFloat("momentum", 0.9f);
  bool training;
  if (ctx.opset() >= 14) {
    training = ctx.node().GetInt("training_mode", 0) != 0;
  } else {
    // Before 14 the training statistics are the optional outputs 1-4; opsets
    // 1 and 6 also say so with is_test = 0.
    bool wants_stats = false;
    for (size_t i = 1; i <= 4; ++i) wants_stats = wants_stats || ctx.HasOutput(i);
    training = wants_stats && (ctx.opset() >= 7 || ctx.node().GetInt("is_test", 0) == 0);
  }
  // spatial = 0 (before opset 9): one parameter per (channel, position).
  const bool per_element = ctx.opset() < 9 && ctx.node().GetInt("spatial", 1) == 0 && !training;
  const int64_t param_count = per_element ? channels * spatial : channels;
  auto scale = ReadParam(ctx, 1, "scale", param_count);
  if (!scale.ok()) return scale.status();
  auto bias = ReadParam(ctx, 2, "B", param_count);
  if (!bias.ok()) return bias.status();
  auto mean = ReadParam(ctx, 3, "mean", param_count);
  if (!mean.ok()) return mean.status();
  auto var = ReadParam(ctx, 4, "var", param_count);
  if (!var.ok()) return var.status();

  std::vector<double> cur_mean = *mean, cur_var = *var;
  if (training) {
    // Batch statistics per channel over N and the spatial dims (biased var).
    const int64_t count = batches * spatial;
    auto status = VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      using C = ComputeT<T>;
      const T* px = x.data<T>();
      ParallelRows(ctx, channels, count, [&](int64_t c) {
        double sum = 0;
        for (int64_t n = 0; n < batches; ++n) {
          const T* p = px + (n * channels + c) * spatial;
          for (int64_t i = 0; i < spatial; ++i) sum += static_cast<C>(p[i]);
        }
        const double m = count > 0 ? sum / static_cast<double>(count) : 0.0;
        double sq = 0;
        for (int64_t n = 0; n < batches; ++n) {
          const T* p = px + (n * channels + c) * spatial;
          for (int64_t i = 0; i < spatial; ++i) {
            const double d = static_cast<double>(static_cast<C>(p[i])) - m;
            sq += d * d;
          }
        }
        cur_mean[c] = m;
        cur_var[c] = count > 0 ? sq / static_cast<double>(count) : 0.0;
      });
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
  }
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  auto status = VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ParallelRows(ctx, batches * channels, spatial, [&](int64_t nc) {
      const int64_t c = nc % channels;
      const int64_t off = nc * spatial;
      if (per_element) {
        using C = ComputeT<T>;
        for (int64_t i = 0; i < spatial; ++i) {
          const int64_t k = c * spatial + i;
          const double a = (*scale)[k] / std::sqrt(cur_var[k] + eps);
          py[off + i] = static_cast<T>(static_cast<C>(
              static_cast<C>(px[off + i]) * a + ((*bias)[k] - cur_mean[k] * a)));
        }
        return;
      }
      const double a = (*scale)[c] / std::sqrt(cur_var[c] + eps);
      ScaleShift(px + off, py + off, spatial, a, (*bias)[c] - cur_mean[c] * a);
    });
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  if (!training) return absl::OkStatus();
  std::vector<double> run_mean(channels), run_var(channels);
  for (int64_t c = 0; c < channels; ++c) {
    run_mean[c] = (*mean)[c] * momentum + cur_mean[c] * (1.0 - momentum);
    run_var[c] = (*var)[c] * momentum + cur_var[c] * (1.0 - momentum);
  }
  const DType stat_type = ctx.Input(3).dtype();
  if (auto st = WriteDoubles(ctx, 1, stat_type, {channels}, run_mean); !st.ok()) return st;
  if (auto st = WriteDoubles(ctx, 2, stat_type, {channels}, run_var); !st.ok()) return st;
  if (ctx.opset() < 14) {
    if (auto st = WriteDoubles(ctx, 3, stat_type, {channels}, cur_mean); !st.ok()) return st;
    if (auto st = WriteDoubles(ctx, 4, stat_type, {channels}, cur_var); !st.ok()) return st;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// InstanceNormalization
// ---------------------------------------------------------------------------

absl::Status ComputeInstanceNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 3); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("input must have rank >= 2 (N, C, ...), got ", ShapeToString(x.shape()));
  const int64_t batches = x.dim(0), channels = x.dim(1);
  const int64_t spatial = channels == 0 || batches == 0 ? 0 : x.size() / (batches * channels);
  auto scale = ReadParam(ctx, 1, "scale", channels);
  if (!scale.ok()) return scale.status();
  auto bias = ReadParam(ctx, 2, "B", channels);
  if (!bias.ok()) return bias.status();
  const double eps = ctx.node().GetFloat("epsilon", 1e-5f);
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ParallelRows(ctx, batches * channels, spatial, [&](int64_t nc) {
      const int64_t c = nc % channels;
      double m, v;
      MeanVar(px + nc * spatial, spatial, m, v);
      const double a = (*scale)[c] / std::sqrt(v + eps);
      ScaleShift(px + nc * spatial, py + nc * spatial, spatial, a, (*bias)[c] - m * a);
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// LayerNormalization
// ---------------------------------------------------------------------------

// The dtype of LayerNormalization's Mean/InvStdDev for stash_type.
DType StashType(int64_t stash_type, DType x) {
  if (IsKnownDType(static_cast<int32_t>(stash_type)) &&
      IsFloatingPoint(static_cast<DType>(stash_type))) {
    return static_cast<DType>(stash_type);
  }
  return x;
}

absl::Status InferLayerNormalization(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || outputs.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  outputs[0] = x;
  const DType stash = StashType(ctx.node.GetInt("stash_type", 1), x.dtype);
  for (size_t i = 1; i < outputs.size(); ++i) outputs[i] = TypeInfo::Tensor(stash);
  if (!x.has_shape) return absl::OkStatus();
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  auto axis = NormalizeAxis(ctx.node.GetInt("axis", -1), rank);
  if (!axis.ok()) return axis.status();
  std::vector<Dim> stat(x.shape.begin(), x.shape.begin() + *axis);
  stat.resize(rank, Dim{1, ""});
  for (size_t i = 1; i < outputs.size(); ++i) outputs[i] = TypeInfo::Tensor(stash, stat);
  return absl::OkStatus();
}

// Strides of a parameter (Scale or B) broadcast over the normalized shape;
// error if it does not broadcast to it.
absl::StatusOr<Shape> ParamStrides(const Tensor& p, const Shape& norm_shape, const char* name) {
  Shape ps = p.shape();
  while (ps.size() > norm_shape.size() && ps.front() == 1) ps.erase(ps.begin());
  bool ok = ps.size() <= norm_shape.size();
  for (size_t d = 0; ok && d < ps.size(); ++d) {
    const int64_t want = norm_shape[norm_shape.size() - ps.size() + d];
    ok = ps[d] == want || ps[d] == 1;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(name, " of shape ", ShapeToString(p.shape()),
                                                   " does not broadcast to the normalized shape ",
                                                   ShapeToString(norm_shape)));
  }
  return BroadcastStrides(ps, norm_shape);
}

absl::Status ComputeLayerNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto axis = NormalizeAxis(ctx.node().GetInt("axis", -1), x.rank());
  if (!axis.ok() || x.rank() == 0) return ctx.Error("axis ", ctx.node().GetInt("axis", -1), " is out of range for rank ", x.rank());
  const Shape norm_shape(x.shape().begin() + *axis, x.shape().end());
  const int64_t inner = NumElements(norm_shape);
  const int64_t outer = inner == 0 ? 0 : x.size() / inner;
  const double eps = ctx.node().GetFloat("epsilon", 1e-5f);
  if (!ctx.HasInput(1)) return ctx.Error("input Scale is required");
  const Tensor& scale = ctx.Input(1);
  auto scale_strides = ParamStrides(scale, norm_shape, "Scale");
  if (!scale_strides.ok()) return ctx.Error(scale_strides.status().message());
  auto scale_v = ReadDoubles(scale);
  if (!scale_v.ok()) return ctx.Error(scale_v.status().message());
  std::vector<double> bias_v;
  Shape bias_strides;
  if (ctx.HasInput(2)) {
    auto bs = ParamStrides(ctx.Input(2), norm_shape, "B");
    if (!bs.ok()) return ctx.Error(bs.status().message());
    bias_strides = *bs;
    auto bv = ReadDoubles(ctx.Input(2));
    if (!bv.ok()) return ctx.Error(bv.status().message());
    bias_v = std::move(*bv);
  }
  // Scale and B expanded to the normalized shape once (they are small).
  std::vector<double> s_full(inner), b_full(inner, 0.0);
  {
    const Shape ns = Strides(norm_shape);
    for (int64_t i = 0; i < inner; ++i) {
      int64_t rest = i, si = 0, bi = 0;
      for (size_t d = 0; d < norm_shape.size(); ++d) {
        const int64_t c = rest / ns[d];
        rest %= ns[d];
        si += c * (*scale_strides)[d];
        if (!bias_v.empty()) bi += c * bias_strides[d];
      }
      s_full[i] = (*scale_v)[si];
      if (!bias_v.empty()) b_full[i] = bias_v[bi];
    }
  }
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  std::vector<double> means(outer), inv_std(outer);
  auto status = VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    if constexpr (std::is_same_v<T, float>) {
      // fp32 rows vectorised (vec_math.h): float partial sums, double totals.
      std::vector<float> sf(s_full.begin(), s_full.end()), bf(b_full.begin(), b_full.end());
      const float* bias = bias_v.empty() ? nullptr : bf.data();
      ParallelRows(ctx, outer, inner, [&](int64_t r) {
        LayerNormRowF32(px + r * inner, py + r * inner, inner, sf.data(), bias, eps, &means[r], &inv_std[r]);
      });
      return absl::OkStatus();
    }
    ParallelRows(ctx, outer, inner, [&](int64_t r) {
      double m, v;
      const T* row = px + r * inner;
      MeanVar(row, inner, m, v);
      const double is = 1.0 / std::sqrt(v + eps);
      means[r] = m;
      inv_std[r] = is;
      T* out = py + r * inner;
      for (int64_t i = 0; i < inner; ++i) {
        out[i] = static_cast<T>(static_cast<C>((static_cast<double>(static_cast<C>(row[i])) - m) *
                                               is * s_full[i] + b_full[i]));
      }
    });
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  Shape stat_shape(x.shape().begin(), x.shape().begin() + *axis);
  stat_shape.resize(x.rank(), 1);
  const DType stash = StashType(ctx.node().GetInt("stash_type", 1), x.dtype());
  if (auto st = WriteDoubles(ctx, 1, stash, stat_shape, means); !st.ok()) return st;
  return WriteDoubles(ctx, 2, stash, stat_shape, inv_std);
}

// ---------------------------------------------------------------------------
// GroupNormalization
// ---------------------------------------------------------------------------

// Opset 18: statistics accumulate in double and y = x * a + b runs in ComputeT.
// Opset 21: stage one (mean, variance, normalization) runs in the precision of
// stash_type (float32 by default, whatever X's type), as the operator's function
// body: XU = Cast(X, stash), Normalized = (XU - Mean) / Sqrt(Var + epsilon) in
// stash, cast back to T, then Y = scale * Normalized + bias in T. So a float64
// X is normalized with float32 precision unless stash_type = 11 (double). The
// statistics of XU are accumulated in double (two-pass variance) and then
// rounded to stash, at least as accurate as the body's E[x^2] - E[x]^2.
absl::Status ComputeGroupNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 3); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 (N, C, ...), got ", ShapeToString(x.shape()));
  const Attribute* ng = ctx.node().FindAttribute("num_groups");
  if (ng == nullptr) return ctx.Error("attribute 'num_groups' is required");
  const int64_t groups = ng->i;
  const int64_t batches = x.dim(0), channels = x.dim(1);
  if (groups < 1 || channels % groups != 0) {
    return ctx.Error("num_groups ", groups, " does not divide the ", channels, " channels");
  }
  // Opset 18 takes one scale/bias per group, 21 one per channel.
  const bool per_channel = ctx.opset() >= 21;
  const int64_t params = per_channel ? channels : groups;
  auto scale = ReadParam(ctx, 1, "scale", params);
  if (!scale.ok()) return scale.status();
  auto bias = ReadParam(ctx, 2, "bias", params);
  if (!bias.ok()) return bias.status();
  const float eps = ctx.node().GetFloat("epsilon", 1e-5f);
  const int64_t cpg = channels / groups;
  const int64_t spatial = channels == 0 || batches == 0 ? 0 : x.size() / (batches * channels);
  const int64_t group_size = cpg * spatial;
  DType stash = DType::kFloat64;
  if (ctx.opset() >= 21) {
    const int64_t st = ctx.node().GetInt("stash_type", 1);
    if (st != 1 && st != 10 && st != 11 && st != 16) {
      return ctx.Error("stash_type ", st, " is not a float type (1 float, 10 float16, 11 double, 16 bfloat16)");
    }
    stash = static_cast<DType>(st);
  }
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using CT = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    if (ctx.opset() < 21) {
      ParallelRows(ctx, batches * groups, group_size, [&](int64_t ngi) {
        const int64_t g = ngi % groups;
        double m, v;
        MeanVar(px + ngi * group_size, group_size, m, v);
        const double is = 1.0 / std::sqrt(v + eps);
        for (int64_t c = 0; c < cpg; ++c) {
          const double a = (*scale)[g] * is;
          const int64_t off = ngi * group_size + c * spatial;
          ScaleShift(px + off, py + off, spatial, a, (*bias)[g] - m * a);
        }
      });
      return absl::OkStatus();
    }
    return VisitFloat(stash, [&](auto stag) -> absl::Status {
      using S = typename decltype(stag)::type;
      using CS = ComputeT<S>;
      // v rounded to S, held in S's compute type.
      const auto in_s = [](double v) { return static_cast<CS>(static_cast<S>(static_cast<CS>(v))); };
      const CS eps_s = in_s(eps);
      ParallelRows(ctx, batches * groups, group_size, [&](int64_t ngi) {
        const int64_t g = ngi % groups;
        const T* xg = px + ngi * group_size;
        T* yg = py + ngi * group_size;
        const auto xu = [&](int64_t i) { return in_s(static_cast<double>(static_cast<CT>(xg[i]))); };
        double sum = 0;
        for (int64_t i = 0; i < group_size; ++i) sum += xu(i);
        const double mean = group_size > 0 ? sum / static_cast<double>(group_size) : 0.0;
        double sq = 0;
        for (int64_t i = 0; i < group_size; ++i) {
          const double d = static_cast<double>(xu(i)) - mean;
          sq += d * d;
        }
        const CS mean_s = in_s(mean);
        const CS var_s = in_s(group_size > 0 ? sq / static_cast<double>(group_size) : 0.0);
        const CS sd_s = in_s(std::sqrt(static_cast<double>(in_s(static_cast<double>(var_s) + eps_s))));
        for (int64_t c = 0; c < cpg; ++c) {
          const int64_t p = g * cpg + c;
          const CT a = static_cast<CT>(static_cast<T>(static_cast<CT>((*scale)[p])));
          const CT b = static_cast<CT>(static_cast<T>(static_cast<CT>((*bias)[p])));
          for (int64_t i = c * spatial; i < (c + 1) * spatial; ++i) {
            const CS dev = in_s(static_cast<double>(xu(i)) - mean_s);
            const CS norm = in_s(static_cast<double>(dev) / sd_s);
            const CT nt = static_cast<CT>(static_cast<T>(static_cast<CT>(norm)));
            yg[i] = static_cast<T>(a * nt + b);
          }
        }
      });
      return absl::OkStatus();
    });
  });
}

// ---------------------------------------------------------------------------
// LRN
// ---------------------------------------------------------------------------

absl::Status ComputeLRN(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() < 2) return ctx.Error("X must have rank >= 2 (N, C, ...), got ", ShapeToString(x.shape()));
  const Attribute* size_attr = ctx.node().FindAttribute("size");
  if (size_attr == nullptr || size_attr->i < 1) return ctx.Error("attribute 'size' must be a positive int");
  const int64_t size = size_attr->i;
  const double alpha = ctx.node().GetFloat("alpha", 1e-4f);
  const double beta = ctx.node().GetFloat("beta", 0.75f);
  const double bias = ctx.node().GetFloat("bias", 1.0f);
  const int64_t batches = x.dim(0), channels = x.dim(1);
  const int64_t spatial = channels == 0 || batches == 0 ? 0 : x.size() / (batches * channels);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ParallelRows(ctx, batches * channels, spatial * size, [&](int64_t nc) {
      const int64_t n = nc / channels, c = nc % channels;
      const int64_t c0 = std::max<int64_t>(0, c - before), c1 = std::min(channels - 1, c + after);
      std::vector<double> sq(spatial, 0.0);
      for (int64_t k = c0; k <= c1; ++k) {
        const T* p = px + (n * channels + k) * spatial;
        for (int64_t i = 0; i < spatial; ++i) {
          const double v = static_cast<C>(p[i]);
          sq[i] += v * v;
        }
      }
      const T* in = px + nc * spatial;
      T* out = py + nc * spatial;
      for (int64_t i = 0; i < spatial; ++i) {
        out[i] = static_cast<T>(static_cast<C>(static_cast<double>(static_cast<C>(in[i])) /
                                               std::pow(bias + alpha / size * sq[i], beta)));
      }
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// MeanVarianceNormalization
// ---------------------------------------------------------------------------

absl::Status ComputeMeanVarianceNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  std::vector<int64_t> axes;
  bool normalize_variance = true;
  if (ctx.opset() < 9) {
    // Opset 1: per instance over the spatial dims, or also across channels.
    if (x.rank() < 2) return ctx.Error("X must have rank >= 2 (N, C, ...), got ", ShapeToString(x.shape()));
    const bool across = ctx.node().GetInt("across_channels", 0) != 0;
    normalize_variance = ctx.node().GetInt("normalize_variance", 1) != 0;
    for (int d = across ? 1 : 2; d < x.rank(); ++d) axes.push_back(d);
  } else {
    auto a = NormalizeAxes(ctx.node().GetInts("axes", {0, 2, 3}), x.rank());
    if (!a.ok()) return ctx.Error(a.status().message());
    axes = *a;
  }
  // Reduced shape: the axes collapsed to 1.
  Shape reduced = x.shape();
  for (int64_t a : axes) reduced[a] = 1;
  const int64_t groups = NumElements(reduced);
  const int64_t per = groups == 0 ? 0 : x.size() / groups;
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  if (x.size() == 0) return absl::OkStatus();
  Shape shapes[1] = {reduced};
  BroadcastIterator it(x.shape(), absl::MakeConstSpan(shapes, 1));
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    std::vector<double> sum(groups, 0.0), sq(groups, 0.0);
    it.ForEach([&](int64_t o, const int64_t* r) { sum[r[0]] += static_cast<C>(px[o]); });
    for (double& s : sum) s /= static_cast<double>(per);
    it.ForEach([&](int64_t o, const int64_t* r) {
      const double d = static_cast<double>(static_cast<C>(px[o])) - sum[r[0]];
      sq[r[0]] += d * d;
    });
    // Y = (X - mean) / (sqrt(var) + 1e-9), as the operator's function body.
    for (double& s : sq) s = normalize_variance ? 1.0 / (std::sqrt(s / static_cast<double>(per)) + 1e-9) : 1.0;
    it.ForEach([&](int64_t o, const int64_t* r) {
      py[o] = static_cast<T>(static_cast<C>((static_cast<double>(static_cast<C>(px[o])) - sum[r[0]]) * sq[r[0]]));
    });
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// LpNormalization
// ---------------------------------------------------------------------------

absl::Status ComputeLpNormalization(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto axis = NormalizeAxis(ctx.node().GetInt("axis", -1), x.rank());
  if (!axis.ok() || x.rank() == 0) return ctx.Error("axis ", ctx.node().GetInt("axis", -1), " is out of range for rank ", x.rank());
  const int64_t p = ctx.node().GetInt("p", 2);
  if (p != 1 && p != 2) return ctx.Error("p must be 1 or 2, got ", p);
  const int64_t len = x.dim(static_cast<int>(*axis));
  int64_t inner = 1;
  for (int d = static_cast<int>(*axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const int64_t outer = len * inner == 0 ? 0 : x.size() / (len * inner);
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ParallelRows(ctx, outer * inner, len, [&](int64_t oi) {
      const int64_t o = oi / inner, i = oi % inner;
      const int64_t base = o * len * inner + i;
      double norm = 0;
      for (int64_t k = 0; k < len; ++k) {
        const double v = static_cast<C>(px[base + k * inner]);
        norm += p == 1 ? std::fabs(v) : v * v;
      }
      if (p == 2) norm = std::sqrt(norm);
      const double inv = norm > 0 ? 1.0 / norm : 0.0;
      for (int64_t k = 0; k < len; ++k) {
        py[base + k * inner] = static_cast<T>(static_cast<C>(static_cast<C>(px[base + k * inner]) * inv));
      }
    });
    return absl::OkStatus();
  });
}

const OpTableRegistration kNormalizationOps({
    {.name = "BatchNormalization", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeBatchNormalization},
    {.name = "InstanceNormalization", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeInstanceNormalization},
    {.name = "LayerNormalization", .since = 17, .types = kFloatTypes,
     .infer = InferLayerNormalization, .compute = ComputeLayerNormalization},
    {.name = "GroupNormalization", .since = 18, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeGroupNormalization},
    {.name = "LRN", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeLRN},
    {.name = "MeanVarianceNormalization", .since = 1, .types = kFloatTypes,
     .infer = InferSameAsInput, .compute = ComputeMeanVarianceNormalization},
    {.name = "LpNormalization", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeLpNormalization},
});

}  // namespace
}  // namespace hepml::ops
