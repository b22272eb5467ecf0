// Shared helpers of the emitted kernel library (see src/codegen/README.md):
// plain C++17, no allocation, no dependency outside the standard library.
// The compiler copies these files into each generated NAME.cc, renaming the
// namespace, so they are also compiled and tested here as ordinary headers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace hepml_emitted {

// Activations a dense or conv layer applies to its output in place
// (hepml's FusedGemm / FusedConv `activation` attribute).
enum class Act { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kGelu };

inline float ApplyAct(Act act, float x, float alpha, float beta) {
  switch (act) {
    case Act::kNone: return x;
    case Act::kRelu: return x > 0.f ? x : 0.f;
    case Act::kLeakyRelu: return x >= 0.f ? x : alpha * x;
    case Act::kSigmoid: return 1.f / (1.f + std::exp(-x));
    case Act::kTanh: return std::tanh(x);
    case Act::kClip: return x < alpha ? alpha : (x > beta ? beta : x);
    case Act::kGelu: return 0.5f * x * (1.f + std::erf(x * 0.70710678118654752440f));
  }
  return x;
}

inline void ActInPlace(Act act, float* y, int64_t n, float alpha, float beta) {
  if (act == Act::kNone) return;
  if (act == Act::kRelu) {
    for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : 0.f;
    return;
  }
  for (int64_t i = 0; i < n; ++i) y[i] = ApplyAct(act, y[i], alpha, beta);
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
