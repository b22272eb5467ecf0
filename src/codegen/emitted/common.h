// Shared helpers of the emitted kernel library (see src/codegen/README.md):
// plain C++17, no allocation, no dependency outside the standard library.
// The compiler copies these files into each generated NAME.cc, renaming the
// namespace, so they are also compiled and tested here as ordinary headers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "codegen/emitted/vecmath.h"

namespace hepml_emitted {

// Storage types of float16 and bfloat16 tensors: the 16 bits of the value,
// converted to float to compute and back (round to nearest even) to store.
// From double, the value is first rounded to float with round-to-odd, so the
// one rounding to 16 bits is still correct (no double rounding).
inline uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
inline float BitsFloat(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline float RoundToOddFloat(double d) {
  const float f = static_cast<float>(d);
  if (std::isnan(d) || std::isinf(f) || static_cast<double>(f) == d) return f;
  uint32_t b = FloatBits(f);
  if (std::fabs(static_cast<double>(f)) > std::fabs(d)) --b;  // truncate toward zero
  return BitsFloat(b | 1u);
}

struct Float16 {
  uint16_t bits;
  Float16() = default;
  Float16(float f) : bits(FromFloat(f)) {}  // NOLINT: implicit, as the kernels store floats
  Float16(double d) : bits(FromFloat(RoundToOddFloat(d))) {}  // NOLINT
  template <typename I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  Float16(I i) : Float16(static_cast<double>(i)) {}  // NOLINT
  operator float() const { return ToFloat(bits); }  // NOLINT
  static uint16_t FromFloat(float f) {
    const uint32_t x = FloatBits(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: infinity
    if (ax < 0x38800000u) {  // below 2^-14: a subnormal half, in units of 2^-24
      return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(BitsFloat(ax) * 16777216.f)));
    }
    uint32_t r = ax - 0x38000000u;  // exponent bias 127 -> 15
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    return static_cast<uint16_t>(sign | r);
  }
  static float ToFloat(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
      const float f = static_cast<float>(m) * 5.9604644775390625e-8f;  // 2^-24
      return sign ? -f : f;
    }
    if (e == 31) return BitsFloat(sign | 0x7f800000u | (m << 13));
    return BitsFloat(sign | ((e + 112u) << 23) | (m << 13));
  }
};

struct BFloat16 {
  uint16_t bits;
  BFloat16() = default;
  BFloat16(float f) : bits(FromFloat(f)) {}  // NOLINT
  BFloat16(double d) : bits(FromFloat(RoundToOddFloat(d))) {}  // NOLINT
  template <typename I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  BFloat16(I i) : BFloat16(static_cast<double>(i)) {}  // NOLINT
  operator float() const { return ToFloat(bits); }  // NOLINT
  static uint16_t FromFloat(float f) {
    const uint32_t x = FloatBits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7fc0u);
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  }
  static float ToFloat(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }
};

// Activations a dense or conv layer applies to its output in place
// (hepml's FusedGemm / FusedConv `activation` attribute).
enum class Act { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kGelu, kSoftplus };

inline float ApplyAct(Act act, float x, float alpha, float beta) {
  switch (act) {
    case Act::kNone: return x;
    case Act::kRelu: return x > 0.f ? x : 0.f;
    case Act::kLeakyRelu: return x >= 0.f ? x : alpha * x;
    case Act::kSigmoid: return SigmoidF(x);
    case Act::kTanh: return TanhF(x);
    case Act::kClip: return x < alpha ? alpha : (x > beta ? beta : x);
    case Act::kGelu: return GeluF(x);
    case Act::kSoftplus: return SoftplusF(x);
  }
  return x;
}

// One loop per activation, so each is a straight loop the compiler
// vectorises (vecmath.h has no libm calls).
inline void ActInPlace(Act act, float* y, int64_t n, float alpha, float beta) {
  switch (act) {
    case Act::kNone: return;
    case Act::kRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : 0.f;
      return;
    case Act::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] >= 0.f ? y[i] : alpha * y[i];
      return;
    case Act::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = SigmoidF(y[i]);
      return;
    case Act::kTanh:
      for (int64_t i = 0; i < n; ++i) y[i] = TanhF(y[i]);
      return;
    case Act::kGelu:
      for (int64_t i = 0; i < n; ++i) y[i] = GeluF(y[i]);
      return;
    case Act::kSoftplus:
      for (int64_t i = 0; i < n; ++i) y[i] = SoftplusF(y[i]);
      return;
    default:
      for (int64_t i = 0; i < n; ++i) y[i] = ApplyAct(act, y[i], alpha, beta);
  }
}

// Row-major strides of `dims` (rank <= 8).
inline void Strides(int rank, const int64_t* dims, int64_t* strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    strides[d] = s;
    s *= dims[d];
  }
}

inline int64_t Product(int rank, const int64_t* dims) {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= dims[d];
  return n;
}

}  // namespace hepml_emitted
