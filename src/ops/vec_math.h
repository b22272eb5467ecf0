// Vectorised fp32 transcendental functions over arrays, on Highway with
// run-time ISA dispatch (AVX-512, AVX2, SSE4, scalar): the activations of
// recurrent cells, Sigmoid/Tanh operators and fused activations, Softmax's
// exponentials. Each y may equal x (in place). Accuracy: Highway's Exp and
// Tanh (a few ULP, see hwy/contrib/math); NaN in gives NaN out; +-inf give
// the limits (exp(-inf) = 0, sigmoid(+-inf) = 1/0, tanh(+-inf) = +-1).
#pragma once

#include <cstdint>

namespace hepml::ops {

// y[i] = exp(x[i]).
void ExpF32(const float* x, float* y, int64_t n);

// y[i] = 1 / (1 + exp(-x[i])), computed from exp(-|x|) so that no
// intermediate overflows.
void SigmoidF32(const float* x, float* y, int64_t n);

// y[i] = log(1 + exp(x[i])) as max(x, 0) + log1p(exp(-|x|)): no
// intermediate overflows (Softplus).
void SoftplusF32(const float* x, float* y, int64_t n);

// y[i] = tanh(x[i]).
void TanhF32(const float* x, float* y, int64_t n);

// y[i] = erf(x[i]): a rational approximation on [-4, 4] (odd polynomial of
// degree 13 over one of degree 8 in x), +-1 beyond; absolute error < 1e-6.
void ErfF32(const float* x, float* y, int64_t n);

// y[i] = 0.5 x (1 + erf(x / sqrt 2)): Gelu without approximation, with the
// erf above.
void GeluF32(const float* x, float* y, int64_t n);

// y[i] = x[i] >= 0 ? x[i] : alpha * x[i] (LeakyRelu; NaN stays NaN, -0
// stays -0).
void LeakyReluF32(const float* x, float* y, int64_t n, float alpha);

// y[i] = min(max(x[i], lo), hi) in Clip's order: x < lo gives lo, then
// anything > hi gives hi; NaN stays NaN.
void ClipF32(const float* x, float* y, int64_t n, float lo, float hi);

// One row of LayerNormalization: y[i] = (x[i] - mean) * inv_std * scale[i]
// + bias[i] (bias may be null) with mean and the biased variance of x taken
// in two passes (vector partial sums in float, combined in double) and
// inv_std = 1 / sqrt(var + eps); returns both through mean/inv_std.
void LayerNormRowF32(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                     double eps, double* mean, double* inv_std);

// The maximum of x[0..n) (n >= 1); NaNs may or may not be skipped (a row
// holding one gives NaN through exp either way).
float MaxF32(const float* x, int64_t n);

// y[i] = x[i] * a.
void ScaleF32(const float* x, float* y, int64_t n, float a);

// o[i] = a[i * sa] OP b[i * sb] for i < n, OP one of + - * / (IEEE single,
// as the scalar operators), sa and sb 0 (a repeated value) or 1.
enum class BinaryF32Op { kAdd, kSub, kMul, kDiv };
void BinaryF32(BinaryF32Op op, const float* a, int64_t sa, const float* b, int64_t sb, float* o,
               int64_t n);

// y[i] = exp(x[i] - shift); returns the sum of the y[i] (Softmax's row:
// shift is the row's maximum).
float ExpShiftSumF32(const float* x, float* y, int64_t n, float shift);

}  // namespace hepml::ops
