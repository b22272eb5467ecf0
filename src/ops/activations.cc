// Activation functions: Relu and its relatives, Sigmoid family, Softplus,
// Gelu, Mish, PRelu (with a broadcast slope), and the normalisations along an
// axis Softmax, LogSoftmax and Hardmax.
//
// Pointwise activations compute in ComputeT<T> (float for float16/bfloat16)
// with the numerically stable forms numpy references use: Sigmoid and
// Softplus never overflow exp for large |x|; Softmax subtracts the maximum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "ops/gemm.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "ops/vec_math.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

constexpr int64_t kGrain = 1 << 14;

// How a pointwise activation treats integer inputs.
enum class IntMode {
  kReject,     // floating point only
  kNative,     // op runs on the integer type itself (Relu)
  kViaDouble,  // op sees double; the result is truncated back, saturating
};

// out = op(x) elementwise; op is a generic callable on ComputeT<T> (float for
// the 16-bit floats).
template <IntMode kIntMode = IntMode::kReject, typename Op>
absl::Status Pointwise(KernelContext& ctx, Op op) {
  const Tensor& x = ctx.Input(0);
  if (kIntMode == IntMode::kReject && !IsFloatingPoint(x.dtype())) {
    return ctx.Error("takes floating-point input, got ", DTypeName(x.dtype()));
  }
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        const T* px = x.data<T>();
        T* po = out->mutable_data<T>();
        if constexpr (std::is_integral_v<T> && kIntMode == IntMode::kReject) {
          return absl::OkStatus();  // unreachable: rejected above
        } else if constexpr (std::is_integral_v<T> && kIntMode == IntMode::kNative) {
          ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) po[i] = static_cast<T>(op(px[i]));
          });
        } else if constexpr (std::is_integral_v<T>) {
          ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) {
              const double r = op(static_cast<double>(px[i]));
              if (std::isnan(r)) po[i] = T(0);
              else if (r <= static_cast<double>(std::numeric_limits<T>::lowest())) po[i] = std::numeric_limits<T>::lowest();
              else if (r >= static_cast<double>(std::numeric_limits<T>::max())) po[i] = std::numeric_limits<T>::max();
              else po[i] = static_cast<T>(r);
            }
          });
        } else {
          using C = ComputeT<T>;
          ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) {
            for (int64_t i = lo; i < hi; ++i) po[i] = static_cast<T>(op(static_cast<C>(px[i])));
          });
        }
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

// One exp of -|x| (never overflows), no data-dependent branch around it.
template <typename C>
C StableSigmoid(C x) {
  const C e = std::exp(-std::fabs(x));
  const C r = C(1) / (C(1) + e);
  return x >= C(0) ? r : e * r;
}

// log(1 + exp(x)) without overflow.
template <typename C>
C StableSoftplus(C x) {
  return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

absl::Status ComputeRelu(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  if (x.dtype() == DType::kFloat32) {
    // The layer after nearly every GEMM: vectorised (gemm.h), same results.
    Tensor* out = ctx.Output(0, x.dtype(), x.shape());
    const float* px = x.data<float>();
    float* po = out->mutable_data<float>();
    ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) { ReluF32(px + lo, po + lo, hi - lo); });
    return absl::OkStatus();
  }
  return Pointwise<IntMode::kNative>(ctx, [](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); });
}

absl::Status ComputeLeakyRelu(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 0.01f);
  const Tensor& x = ctx.Input(0);
  if (x.dtype() == DType::kFloat32) {
    Tensor* out = ctx.Output(0, x.dtype(), x.shape());
    const float* px = x.data<float>();
    float* po = out->mutable_data<float>();
    ctx.ParallelFor(0, x.size(), kGrain,
                    [&](int64_t lo, int64_t hi) { LeakyReluF32(px + lo, po + lo, hi - lo, alpha); });
    return absl::OkStatus();
  }
  return Pointwise(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x >= C(0) ? x : static_cast<C>(alpha) * x;
  });
}

absl::Status ComputeElu(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 1.0f);
  return Pointwise(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x >= C(0) ? x : static_cast<C>(alpha) * std::expm1(x);
  });
}

absl::Status ComputeSelu(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 1.67326319217681884765625f);
  const float gamma = ctx.node().GetFloat("gamma", 1.05070102214813232421875f);
  return Pointwise(ctx, [alpha, gamma](auto x) {
    using C = decltype(x);
    return x > C(0) ? static_cast<C>(gamma) * x : static_cast<C>(gamma) * static_cast<C>(alpha) * std::expm1(x);
  });
}

absl::Status ComputeCelu(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 1.0f);
  if (alpha == 0) return ctx.Error("attribute alpha must not be 0");
  return Pointwise(ctx, [alpha](auto x) {
    using C = decltype(x);
    const C a = static_cast<C>(alpha);
    return std::max(C(0), x) + std::min(C(0), a * std::expm1(x / a));
  });
}

// fp32 through a vectorised array function (vec_math.h), in chunks spread
// over the intra-op threads; other types through Pointwise with `op`.
template <typename Op>
absl::Status PointwiseVec(KernelContext& ctx, void (*vec)(const float*, float*, int64_t), Op op) {
  const Tensor& x = ctx.Input(0);
  if (x.dtype() != DType::kFloat32) return Pointwise(ctx, op);
  Tensor* out = ctx.Output(0, x.dtype(), x.shape());
  const float* px = x.data<float>();
  float* po = out->mutable_data<float>();
  ctx.ParallelFor(0, x.size(), kGrain, [&](int64_t lo, int64_t hi) { vec(px + lo, po + lo, hi - lo); });
  return absl::OkStatus();
}

absl::Status ComputeSigmoid(KernelContext& ctx) {
  return PointwiseVec(ctx, SigmoidF32, [](auto x) { return StableSigmoid(x); });
}

absl::Status ComputeTanh(KernelContext& ctx) {
  return PointwiseVec(ctx, TanhF32, [](auto x) { return std::tanh(x); });
}

absl::Status ComputeHardSigmoid(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 0.2f);
  const float beta = ctx.node().GetFloat("beta", 0.5f);
  return Pointwise(ctx, [alpha, beta](auto x) {
    using C = decltype(x);
    return std::max(C(0), std::min(C(1), static_cast<C>(alpha) * x + static_cast<C>(beta)));
  });
}

absl::Status ComputeHardSwish(KernelContext& ctx) {
  return Pointwise(ctx, [](auto x) {
    using C = decltype(x);
    return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
  });
}

absl::Status ComputeSoftplus(KernelContext& ctx) {
  return PointwiseVec(ctx, SoftplusF32, [](auto x) { return StableSoftplus(x); });
}

absl::Status ComputeSoftsign(KernelContext& ctx) {
  return Pointwise(ctx, [](auto x) {
    using C = decltype(x);
    return x / (C(1) + std::fabs(x));
  });
}

absl::Status ComputeThresholdedRelu(KernelContext& ctx) {
  const float alpha = ctx.node().GetFloat("alpha", 1.0f);
  return Pointwise(ctx, [alpha](auto x) {
    using C = decltype(x);
    return x > static_cast<C>(alpha) ? x : C(0);
  });
}

absl::Status ComputeShrink(KernelContext& ctx) {
  const float bias = ctx.node().GetFloat("bias", 0.0f);
  const float lambd = ctx.node().GetFloat("lambd", 0.5f);
  return Pointwise<IntMode::kViaDouble>(ctx, [bias, lambd](auto x) {
    using C = decltype(x);
    const C l = static_cast<C>(lambd), b = static_cast<C>(bias);
    return x < -l ? x + b : (x > l ? x - b : C(0));
  });
}

absl::Status ComputeGelu(KernelContext& ctx) {
  const std::string approximate = ctx.node().GetString("approximate", "none");
  if (approximate == "none") {
    return PointwiseVec(ctx, GeluF32, [](auto x) {
      using C = decltype(x);
      return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.70710678118654752440084436210485)));
    });
  }
  if (approximate == "tanh") {
    return Pointwise(ctx, [](auto x) {
      using C = decltype(x);
      const C k = static_cast<C>(0.79788456080286535587989211986876);  // sqrt(2/pi)
      return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
    });
  }
  return ctx.Error("attribute approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}

absl::Status ComputeMish(KernelContext& ctx) {
  return Pointwise(ctx, [](auto x) { return x * std::tanh(StableSoftplus(x)); });
}

// PRelu: y = x < 0 ? slope * x : x, with slope broadcast to x's shape
// (unidirectional, opset 7). Before opset 7 a 1-D slope of x.dim(1) values
// is one slope per channel (what exporters of that time produced).
absl::Status ComputePRelu(KernelContext& ctx) {
  if (!ctx.HasInput(1)) return ctx.Error("expects input 1 (slope)");
  const Tensor& x = ctx.Input(0);
  Tensor slope = ctx.Input(1);
  if (slope.dtype() != x.dtype()) {
    return ctx.Error("slope has type ", DTypeName(slope.dtype()), ", X has ", DTypeName(x.dtype()));
  }
  if (ctx.opset() < 7 && slope.rank() == 1 && slope.size() > 1 && x.rank() >= 2 && slope.dim(0) == x.dim(1)) {
    Shape s(x.rank() - 1, 1);
    s[0] = slope.dim(0);
    slope = slope.Reshaped(s);
  }
  auto shape = BroadcastShapes(x.shape(), slope.shape());
  if (!shape.ok() || *shape != x.shape()) {
    return ctx.Error("slope of shape ", ShapeToString(slope.shape()), " cannot be broadcast to X of shape ",
                     ShapeToString(x.shape()));
  }
  return VisitNumeric(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        const T* px = x.data<T>();
        const T* ps = slope.data<T>();
        T* po = out->mutable_data<T>();
        auto f = [](T v, T s) -> T {
          const C c = static_cast<C>(v);
          if (!(c < C(0))) return v;
          if constexpr (std::is_integral_v<T>) {
            // Wrap like numpy instead of overflowing (signed overflow is UB).
            using U = std::make_unsigned_t<T>;
            using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
            return static_cast<T>(static_cast<U>(static_cast<W>(static_cast<U>(s)) * static_cast<W>(static_cast<U>(v))));
          } else {
            return static_cast<T>(static_cast<C>(s) * c);
          }
        };
        // Slope as (outer, n, inner): x[o, j, i] uses slope[j] when the
        // slope's non-1 dimensions are contiguous; else a general walk.
        const Shape& xs = x.shape();
        Shape sb(xs.size(), 1);
        for (int d = 0; d < slope.rank(); ++d) sb[xs.size() - slope.rank() + d] = slope.dim(d);
        int first = -1, last = -1;
        for (size_t d = 0; d < sb.size(); ++d) {
          if (sb[d] != 1) {
            if (first < 0) first = static_cast<int>(d);
            last = static_cast<int>(d);
          }
        }
        bool banded = true;
        for (int d = first; first >= 0 && d <= last; ++d) banded &= sb[d] == xs[d];
        if (!banded) {
          Shape shapes[2] = {xs, slope.shape()};
          BroadcastIterator it(xs, absl::MakeConstSpan(shapes, 2));
          it.ForEach([&](int64_t o, const int64_t* idx) { po[o] = f(px[idx[0]], ps[idx[1]]); });
          return absl::OkStatus();
        }
        int64_t outer = 1, n = 1, inner = 1;
        for (int d = 0; d < static_cast<int>(xs.size()); ++d) {
          if (first < 0 || d < first) outer *= xs[d];
          else if (d <= last) n *= xs[d];
          else inner *= xs[d];
        }
        const int64_t rows = outer * n;
        ctx.ParallelFor(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)),
                        [&](int64_t lo, int64_t hi) {
                          for (int64_t r = lo; r < hi; ++r) {
                            const T s = ps[r % n];
                            const T* xi = px + r * inner;
                            T* oi = po + r * inner;
                            for (int64_t i = 0; i < inner; ++i) oi[i] = f(xi[i], s);
                          }
                        });
        return absl::OkStatus();
      },
      "PRelu");
}

// ---------------------------------------------------------------------------
// Softmax, LogSoftmax, Hardmax over a (outer, n, inner) view of the input:
// from opset 13 along one axis (n = dims[axis], default axis -1); before,
// with the input coerced to 2-D at `axis` (n = prod(dims[axis:]), inner = 1,
// default axis 1).

enum class NormKind { kSoftmax, kLogSoftmax, kHardmax };

// One (outer) block of n * inner values, normalised along n. x and y may be
// the same buffer. `scratch` holds 2 * inner values, `arg` inner indices.
template <typename C>
void NormalizeBlock(NormKind kind, const C* x, C* y, int64_t n, int64_t inner, C* scratch, int64_t* arg) {
  C* mx = scratch;
  C* sum = scratch + inner;
  if (inner == 1 && kind != NormKind::kHardmax) {
    // The common case (last axis): one contiguous row, sums in registers.
    C m = -std::numeric_limits<C>::infinity();
    if constexpr (std::is_same_v<C, float>) {
      if (kind == NormKind::kSoftmax && n > 0) {
        m = std::max(m, MaxF32(x, n));
        const float inv = 1.0f / ExpShiftSumF32(x, y, n, m);
        ScaleF32(y, y, n, inv);
        return;
      }
    }
    for (int64_t j = 0; j < n; ++j) m = std::max(m, x[j]);
    C s = C(0);
    if (kind == NormKind::kSoftmax) {
      if constexpr (std::is_same_v<C, float>) {
        s = ExpShiftSumF32(x, y, n, m);
      } else {
        for (int64_t j = 0; j < n; ++j) {
          const C e = std::exp(x[j] - m);
          y[j] = e;
          s += e;
        }
      }
      const C inv = C(1) / s;
      for (int64_t j = 0; j < n; ++j) y[j] *= inv;
    } else {
      for (int64_t j = 0; j < n; ++j) s += std::exp(x[j] - m);
      const C log_sum = std::log(s);
      for (int64_t j = 0; j < n; ++j) y[j] = (x[j] - m) - log_sum;
    }
    return;
  }
  if (kind == NormKind::kHardmax) {
    // First index of the maximum, as numpy.argmax.
    for (int64_t i = 0; i < inner; ++i) {
      mx[i] = x[i];
      arg[i] = 0;
    }
    for (int64_t j = 1; j < n; ++j) {
      const C* xj = x + j * inner;
      for (int64_t i = 0; i < inner; ++i) {
        if (xj[i] > mx[i]) {
          mx[i] = xj[i];
          arg[i] = j;
        }
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      C* yj = y + j * inner;
      for (int64_t i = 0; i < inner; ++i) yj[i] = arg[i] == j ? C(1) : C(0);
    }
    return;
  }
  for (int64_t i = 0; i < inner; ++i) {
    mx[i] = -std::numeric_limits<C>::infinity();
    sum[i] = C(0);
  }
  for (int64_t j = 0; j < n; ++j) {
    const C* xj = x + j * inner;
    for (int64_t i = 0; i < inner; ++i) mx[i] = std::max(mx[i], xj[i]);
  }
  for (int64_t j = 0; j < n; ++j) {
    const C* xj = x + j * inner;
    C* yj = y + j * inner;
    if (kind == NormKind::kSoftmax) {
      for (int64_t i = 0; i < inner; ++i) {
        yj[i] = std::exp(xj[i] - mx[i]);
        sum[i] += yj[i];
      }
    } else {
      for (int64_t i = 0; i < inner; ++i) sum[i] += std::exp(xj[i] - mx[i]);
    }
  }
  if (kind == NormKind::kSoftmax) {
    for (int64_t i = 0; i < inner; ++i) sum[i] = C(1) / sum[i];
    for (int64_t j = 0; j < n; ++j) {
      C* yj = y + j * inner;
      for (int64_t i = 0; i < inner; ++i) yj[i] *= sum[i];
    }
  } else {
    // (x - max) - log(sum), not x - (max + log(sum)): the latter loses the
    // small log term next to a large max.
    for (int64_t i = 0; i < inner; ++i) sum[i] = std::log(sum[i]);
    for (int64_t j = 0; j < n; ++j) {
      const C* xj = x + j * inner;
      C* yj = y + j * inner;
      for (int64_t i = 0; i < inner; ++i) yj[i] = (xj[i] - mx[i]) - sum[i];
    }
  }
}

// Softmax of `rows` contiguous fp32 rows of n < 16 values (a classifier's
// few classes): a row is shorter than a vector, so the rows go through the
// vectorised exp together, 64 rows at a time, shifted by their maxima,
// instead of one mostly empty vector per row. Sums run in element order.
void SoftmaxShortRowsF32(const float* x, float* y, int64_t rows, int64_t n) {
  constexpr int64_t kRows = 64;
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t rc = std::min(kRows, rows - r0);
    const float* xr = x + r0 * n;
    float* yr = y + r0 * n;
    for (int64_t r = 0; r < rc; ++r) {
      const float* xi = xr + r * n;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) m = std::max(m, xi[j]);
      for (int64_t j = 0; j < n; ++j) yr[r * n + j] = xi[j] - m;
    }
    ExpF32(yr, yr, rc * n);
    for (int64_t r = 0; r < rc; ++r) {
      float* yi = yr + r * n;
      float s = 0.0f;
      for (int64_t j = 0; j < n; ++j) s += yi[j];
      const float inv = 1.0f / s;
      for (int64_t j = 0; j < n; ++j) yi[j] *= inv;
    }
  }
}

absl::Status NormalizeAlongAxis(KernelContext& ctx, NormKind kind) {
  const Tensor& x = ctx.Input(0);
  const int64_t rank = x.rank();
  const bool coerce_2d = ctx.opset() < 13;
  const int64_t default_axis = coerce_2d ? 1 : -1;
  int64_t axis = ctx.node().GetInt("axis", default_axis);
  if (coerce_2d && rank > 0 && axis == rank) {
    // Coercion at axis == rank is a valid [N, 1] view.
  } else {
    auto a = NormalizeAxis(axis, rank);
    if (!a.ok()) return ctx.Error(a.status().message());
    axis = *a;
  }
  int64_t outer = 1, n = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < axis) outer *= x.dim(d);
    else if (d == axis || coerce_2d) n *= x.dim(d);
    else inner *= x.dim(d);
  }
  return VisitFloat(
      x.dtype(),
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        using C = ComputeT<T>;
        Tensor* out = ctx.Output(0, x.dtype(), x.shape());
        if (x.size() == 0) return absl::OkStatus();
        const T* px = x.data<T>();
        T* po = out->mutable_data<T>();
        const int64_t block = n * inner;
        ctx.ParallelFor(0, outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(block, 1)),
                        [&](int64_t lo, int64_t hi) {
                          if constexpr (std::is_same_v<T, float>) {
                            if (kind == NormKind::kSoftmax && inner == 1 && n < 16) {
                              SoftmaxShortRowsF32(px + lo * block, po + lo * block, hi - lo, n);
                              return;
                            }
                          }
                          std::vector<C> scratch(2 * inner);
                          std::vector<int64_t> arg(kind == NormKind::kHardmax ? inner : 0);
                          std::vector<C> buf;
                          if constexpr (!std::is_same_v<T, C>) buf.resize(block);
                          for (int64_t o = lo; o < hi; ++o) {
                            if constexpr (std::is_same_v<T, C>) {
                              NormalizeBlock<C>(kind, px + o * block, po + o * block, n, inner, scratch.data(), arg.data());
                            } else {
                              for (int64_t i = 0; i < block; ++i) buf[i] = static_cast<C>(px[o * block + i]);
                              NormalizeBlock<C>(kind, buf.data(), buf.data(), n, inner, scratch.data(), arg.data());
                              for (int64_t i = 0; i < block; ++i) po[o * block + i] = static_cast<T>(buf[i]);
                            }
                          }
                        });
        return absl::OkStatus();
      },
      ctx.node().op_type);
}

absl::Status ComputeSoftmax(KernelContext& ctx) { return NormalizeAlongAxis(ctx, NormKind::kSoftmax); }
absl::Status ComputeLogSoftmax(KernelContext& ctx) { return NormalizeAlongAxis(ctx, NormKind::kLogSoftmax); }
absl::Status ComputeHardmax(KernelContext& ctx) { return NormalizeAlongAxis(ctx, NormKind::kHardmax); }

constexpr DTypeSet kSignedNumeric = kFloatTypes | kSignedIntTypes;

const OpTableRegistration kActivationOps({
    {.name = "Relu", .since = 1, .types = kSignedNumeric, .infer = InferSameAsInput, .compute = ComputeRelu},
    {.name = "LeakyRelu", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeLeakyRelu},
    {.name = "PRelu", .since = 1, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputePRelu},
    {.name = "Elu", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeElu},
    {.name = "Selu", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSelu},
    {.name = "Celu", .since = 12, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeCelu},
    {.name = "Sigmoid", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSigmoid},
    {.name = "Tanh", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeTanh},
    {.name = "HardSigmoid", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeHardSigmoid},
    {.name = "HardSwish", .since = 14, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeHardSwish},
    {.name = "Softplus", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSoftplus},
    {.name = "Softsign", .since = 1, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSoftsign},
    {.name = "ThresholdedRelu", .since = 10, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeThresholdedRelu},
    {.name = "Shrink", .since = 9, .types = kNumericTypes, .infer = InferSameAsInput, .compute = ComputeShrink},
    {.name = "Gelu", .since = 20, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeGelu},
    {.name = "Mish", .since = 18, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeMish},
    // Softmax family: 2-D coercion before opset 13, one axis from it.
    {.name = "Softmax", .since = 1, .until = 12, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeSoftmax},
    {.name = "Softmax", .since = 13, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeSoftmax},
    {.name = "LogSoftmax", .since = 1, .until = 12, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeLogSoftmax},
    {.name = "LogSoftmax", .since = 13, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeLogSoftmax},
    {.name = "Hardmax", .since = 1, .until = 12, .types = kFloatTypes, .infer = InferSameAsInput,
     .compute = ComputeHardmax},
    {.name = "Hardmax", .since = 13, .types = kFloatTypes, .infer = InferSameAsInput, .compute = ComputeHardmax},
});

}  // namespace
}  // namespace hepml::ops
