// Random operators: RandomUniform, RandomNormal, RandomUniformLike,
// RandomNormalLike, Bernoulli, Multinomial, and Dropout (every version).
//
// Random streams. With a `seed` attribute a node reseeds its stream on every
// call, so its output is the same for every Run of a Session (and across
// processes). The stream is numpy's legacy one: std::mt19937 seeded with an
// integer is bit-identical to numpy.random.seed(seed), and doubles, uniform
// and normal draws follow numpy's RandomState (53-bit doubles from two 32-bit
// words, polar Box-Muller with a cached second value). So a seeded node
// reproduces `np.random.seed(s); np.random.uniform(low, high, shape)` (and
// `normal`), which is what the ONNX reference uses for Dropout's mask.
// Without a seed each call draws a fresh 32-bit seed from one process-wide
// engine (seeded from std::random_device, guarded by a mutex).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <type_traits>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// numpy RandomState's stream on top of MT19937.
class NumpyRandom {
 public:
  explicit NumpyRandom(uint32_t seed) : mt_(seed) {}

  // Uniform in [0, 1) with 53 random bits (numpy's random_sample).
  double Uniform01() {
    const uint32_t a = static_cast<uint32_t>(mt_()) >> 5;
    const uint32_t b = static_cast<uint32_t>(mt_()) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }
  // Standard normal (numpy's legacy gauss: polar method, second value kept).
  double Gauss() {
    if (has_gauss_) {
      has_gauss_ = false;
      return gauss_;
    }
    double x1, x2, r2;
    do {
      x1 = 2.0 * Uniform01() - 1.0;
      x2 = 2.0 * Uniform01() - 1.0;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = std::sqrt(-2.0 * std::log(r2) / r2);
    gauss_ = f * x1;
    has_gauss_ = true;
    return f * x2;
  }

 private:
  std::mt19937 mt_;
  bool has_gauss_ = false;
  double gauss_ = 0;
};

uint32_t ProcessSeed() {
  static std::mutex mu;
  static std::mt19937_64 engine{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return static_cast<uint32_t>(engine() >> 32);
}

// The seed of a node: its `seed` attribute (a float for the Random* ops and
// Bernoulli/Multinomial, an int for Dropout) or, without one, a fresh draw.
// Whole numbers in [0, 2^32) are used as is (numpy's seeds); other values
// hash their bits.
uint32_t NodeSeed(const Node& node) {
  const Attribute* a = node.FindAttribute("seed");
  if (a == nullptr) return ProcessSeed();
  if (a->type == Attribute::Type::kInt) {
    if (a->i >= 0 && a->i <= 0xffffffffLL) return static_cast<uint32_t>(a->i);
    const uint64_t u = static_cast<uint64_t>(a->i);
    return static_cast<uint32_t>(u ^ (u >> 32) ^ 0x9e3779b9u);
  }
  if (a->type == Attribute::Type::kFloat) {
    const float f = a->f;
    if (std::isfinite(f) && f >= 0 && f < 4294967296.0f && f == std::floor(f)) {
      return static_cast<uint32_t>(f);
    }
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    return bits ^ 0x9e3779b9u;
  }
  return ProcessSeed();
}

bool IsRandomOutputType(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16;
}

// The largest value of T below v (v finite and not the lowest value of T).
template <typename T>
T NextDown(T v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  } else {  // Float16 / BFloat16: step the sign-magnitude bits
    T r = v;
    if ((r.bits & 0x7fff) == 0) r.bits = 0x8001;  // +-0 -> the negative denormal closest to 0
    else if (r.bits & 0x8000) ++r.bits;
    else --r.bits;
    return r;
  }
}

// Fills `out` (a float16/float32/float64 tensor) with draw(rng) values. With
// `below` set, values that rounding to T brought up to or above *below (a
// uniform draw just under `high`) become the largest T under it, so a
// uniform sample stays in [low, high) in every output type.
template <typename Draw>
absl::Status FillRandom(KernelContext& ctx, Tensor* out, Draw draw, std::optional<double> below = std::nullopt) {
  NumpyRandom rng(NodeSeed(ctx.node()));
  return VisitFloat(out->dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    T* p = out->mutable_data<T>();
    for (int64_t i = 0; i < out->size(); ++i) {
      T v = static_cast<T>(static_cast<C>(draw(rng)));
      if (below) {
        for (int guard = 0; guard < 4 && static_cast<double>(static_cast<C>(v)) >= *below; ++guard) v = NextDown(v);
      }
      p[i] = v;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<DType> RandomOutputDType(KernelContext& ctx, DType fallback) {
  const Attribute* a = ctx.node().FindAttribute("dtype");
  DType d = fallback;
  if (a != nullptr) {
    if (a->type != Attribute::Type::kInt || !IsKnownDType(static_cast<int32_t>(a->i))) {
      return ctx.Error("attribute 'dtype' is not a known data type");
    }
    d = static_cast<DType>(a->i);
  }
  if (!IsRandomOutputType(d)) {
    return ctx.Error("output data type must be float16, float32 or float64, got ", DTypeName(d));
  }
  return d;
}

absl::StatusOr<Shape> ShapeAttr(KernelContext& ctx) {
  const Attribute* a = ctx.node().FindAttribute("shape");
  if (a == nullptr || a->type != Attribute::Type::kInts) {
    return ctx.Error("required attribute 'shape' is missing");
  }
  Shape shape;
  for (int64_t d : a->ints) {
    if (d < 0) return ctx.Error("attribute 'shape' has a negative dimension ", d);
    shape.push_back(d);
  }
  return shape;
}

// Draws of a distribution given by the node's attributes.
struct Distribution {
  bool normal = false;
  double a = 0, b = 1;  // low/high or mean/scale
  double operator()(NumpyRandom& rng) const {
    return normal ? a + b * rng.Gauss() : a + (b - a) * rng.Uniform01();
  }
  // The open upper end of a uniform distribution [low, high), if it has one.
  std::optional<double> UpperBound() const {
    if (normal || !(a < b)) return std::nullopt;
    return b;
  }
};

Distribution ReadDistribution(const Node& node, bool normal) {
  Distribution d;
  d.normal = normal;
  if (normal) {
    d.a = node.GetFloat("mean", 0.0f);
    d.b = node.GetFloat("scale", 1.0f);
  } else {
    d.a = node.GetFloat("low", 0.0f);
    d.b = node.GetFloat("high", 1.0f);
  }
  return d;
}

template <bool kNormal>
absl::Status ComputeRandom(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 0); !st.ok()) return st;
  auto dtype = RandomOutputDType(ctx, DType::kFloat32);
  if (!dtype.ok()) return dtype.status();
  auto shape = ShapeAttr(ctx);
  if (!shape.ok()) return shape.status();
  Tensor* out = ctx.Output(0, *dtype, *shape);
  const Distribution dist = ReadDistribution(ctx.node(), kNormal);
  return FillRandom(ctx, out, dist, dist.UpperBound());
}

template <bool kNormal>
absl::Status ComputeRandomLike(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& in = ctx.Input(0);
  auto dtype = RandomOutputDType(ctx, in.dtype());
  if (!dtype.ok()) return dtype.status();
  Tensor* out = ctx.Output(0, *dtype, in.shape());
  const Distribution dist = ReadDistribution(ctx.node(), kNormal);
  return FillRandom(ctx, out, dist, dist.UpperBound());
}

absl::Status InferRandom(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  const Attribute* d = ctx.node.FindAttribute("dtype");
  const DType dtype = d && d->type == Attribute::Type::kInt && IsKnownDType(static_cast<int32_t>(d->i))
                          ? static_cast<DType>(d->i)
                          : DType::kFloat32;
  const Attribute* s = ctx.node.FindAttribute("shape");
  if (s == nullptr || s->type != Attribute::Type::kInts) {
    outputs[0] = TypeInfo::Tensor(dtype);
    return absl::OkStatus();
  }
  std::vector<Dim> dims;
  for (int64_t v : s->ints) dims.push_back(Dim{v, ""});
  outputs[0] = TypeInfo::Tensor(dtype, std::move(dims));
  return absl::OkStatus();
}

// Output: the `dtype` attribute if set, else input 0's type; input 0's shape.
absl::Status InferLikeInput(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  if (ctx.input_types.empty()) return absl::OkStatus();
  TypeInfo t = ctx.input_types[0];
  const Attribute* d = ctx.node.FindAttribute("dtype");
  if (d && d->type == Attribute::Type::kInt && IsKnownDType(static_cast<int32_t>(d->i))) {
    if (t.kind != TypeInfo::Kind::kTensor) t = TypeInfo::Tensor(DType::kUndefined);
    t.dtype = static_cast<DType>(d->i);
  }
  outputs[0] = t;
  return absl::OkStatus();
}

// ---- Bernoulli ----
// y = 1 with probability p: y = (u < p) for u uniform in [0, 1). (The ONNX
// function body compares Greater(u, p), which draws 1 with probability 1 - p;
// hepml follows the operator's definition.)
absl::Status ComputeBernoulli(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& p = ctx.Input(0);
  DType out_dtype = p.dtype();
  if (const Attribute* a = ctx.node().FindAttribute("dtype")) {
    if (a->type != Attribute::Type::kInt || !IsKnownDType(static_cast<int32_t>(a->i))) {
      return ctx.Error("attribute 'dtype' is not a known data type");
    }
    out_dtype = static_cast<DType>(a->i);
  }
  std::vector<uint8_t> bits(static_cast<size_t>(p.size()));
  NumpyRandom rng(NodeSeed(ctx.node()));
  absl::Status st = VisitFloat(p.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* pp = p.data<T>();
    for (int64_t i = 0; i < p.size(); ++i) {
      const double prob = static_cast<double>(static_cast<ComputeT<T>>(pp[i]));
      if (!(prob >= 0.0 && prob <= 1.0)) {
        return ctx.Error("probability ", prob, " at element ", i, " is outside [0, 1]");
      }
      bits[i] = rng.Uniform01() < prob ? 1 : 0;
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  Tensor* out = ctx.Output(0, out_dtype, p.shape());
  return VisitNumericOrBool(
      out_dtype,
      [&](auto tag) -> absl::Status {
        using T = typename decltype(tag)::type;
        T* o = out->mutable_data<T>();
        for (int64_t i = 0; i < p.size(); ++i) o[i] = static_cast<T>(bits[i] ? 1.0f : 0.0f);
        return absl::OkStatus();
      },
      "Bernoulli output");
}

// ---- Multinomial ----
// Input [batch, classes] of unnormalised log-probabilities; output
// [batch, sample_size] of class indices (int32 or int64).
absl::Status ComputeMultinomial(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() != 2) return ctx.Error("input must be 2-D [batch, classes], got ", ShapeToString(x.shape()));
  const int64_t batch = x.dim(0), classes = x.dim(1);
  const int64_t samples = ctx.node().GetInt("sample_size", 1);
  if (samples < 0) return ctx.Error("sample_size must be >= 0, got ", samples);
  const DType out_dtype = static_cast<DType>(ctx.node().GetInt("dtype", static_cast<int64_t>(DType::kInt32)));
  if (out_dtype != DType::kInt32 && out_dtype != DType::kInt64) {
    return ctx.Error("attribute 'dtype' must be int32 or int64");
  }
  if (classes == 0 && batch * samples > 0) return ctx.Error("input has no classes to sample from");
  auto logits = ReadDoubles(x);
  if (!logits.ok()) return ctx.Error(logits.status().message());
  Tensor* out = ctx.Output(0, out_dtype, Shape{batch, samples});
  NumpyRandom rng(NodeSeed(ctx.node()));
  std::vector<double> cdf(static_cast<size_t>(classes));
  for (int64_t b = 0; b < batch; ++b) {
    const double* row = logits->data() + b * classes;
    const double mx = *std::max_element(row, row + classes);
    double total = std::isfinite(mx) ? 0.0 : std::nan("");
    for (int64_t c = 0; c < classes && std::isfinite(mx); ++c) {
      total += std::exp(row[c] - mx);
      cdf[c] = total;
    }
    if (!(total > 0) || !std::isfinite(total)) {
      return ctx.Error("row ", b, " has no valid probabilities (NaN or all -inf)");
    }
    for (int64_t s = 0; s < samples; ++s) {
      const double u = rng.Uniform01() * total;
      int64_t k = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
      k = std::min(k, classes - 1);
      if (out_dtype == DType::kInt32) {
        out->mutable_data<int32_t>()[b * samples + s] = static_cast<int32_t>(k);
      } else {
        out->mutable_data<int64_t>()[b * samples + s] = k;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status InferMultinomial(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty() || ctx.input_types.empty()) return absl::OkStatus();
  const DType dtype = static_cast<DType>(ctx.node.GetInt("dtype", static_cast<int64_t>(DType::kInt32)));
  std::vector<Dim> dims(2);
  const TypeInfo& in = ctx.input_types[0];
  if (in.kind == TypeInfo::Kind::kTensor && in.has_shape && in.shape.size() == 2) dims[0] = in.shape[0];
  dims[1] = Dim{ctx.node.GetInt("sample_size", 1), ""};
  outputs[0] = TypeInfo::Tensor(dtype, std::move(dims));
  return absl::OkStatus();
}

// ---- Dropout ----
// Writes the mask output (bool from opset 10, else T) as all kept.
absl::Status WriteKeepAllMask(KernelContext& ctx, const Tensor& x) {
  if (!ctx.HasOutput(1)) return absl::OkStatus();
  const DType mask_dtype = ctx.opset() >= 10 ? DType::kBool : x.dtype();
  Tensor* mask = ctx.Output(1, mask_dtype, x.shape());
  return VisitNumericOrBool(mask_dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    std::fill(mask->mutable_data<T>(), mask->mutable_data<T>() + mask->size(), static_cast<T>(1.0f));
    return absl::OkStatus();
  });
}

// Training-mode dropout: keep an element when u >= ratio (u uniform in
// [0, 1), numpy's order), scaled by 1 / (1 - ratio).
absl::Status TrainingDropout(KernelContext& ctx, const Tensor& x, double ratio) {
  if (!(ratio >= 0.0 && ratio <= 1.0)) return ctx.Error("ratio must be in [0, 1], got ", ratio);
  Tensor* y = ctx.Output(0, x.dtype(), x.shape());
  const DType mask_dtype = ctx.opset() >= 10 ? DType::kBool : x.dtype();
  Tensor* mask = ctx.HasOutput(1) ? ctx.Output(1, mask_dtype, x.shape()) : nullptr;
  NumpyRandom rng(NodeSeed(ctx.node()));
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    const C scale = ratio < 1.0 ? static_cast<C>(1.0 / (1.0 - ratio)) : C(0);
    for (int64_t i = 0; i < x.size(); ++i) {
      const bool keep = ratio < 1.0 && rng.Uniform01() >= ratio;
      py[i] = keep ? static_cast<T>(static_cast<C>(px[i]) * scale) : static_cast<T>(C(0));
      if (mask == nullptr) continue;
      if (mask_dtype == DType::kBool) {
        mask->mutable_data<bool>()[i] = keep;
      } else {
        mask->mutable_data<T>()[i] = static_cast<T>(keep ? C(1) : C(0));
      }
    }
    return absl::OkStatus();
  });
}

// Opsets 1-11: `ratio` attribute; opsets 1 and 6 also `is_test` (default 0:
// training); from 7 the operator is an identity at inference.
absl::Status ComputeDropoutAttr(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const double ratio = ctx.node().GetFloat("ratio", 0.5f);
  if (!(ratio >= 0.0 && ratio <= 1.0)) return ctx.Error("ratio must be in [0, 1], got ", ratio);
  if (ctx.opset() < 7 && ctx.node().GetInt("is_test", 0) == 0) return TrainingDropout(ctx, x, ratio);
  ctx.SetOutput(0, x);
  return WriteKeepAllMask(ctx, x);
}

// Opset 12+: optional inputs ratio (scalar, default 0.5) and training_mode
// (bool scalar, default false); `seed` attribute.
absl::Status ComputeDropout12(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  double ratio = 0.5;
  if (ctx.HasInput(1)) {
    auto r = ReadScalarDouble(ctx.Input(1));
    if (!r.ok()) return ctx.Error("ratio: ", r.status().message());
    ratio = *r;
  }
  bool training = false;
  if (ctx.HasInput(2)) {
    const Tensor& t = ctx.Input(2);
    if (t.dtype() != DType::kBool || t.size() != 1) {
      return ctx.Error("training_mode must be a bool scalar, got ", DTypeName(t.dtype()),
                       ShapeToString(t.shape()));
    }
    training = t.data<bool>()[0];
  }
  if (!(ratio >= 0.0 && ratio <= 1.0)) return ctx.Error("ratio must be in [0, 1], got ", ratio);
  if (training) return TrainingDropout(ctx, x, ratio);
  ctx.SetOutput(0, x);
  return WriteKeepAllMask(ctx, x);
}

absl::Status InferDropout(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  if (ctx.input_types.empty()) return absl::OkStatus();
  outputs[0] = ctx.input_types[0];
  if (outputs.size() > 1) {
    outputs[1] = ctx.input_types[0];
    if (ctx.opset >= 10) outputs[1].dtype = DType::kBool;
  }
  return absl::OkStatus();
}

constexpr DTypeSet kRandomFloatTypes = Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kFloat16);

const OpTableRegistration kRandomOps({
    {.name = "RandomUniform", .since = 1, .infer = InferRandom, .compute = ComputeRandom<false>},
    {.name = "RandomNormal", .since = 1, .infer = InferRandom, .compute = ComputeRandom<true>},
    {.name = "RandomUniformLike", .since = 1, .infer = InferLikeInput,
     .compute = ComputeRandomLike<false>},
    {.name = "RandomNormalLike", .since = 1, .infer = InferLikeInput,
     .compute = ComputeRandomLike<true>},
    {.name = "Bernoulli", .since = 15, .types = kRandomFloatTypes, .infer = InferLikeInput,
     .compute = ComputeBernoulli},
    {.name = "Multinomial", .since = 7, .types = kRandomFloatTypes, .infer = InferMultinomial,
     .compute = ComputeMultinomial},
    {.name = "Dropout", .since = 1, .until = 11, .types = kRandomFloatTypes, .infer = InferDropout,
     .compute = ComputeDropoutAttr},
    {.name = "Dropout", .since = 12, .until = 12, .types = kRandomFloatTypes, .infer = InferDropout,
     .compute = ComputeDropout12},
    {.name = "Dropout", .since = 13, .types = kFloatTypes, .infer = InferDropout,
     .compute = ComputeDropout12},
});

}  // namespace
}  // namespace hepml::ops
