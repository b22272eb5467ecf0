// Float exp, tanh, sigmoid, erf and GELU of the emitted code without calls
// into libm, so that the loops applying them (Unary, fused activations, LSTM
// gates, softmax) vectorise: each function is branch-free straight-line
// arithmetic (both sides of a range split are computed and one is selected),
// which GCC and Clang turn into SIMD code at -O3 (-O2 for Clang). libm's
// tanhf/erff/expf were a quarter of a batch-1 LSTM or transformer run.
//
// Accuracy (codegen_kernels_test checks each against double-precision libm
// over the whole float range, including denormal results, +-inf and NaN):
// relative error below 2e-7 (about 2 ulp) for ExpF, TanhF, ErfF; below 3e-7
// for SigmoidF; GeluF and GeluTanhF within 3e-7 relative or 1e-30 absolute
// (their negative tail is computed as x * erfc, not 1 + erf, so it keeps its
// relative accuracy where the libm formula cancels to 0). NaN in gives NaN.
#pragma once

#include <cstdint>
#include <cstring>

// Each function is forced inline (GCC, Clang): GCC's inliner otherwise keeps
// some as calls once a translation unit grows (a whole model's code), and a
// loop that calls one does not vectorise (a transformer's GELU took half of
// its batch-1 time as one call per element).
#if defined(__GNUC__) || defined(__clang__)
#define HEPML_VEC_INLINE inline __attribute__((always_inline))
#else
#define HEPML_VEC_INLINE inline
#endif

namespace hepml_emitted {

// The bits of a float and back, and a select of two already computed
// values through those bits: with a plain `c ? a : b` GCC sinks the arithmetic
// of a and b into branches and then, under its default -ftrapping-math, will
// not vectorise the loop for SSE2/AVX2 (it may not compute both sides of a
// branch); the bitwise select keeps both computed unconditionally.
HEPML_VEC_INLINE uint32_t VecBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}
HEPML_VEC_INLINE float VecFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
HEPML_VEC_INLINE float SelectF(bool c, float a, float b) {
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  return VecFloat((VecBits(a) & m) | (VecBits(b) & ~m));
}

// |x|, and t >= 0 (or NaN) with the sign of x, through the bits.
HEPML_VEC_INLINE float AbsF(float x) { return VecFloat(VecBits(x) & 0x7fffffffu); }
HEPML_VEC_INLINE float WithSignOf(float t, float x) { return VecFloat(VecBits(t) | (VecBits(x) & 0x80000000u)); }

// 2^n for n in [-126, 127], from its exponent bits (any other n gives some
// float and no undefined behaviour).
HEPML_VEC_INLINE float Pow2I(int32_t n) { return VecFloat(static_cast<uint32_t>(n + 127) << 23); }

// e^x: x = n ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite, ln 2 in two parts
// whose first has 9 bits, so n * part is exact), e^r = 1 + r + r^2 p(r) with
// Cephes' degree-5 minimax p, then the scale 2^n applied as two factors
// 2^(n/2) 2^(n - n/2), so results below 2^-126 round once into the denormals
// and above 2^128 overflow to inf. x is clamped to [-104, 89] first (e^-104
// is below half the smallest denormal, e^89 above FLT_MAX), which also maps
// -inf to 0 and +inf to inf; NaN passes the clamps and every step as NaN.
// n is read from the bits of x log2 e + 1.5 * 2^23, whose low bits hold it in
// two's complement (no float-to-int conversion, which NaN would make
// undefined).
HEPML_VEC_INLINE float ExpF(float x) {
  float xc = SelectF(x < -104.f, -104.f, x);
  xc = SelectF(xc > 89.f, 89.f, xc);
  const float kf = xc * 1.44269504088896341f + 12582912.f;
  const float fn = kf - 12582912.f;
  const float r = (xc - fn * 0.693359375f) + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = (p * r) * r + r + 1.f;
  const int32_t n = static_cast<int32_t>(VecBits(kf) - 0x4B400000u);
  const int32_t n1 = n / 2;
  return e * Pow2I(n1) * Pow2I(n - n1);
}

// 1 / (1 + e^-x), as e / (1 + e) with e = e^-|x| and the numerator 1 or e by
// the sign, so neither side overflows and tiny results keep their precision.
HEPML_VEC_INLINE float SigmoidF(float x) {
  const float e = ExpF(-AbsF(x));
  return SelectF(x < 0.f, e, 1.f) / (1.f + e);
}

// tanh: x + x^3 p(x^2) below |x| = 1 (degree-6 minimax p, relative error of
// the fit 5e-9); above, 1 - 2 / (e^2|x| + 1) with the sign of x (the
// quotient is at most 0.24 of the result there, so its rounding stays small).
HEPML_VEC_INLINE float TanhF(float x) {
  const float a = AbsF(x);
  const float z = x * x;
  float p = -3.5847382969222963e-4f;
  p = p * z + 2.3014361504465342e-3f;
  p = p * z - 7.9461978748440742e-3f;
  p = p * z + 2.1486714482307434e-2f;
  p = p * z - 5.3879819810390472e-2f;
  p = p * z + 1.3332344591617584e-1f;
  p = p * z - 3.3333295583724976e-1f;
  const float small = a + a * (z * p);
  const float big = 1.f - 2.f / (ExpF(a + a) + 1.f);
  return WithSignOf(SelectF(a < 1.f, small, big), x);  // computed for |x|: tanh(-0) is -0
}

// erfc(a) e^(a^2) for a >= 1 as a degree-10 minimax polynomial in
// t = 1 / (1 + a / 2) (relative error of the fit 1.2e-10 on [1, 10.5]; beyond
// 10.5 e^(-a^2) is below the smallest denormal), so erfc(a) = e^(-a^2) times
// it keeps its relative accuracy all the way down.
HEPML_VEC_INLINE float ErfcScaledTail(float a) {
  const float t = 1.f / (1.f + 0.5f * a) - 0.41333333333333333f;
  float q = -5.506514757871628e-2f;
  q = q * t - 6.921426206827164e-2f;
  q = q * t + 8.406975120306015e-2f;
  q = q * t + 9.204600751399994e-2f;
  q = q * t - 1.2313255667686462e-1f;
  q = q * t - 1.7694145441055298e-1f;
  q = q * t + 1.4788798987865448e-1f;
  q = q * t + 5.95252275466919e-1f;
  q = q * t + 8.064481019973755e-1f;
  q = q * t + 7.008424997329712e-1f;
  q = q * t + 1.8820375204086304e-1f;
  return q;
}

// erf(x) / x - 1 for |x| < 1 as a degree-6 minimax polynomial in x^2
// (relative error of the fit 2e-9), so erf(x) = x + x q with q small.
HEPML_VEC_INLINE float ErfSmallQ(float z) {
  float q = 7.854098657844588e-5f;
  q = q * z - 8.010261226445436e-4f;
  q = q * z + 5.188334733247757e-3f;
  q = q * z - 2.6853814721107483e-2f;
  q = q * z + 1.128358542919159e-1f;
  q = q * z - 3.761262595653534e-1f;
  q = q * z + 1.2837916612625122e-1f;
  return q;
}

// erf: x + x q(x^2) below |x| = 1; above, 1 - e^(-x^2) ErfcScaledTail(|x|)
// with the sign of x.
HEPML_VEC_INLINE float ErfF(float x) {
  const float a = AbsF(x);
  const float z = x * x;
  const float small = a + a * ErfSmallQ(z);
  const float big = 1.f - ExpF(-z) * ErfcScaledTail(a);
  return WithSignOf(SelectF(a < 1.f, small, big), x);
}

// GELU, x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: for |x| / sqrt 2 < 1
// Phi = (1 + erf) / 2; above, x Phi = x erfc / 2 on the negative side (no
// cancellation: GELU(-6) keeps its 3e-9) and x (1 - erfc / 2) on the
// positive, with e^(-x^2/2) multiplied last on the negative side so a
// denormal result is rounded once more, not scaled after rounding.
HEPML_VEC_INLINE float GeluF(float x) {
  const float s = x * 0.70710678118654752440f;
  const float a = AbsF(s);
  const float z = s * s;
  const float small = x * (0.5f * ((1.f + s) + s * ErfSmallQ(z)));  // 1 + s is exact for s >= -1
  const float r = 0.5f * ErfcScaledTail(a), e = ExpF(-z);
  const float big = SelectF(s < 0.f, (x * r) * e, x * (1.f - r * e));  // (x r) e is NaN at x = +inf
  return SelectF(a < 1.f, small, big);
}

// GELU's tanh form, x (1 + tanh(u)) / 2 with u = sqrt(2 / pi) (x + 0.044715
// x^3), as x sigmoid(2u) = x / (1 + e) times 1 or e, e = e^-|2u| (the same
// value without cancellation for negative x; e multiplied last as above).
HEPML_VEC_INLINE float GeluTanhF(float x) {
  const float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
  const float e = ExpF(-AbsF(u + u));
  return (x / (1.f + e)) * SelectF(u < 0.f, e, 1.f);
}

// softplus(v) = log(1 + e^v) = max(v, 0) + log1p(e^-|v|), without calls
// into libm so that the Unary loop vectorises (libm's log1pf was 14% of a
// batch-1 calo_gan run). e^-|v| (|v| clamped at 87, where it is below
// 2^-125): 2^n x e^r with n the nearest integer to -|v| / ln 2, |r| <= ln 2 / 2
// (Cody-Waite: ln 2 in two parts), e^r by its degree-7 Taylor polynomial
// (relative error < 2e-8); log1p(t) for t in (0, 1] as 2 atanh(t / (2 + t))
// by its odd series to s^15 (s <= 1/3, relative error < 1e-8). NaN stays NaN.
HEPML_VEC_INLINE float SoftplusF(float v) {
  const float a = AbsF(v), xa = a < 87.f ? a : 87.f;
  const float fn = (-xa * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  const float r = (-xa - fn * 0.693145751953125f) - fn * 1.42860682030941723e-6f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (static_cast<int32_t>(fn) + 127) * (1 << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float t = p * scale;
  const float s = t / (2.f + t), s2 = s * s;
  float q = 1.f / 15.f;
  q = q * s2 + 1.f / 13.f;
  q = q * s2 + 1.f / 11.f;
  q = q * s2 + 1.f / 9.f;
  q = q * s2 + 1.f / 7.f;
  q = q * s2 + 1.f / 5.f;
  q = q * s2 + 1.f / 3.f;
  q = q * s2 + 1.f;
  const float out = (v > 0.f ? v : 0.f) + 2.f * s * q;
  return v != v ? v : out;
}

}  // namespace hepml_emitted
