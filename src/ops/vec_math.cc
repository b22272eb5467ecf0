// Vectorised fp32 math (see vec_math.h). Compiled once per Highway target
// (foreach_target.h re-includes this file); HWY_DYNAMIC_DISPATCH picks the
// best target the CPU supports on first use.
#include "ops/vec_math.h"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#include <cmath>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/vec_math.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace hepml::ops {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// Applies f (vector -> vector) to full vectors, then to the tail through a
// zero-padded vector, so the tail gets the same results as the body.
template <typename F>
HWY_INLINE void Map(const float* x, float* y, int64_t n, F f) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    hn::Store(f(d, hn::Load(d, buf)), d, buf);
    for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

// exp(x) for every x: Highway's Exp is specified on [-FLT_MAX, 88.7]; larger
// inputs give +inf, NaN stays NaN.
template <class D, class V>
HWY_INLINE V ExpAll(D d, V x) {
  const V big = hn::Set(d, 88.72f);
  const V e = hn::CallExp(d, hn::Min(x, big));
  const auto over = hn::Gt(x, big);
  const V r = hn::IfThenElse(over, hn::Set(d, HUGE_VALF), e);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

void Exp(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) { return ExpAll(d, v); });
}

void Sigmoid(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) {
    const auto e = ExpAll(d, hn::Neg(hn::Abs(v)));  // in (0, 1]: no overflow
    const auto r = hn::Div(hn::Set(d, 1.0f), hn::Add(hn::Set(d, 1.0f), e));
    const auto s = hn::IfThenElse(hn::Ge(v, hn::Zero(d)), r, hn::Mul(e, r));
    return hn::IfThenElse(hn::IsNaN(v), v, s);
  });
}

// log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exp never overflows.
void Softplus(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) {
    const auto e = ExpAll(d, hn::Neg(hn::Abs(v)));
    const auto s = hn::Add(hn::Max(v, hn::Zero(d)), hn::CallLog1p(d, e));
    return hn::IfThenElse(hn::IsNaN(v), v, s);
  });
}

void Tanh(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) {
    const auto t = hn::CallTanh(d, v);
    return hn::IfThenElse(hn::IsNaN(v), v, t);
  });
}

// erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (|erf| rounds to 1 in float beyond).
template <class D, class V>
HWY_INLINE V ErfApprox(D d, V x) {
  const V c = hn::Min(hn::Max(x, hn::Set(d, -4.0f)), hn::Set(d, 4.0f));
  const V x2 = hn::Mul(c, c);
  V p = hn::Set(d, -2.72614225801306e-10f);
  p = hn::MulAdd(p, x2, hn::Set(d, 2.77068142495902e-08f));
  p = hn::MulAdd(p, x2, hn::Set(d, -2.10102402082508e-06f));
  p = hn::MulAdd(p, x2, hn::Set(d, -5.69250639462346e-05f));
  p = hn::MulAdd(p, x2, hn::Set(d, -7.34990630326855e-04f));
  p = hn::MulAdd(p, x2, hn::Set(d, -2.95459980854025e-03f));
  p = hn::MulAdd(p, x2, hn::Set(d, -1.60960333262415e-02f));
  p = hn::Mul(p, c);
  V q = hn::Set(d, -1.45660718464996e-05f);
  q = hn::MulAdd(q, x2, hn::Set(d, -2.13374055278905e-04f));
  q = hn::MulAdd(q, x2, hn::Set(d, -1.68282697438203e-03f));
  q = hn::MulAdd(q, x2, hn::Set(d, -7.37332916720468e-03f));
  q = hn::MulAdd(q, x2, hn::Set(d, -1.42647390514189e-02f));
  const V r = hn::Div(p, q);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

void Erf(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) { return ErfApprox(d, v); });
}

void Gelu(const float* x, float* y, int64_t n) {
  Map(x, y, n, [](DF d, hn::Vec<DF> v) {
    const auto e = ErfApprox(d, hn::Mul(v, hn::Set(d, 0.70710678118654752f)));
    return hn::Mul(hn::Mul(hn::Set(d, 0.5f), v), hn::Add(hn::Set(d, 1.0f), e));
  });
}

void LeakyRelu(const float* x, float* y, int64_t n, float alpha) {
  Map(x, y, n, [alpha](DF d, hn::Vec<DF> v) {
    return hn::IfThenElse(hn::Ge(v, hn::Zero(d)), v, hn::Mul(v, hn::Set(d, alpha)));
  });
}

void Clip(const float* x, float* y, int64_t n, float lo, float hi) {
  Map(x, y, n, [lo, hi](DF d, hn::Vec<DF> v) {
    const auto l = hn::Set(d, lo), h = hn::Set(d, hi);
    const auto c = hn::IfThenElse(hn::Lt(v, l), l, v);
    return hn::IfThenElse(hn::Gt(c, h), h, c);
  });
}

// Sum over lanes of four accumulators, in double.
template <class D, class V>
HWY_INLINE double SumLanes(D d, V a0, V a1, V a2, V a3) {
  HWY_ALIGN float lanes[hn::MaxLanes(D())];
  hn::Store(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), d, lanes);
  double s = 0;
  for (size_t i = 0; i < hn::Lanes(d); ++i) s += lanes[i];
  return s;
}

void LayerNormRow(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                  double eps, double* mean_out, double* inv_std_out) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + L));
    s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * L));
    s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * L));
  }
  for (; i + L <= n; i += L) s0 = hn::Add(s0, hn::LoadU(d, x + i));
  double sum = SumLanes(d, s0, s1, s2, s3);
  for (; i < n; ++i) sum += x[i];
  const double mean = n > 0 ? sum / static_cast<double>(n) : 0.0;
  const auto m = hn::Set(d, static_cast<float>(mean));
  s0 = s1 = s2 = s3 = hn::Zero(d);
  i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    const auto d0 = hn::Sub(hn::LoadU(d, x + i), m), d1 = hn::Sub(hn::LoadU(d, x + i + L), m);
    const auto d2 = hn::Sub(hn::LoadU(d, x + i + 2 * L), m), d3 = hn::Sub(hn::LoadU(d, x + i + 3 * L), m);
    s0 = hn::MulAdd(d0, d0, s0);
    s1 = hn::MulAdd(d1, d1, s1);
    s2 = hn::MulAdd(d2, d2, s2);
    s3 = hn::MulAdd(d3, d3, s3);
  }
  for (; i + L <= n; i += L) {
    const auto d0 = hn::Sub(hn::LoadU(d, x + i), m);
    s0 = hn::MulAdd(d0, d0, s0);
  }
  double sq = SumLanes(d, s0, s1, s2, s3);
  for (; i < n; ++i) {
    const double dv = static_cast<double>(x[i] - static_cast<float>(mean));
    sq += dv * dv;
  }
  const double var = n > 0 ? sq / static_cast<double>(n) : 0.0;
  const double inv_std = 1.0 / std::sqrt(var + eps);
  *mean_out = mean;
  *inv_std_out = inv_std;
  const auto is = hn::Set(d, static_cast<float>(inv_std));
  const float mf = static_cast<float>(mean), isf = static_cast<float>(inv_std);
  i = 0;
  for (; i + L <= n; i += L) {
    const auto t = hn::Mul(hn::Sub(hn::LoadU(d, x + i), m), is);
    const auto b = bias != nullptr ? hn::LoadU(d, bias + i) : hn::Zero(d);
    hn::StoreU(hn::MulAdd(t, hn::LoadU(d, scale + i), b), d, y + i);
  }
  for (; i < n; ++i) y[i] = (x[i] - mf) * isf * scale[i] + (bias != nullptr ? bias[i] : 0.0f);
}

float Max(const float* x, int64_t n) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  float m = x[0];
  int64_t i = 0;
  if (n >= L) {
    auto v = hn::LoadU(d, x);
    for (i = L; i + L <= n; i += L) v = hn::Max(v, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, v));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

void Scale(const float* x, float* y, int64_t n, float a) {
  Map(x, y, n, [a](DF d, hn::Vec<DF> v) { return hn::Mul(v, hn::Set(d, a)); });
}

template <BinaryF32Op kOp, class V>
HWY_INLINE V Apply(V x, V y) {
  if constexpr (kOp == BinaryF32Op::kAdd) return hn::Add(x, y);
  else if constexpr (kOp == BinaryF32Op::kSub) return hn::Sub(x, y);
  else if constexpr (kOp == BinaryF32Op::kMul) return hn::Mul(x, y);
  else return hn::Div(x, y);
}

template <BinaryF32Op kOp>
float ApplyScalar(float x, float y) {
  if constexpr (kOp == BinaryF32Op::kAdd) return x + y;
  else if constexpr (kOp == BinaryF32Op::kSub) return x - y;
  else if constexpr (kOp == BinaryF32Op::kMul) return x * y;
  else return x / y;
}

template <BinaryF32Op kOp>
void BinaryOf(const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  const DF d;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  if (sa != 0 && sb != 0) {
    for (; i + L <= n; i += L) hn::StoreU(Apply<kOp>(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, o + i);
  } else if (sa != 0) {
    const auto bv = hn::Set(d, b[0]);
    for (; i + L <= n; i += L) hn::StoreU(Apply<kOp>(hn::LoadU(d, a + i), bv), d, o + i);
  } else if (sb != 0) {
    const auto av = hn::Set(d, a[0]);
    for (; i + L <= n; i += L) hn::StoreU(Apply<kOp>(av, hn::LoadU(d, b + i)), d, o + i);
  }
  for (; i < n; ++i) o[i] = ApplyScalar<kOp>(a[i * sa], b[i * sb]);
}

void Binary(BinaryF32Op op, const float* a, int64_t sa, const float* b, int64_t sb, float* o, int64_t n) {
  switch (op) {
    case BinaryF32Op::kAdd: BinaryOf<BinaryF32Op::kAdd>(a, sa, b, sb, o, n); break;
    case BinaryF32Op::kSub: BinaryOf<BinaryF32Op::kSub>(a, sa, b, sb, o, n); break;
    case BinaryF32Op::kMul: BinaryOf<BinaryF32Op::kMul>(a, sa, b, sb, o, n); break;
    case BinaryF32Op::kDiv: BinaryOf<BinaryF32Op::kDiv>(a, sa, b, sb, o, n); break;
  }
}

float ExpShiftSum(const float* x, float* y, int64_t n, float shift) {
  const DF d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto s = hn::Set(d, shift);
  auto acc = hn::Zero(d);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto e = ExpAll(d, hn::Sub(hn::LoadU(d, x + i), s));
    hn::StoreU(e, d, y + i);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, acc));
  if (i < n) {
    HWY_ALIGN float buf[hn::MaxLanes(d)] = {};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    hn::Store(ExpAll(d, hn::Sub(hn::Load(d, buf), s)), d, buf);
    for (int64_t j = i; j < n; ++j) {
      y[j] = buf[j - i];
      sum += buf[j - i];
    }
  }
  return sum;
}

}  // namespace HWY_NAMESPACE
}  // namespace hepml::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hepml::ops {

HWY_EXPORT(Exp);
HWY_EXPORT(Sigmoid);
HWY_EXPORT(Softplus);
HWY_EXPORT(Tanh);
HWY_EXPORT(ExpShiftSum);
HWY_EXPORT(Erf);
HWY_EXPORT(Gelu);
HWY_EXPORT(LeakyRelu);
HWY_EXPORT(Binary);
HWY_EXPORT(Max);
HWY_EXPORT(Scale);
HWY_EXPORT(LayerNormRow);
HWY_EXPORT(Clip);

void LeakyReluF32(const float* x, float* y, int64_t n, float alpha) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(LeakyRelu)(x, y, n, alpha);
}
void LayerNormRowF32(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                     double eps, double* mean, double* inv_std) {
  HWY_DYNAMIC_DISPATCH(LayerNormRow)(x, y, n, scale, bias, eps, mean, inv_std);
}
float MaxF32(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(Max)(x, n); }
void ScaleF32(const float* x, float* y, int64_t n, float a) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Scale)(x, y, n, a);
}
void BinaryF32(BinaryF32Op op, const float* a, int64_t sa, const float* b, int64_t sb, float* o,
               int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Binary)(op, a, sa, b, sb, o, n);
}
void ClipF32(const float* x, float* y, int64_t n, float lo, float hi) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Clip)(x, y, n, lo, hi);
}

void ErfF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Erf)(x, y, n);
}
void GeluF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Gelu)(x, y, n);
}

void ExpF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Exp)(x, y, n);
}
void SigmoidF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Sigmoid)(x, y, n);
}
void SoftplusF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Softplus)(x, y, n);
}
void TanhF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Tanh)(x, y, n);
}
float ExpShiftSumF32(const float* x, float* y, int64_t n, float shift) {
  return n > 0 ? HWY_DYNAMIC_DISPATCH(ExpShiftSum)(x, y, n, shift) : 0.0f;
}

}  // namespace hepml::ops
#endif  // HWY_ONCE
