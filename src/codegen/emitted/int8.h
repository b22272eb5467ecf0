// Integer kernels of the emitted code (`hepml compile --precision int8` and
// QDQ models): activations quantised per tensor to int8 (symmetric) or uint8
// (with a zero point), weights int8 per output channel, products accumulated
// exactly in int32, dequantised with scale_w[c] * scale_x, then bias and
// activation in float (GemmEpilogue / the conv epilogue).
//
// The reduction axis is padded to a multiple of kQK with zero weights, so the
// dot products run over whole 16-lane blocks: a fixed-trip-count loop of
// int16 x int16 -> int32 products that GCC and Clang vectorise into
// pmaddwd / vpdpwssd-like code at -O2, no intrinsics.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"
#include "codegen/emitted/conv.h"

namespace hepml_emitted {

inline constexpr int64_t kQK = 16;
inline int64_t QPad(int64_t k) { return (k + kQK - 1) / kQK * kQK; }

// Round half to even of |v| <= 2^22 without a libm call (std::nearbyint is
// one at the x86-64 baseline): adding 1.5 * 2^23 leaves no fraction bits, so
// the sum rounds to the nearest integer, ties to even, and the subtraction
// is exact. Needs IEEE float arithmetic as written: compilers keep the pair
// at -O2/-O3, -ffast-math (reassociation) would fold it away.
inline float RoundHalfEven(float v) {
  v = v > 4194304.f ? 4194304.f : (v < -4194304.f ? -4194304.f : v);
  return (v + 12582912.f) - 12582912.f;
}

// ONNX QuantizeLinear of one value: x / scale rounded half to even, plus the
// zero point, saturated to [lo, hi]. NaN goes to the zero point.
template <typename T>
inline T QuantizeOne(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float v = RoundHalfEven(x / scale) + static_cast<float>(zp);
  if (!(v == v)) v = static_cast<float>(zp);
  v = v < static_cast<float>(lo) ? static_cast<float>(lo) : (v > static_cast<float>(hi) ? static_cast<float>(hi) : v);
  return static_cast<T>(static_cast<int32_t>(v));
}

// rows x k floats (row stride k) -> rows x kp quantised values (row stride
// kp, the padding columns set to the zero point).
template <typename T>
inline void QuantizeRows(int64_t rows, int64_t k, int64_t kp, const float* x, float scale, int32_t zp, int32_t lo,
                         int32_t hi, T* q) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* xr = x + i * k;
    T* qr = q + i * kp;
    for (int64_t j = 0; j < k; ++j) qr[j] = QuantizeOne<T>(xr[j], scale, zp, lo, hi);
    for (int64_t j = k; j < kp; ++j) qr[j] = static_cast<T>(zp);
  }
}

// rows x k quantised values (stride k) -> stride kp (padding: zero point).
template <typename T>
inline void PadRows(int64_t rows, int64_t k, int64_t kp, const T* x, int32_t zp, T* q) {
  for (int64_t i = 0; i < rows; ++i) {
    std::memcpy(q + i * kp, x + i * k, static_cast<size_t>(k) * sizeof(T));
    for (int64_t j = k; j < kp; ++j) q[i * kp + j] = static_cast<T>(zp);
  }
}

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
// GCC 12+ and Clang: 16 products per step through vector extensions (the
// int8 inputs widened to int16, the int16 products, which fit since
// |a| <= 255 and |w| <= 127, widened to int32 and summed into one 8-lane
// accumulator per column). As in gemm.h no function takes or returns a
// vector (that would change the ABI between ISA levels), hence the macro.
#define HEPML_EMITTED_QVEC 1
typedef int8_t QVecI8 __attribute__((vector_size(16)));
typedef uint8_t QVecU8 __attribute__((vector_size(16)));
typedef int16_t QVecI16 __attribute__((vector_size(32)));
typedef int16_t QVecI16h __attribute__((vector_size(16)));
typedef int32_t QVecI32 __attribute__((vector_size(32)));
template <typename TA>
struct QVecOf {
  typedef QVecI8 type;
};
template <>
struct QVecOf<uint8_t> {
  typedef QVecU8 type;
};
#define HEPML_QMAC(acc, a16, wp)                                                                   \
  do {                                                                                             \
    QVecI8 wb_;                                                                                    \
    std::memcpy(&wb_, (wp), 16);                                                                   \
    const QVecI16 p_ = (a16) * __builtin_convertvector(wb_, QVecI16);                               \
    const QVecI16h lo_ = __builtin_shufflevector(p_, p_, 0, 1, 2, 3, 4, 5, 6, 7);                   \
    const QVecI16h hi_ = __builtin_shufflevector(p_, p_, 8, 9, 10, 11, 12, 13, 14, 15);             \
    (acc) += __builtin_convertvector(lo_, QVecI32) + __builtin_convertvector(hi_, QVecI32);         \
  } while (0)
#endif

// sum_k a[k] * w[k] over kp (a multiple of kQK) values, exact in int32 for
// kp < 2^16 (|a| <= 255, |w| <= 127).
template <typename TA>
inline int32_t DotQ(int64_t kp, const TA* a, const int8_t* w) {
  int32_t s = 0;
  for (int64_t k0 = 0; k0 < kp; k0 += kQK) {
    int32_t t = 0;
    for (int64_t l = 0; l < kQK; ++l)
      t += static_cast<int32_t>(static_cast<int16_t>(a[k0 + l]) * static_cast<int16_t>(w[k0 + l]));
    s += t;
  }
  return s;
}

// Y[i * y_row + j * y_col] = scale[j] * (sum_k a[i, k] * w[j, k] - a_zp * wsum[j])
// for a [M, kp] (zero point a_zp) and w [N, kp] int8 (symmetric: zero point
// 0; wsum[j] = sum_k w[j, k], null when a_zp is 0).
template <typename TA>
inline void GemmQ(int64_t M, int64_t N, int64_t kp, const TA* a, int32_t a_zp, const int8_t* w, const int32_t* wsum,
                  const float* scale, int64_t y_row, int64_t y_col, float* Y) {
  for (int64_t i = 0; i < M; ++i) {
    const TA* ar = a + i * kp;
    // Four columns per pass share each widened block of the row; the last
    // pass may have fewer (one loop: GCC's loop-bound analysis warns about a
    // separate tail loop that is dead for some constant N).
    for (int64_t j = 0; j < N; j += 4) {
      const int64_t cols = N - j < 4 ? N - j : 4;
      const int8_t* w0 = w + j * kp;
      int32_t s[4] = {0, 0, 0, 0};
#if defined(HEPML_EMITTED_QVEC)
      if (cols == 4) {
        QVecI32 s0 = {0, 0, 0, 0, 0, 0, 0, 0}, s1 = s0, s2 = s0, s3 = s0;
        for (int64_t k = 0; k < kp; k += kQK) {
          typename QVecOf<TA>::type ab;
          std::memcpy(&ab, ar + k, 16);
          const QVecI16 a16 = __builtin_convertvector(ab, QVecI16);
          HEPML_QMAC(s0, a16, w0 + k);
          HEPML_QMAC(s1, a16, w0 + kp + k);
          HEPML_QMAC(s2, a16, w0 + 2 * kp + k);
          HEPML_QMAC(s3, a16, w0 + 3 * kp + k);
        }
        for (int l = 0; l < 8; ++l) {
          s[0] += s0[l];
          s[1] += s1[l];
          s[2] += s2[l];
          s[3] += s3[l];
        }
      } else
#endif
      {
        for (int64_t c = 0; c < cols; ++c) s[c] = DotQ(kp, ar, w0 + c * kp);
      }
      for (int64_t c = 0; c < cols; ++c) {
        const int32_t v = wsum != nullptr ? s[c] - a_zp * wsum[j + c] : s[c];
        Y[i * y_row + (j + c) * y_col] = scale[j + c] * static_cast<float>(v);
      }
    }
  }
}

// The column matrix of a convolution transposed: colT[p * ld + (c * K + k)]
// for output position p, channel c < channels, kernel offset k; positions in
// the padding read `pad` (the zero point: a real 0).
template <typename T>
inline void Im2ColRows(const ConvGeometry& g, int64_t channels, const T* x, T pad, int64_t ld, T* colT) {
  const ConvGeometry g3 = As3d(g);
  const int64_t *in = g3.in, *out = g3.out, *ker = g3.kernel, *str = g3.stride, *dil = g3.dilation,
                *pb = g3.pad_begin;
  const int64_t in_size = in[0] * in[1] * in[2];
  int64_t p = 0;
  for (int64_t o0 = 0; o0 < out[0]; ++o0)
    for (int64_t o1 = 0; o1 < out[1]; ++o1)
      for (int64_t o2 = 0; o2 < out[2]; ++o2, ++p) {
        T* row = colT + p * ld;
        int64_t r = 0;
        for (int64_t c = 0; c < channels; ++c) {
          const T* xc = x + c * in_size;
          for (int64_t k0 = 0; k0 < ker[0]; ++k0) {
            const int64_t i0 = o0 * str[0] - pb[0] + k0 * dil[0];
            for (int64_t k1 = 0; k1 < ker[1]; ++k1) {
              const int64_t i1 = o1 * str[1] - pb[1] + k1 * dil[1];
              for (int64_t k2 = 0; k2 < ker[2]; ++k2, ++r) {
                const int64_t i2 = o2 * str[2] - pb[2] + k2 * dil[2];
                const bool inside = i0 >= 0 && i0 < in[0] && i1 >= 0 && i1 < in[1] && i2 >= 0 && i2 < in[2];
                row[r] = inside ? xc[(i0 * in[1] + i1) * in[2] + i2] : pad;
              }
            }
          }
        }
        for (; r < ld; ++r) row[r] = pad;
      }
}

// Quantised convolution: x [batch, c_in, in...] already quantised (zero point
// x_zp), w [c_out, kp] int8 rows (kp = QPad(c_in / group * kernel)), wsum as
// in GemmQ, scale[c] = scale_w[c] * scale_x; then bias and activation in
// float. colT holds out_size * kp values.
template <typename TA>
inline void ConvQ(const ConvGeometry& g, int64_t batch, int64_t c_in, int64_t c_out, int64_t group, const TA* x,
                  int32_t x_zp, const int8_t* w, const int32_t* wsum, const float* scale, const float* bias, Act act,
                  float act_alpha, float act_beta, TA* colT, float* y) {
  const int64_t in_size = ConvCount(g.in, g.spatial), out_size = ConvCount(g.out, g.spatial);
  const int64_t cin_g = c_in / group, cout_g = c_out / group;
  const int64_t kp = QPad(cin_g * ConvCount(g.kernel, g.spatial));
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      Im2ColRows<TA>(g, cin_g, x + (n * c_in + gi * cin_g) * in_size, static_cast<TA>(x_zp), kp, colT);
      float* yg = y + (n * c_out + gi * cout_g) * out_size;
      GemmQ<TA>(out_size, cout_g, kp, colT, x_zp, w + gi * cout_g * kp, wsum != nullptr ? wsum + gi * cout_g : nullptr,
                scale + gi * cout_g, 1, out_size, yg);
      if (bias != nullptr)
        for (int64_t c = 0; c < cout_g; ++c) {
          const float bv = bias[gi * cout_g + c];
          float* yc = yg + c * out_size;
          for (int64_t p = 0; p < out_size; ++p) yc[p] += bv;
        }
    }
  }
  ActInPlace(act, y, batch * c_out * out_size, act_alpha, act_beta);
}

// ONNX DequantizeLinear, per tensor: (q - zp) * scale.
template <typename T>
inline void DequantizeRows(int64_t n, const T* q, float scale, int32_t zp, float* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(q[i]) - zp) * scale;
}

// ---- ONNX's integer operators with their parameters given at run time
// (MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv, QuantizeLinear,
// DequantizeLinear, DynamicQuantizeLinear): int8 / uint8 operands, zero
// points subtracted into int16 (|q - zp| <= 255), products accumulated
// exactly in int32, requantised in float as ONNX specifies.

// Zero point of index i: none (null: 0), per tensor (n == 1) or per index.
template <typename T>
inline int32_t ZeroPointAt(const T* zp, int64_t n, int64_t i) {
  return zp == nullptr ? 0 : static_cast<int32_t>(zp[n == 1 ? 0 : i]);
}

template <typename T>
inline int32_t QLow() {
  return static_cast<T>(-1) < static_cast<T>(0) ? -128 : 0;
}
template <typename T>
inline int32_t QHigh() {
  return static_cast<T>(-1) < static_cast<T>(0) ? 127 : 255;
}

// sum_k a[k] * b[k] of int16 values, exact in int32 for k < 2^15.
inline int32_t DotI16(int64_t k, const int16_t* a, const int16_t* b) {
  int32_t s = 0;
  for (int64_t i = 0; i < k; ++i) s += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return s;
}

// y[M, N] = sum_k (a[i, k] - a_zp[i]) * (b[k, j] - b_zp[j]) in int32, with
// a_zp per tensor (a_zp_n 1) or per row (M) and b_zp per tensor or per column
// (N), either null for 0. Scratch: bt N * K and ar K int16 values.
template <typename TA, typename TB>
inline void MatMulInt(int64_t M, int64_t N, int64_t K, const TA* a, const TA* a_zp, int64_t a_zp_n, const TB* b,
                      const TB* b_zp, int64_t b_zp_n, int16_t* bt, int16_t* ar, int32_t* y) {
  for (int64_t j = 0; j < N; ++j) {
    const int32_t zp = ZeroPointAt(b_zp, b_zp_n, j);
    for (int64_t k = 0; k < K; ++k) bt[j * K + k] = static_cast<int16_t>(static_cast<int32_t>(b[k * N + j]) - zp);
  }
  for (int64_t i = 0; i < M; ++i) {
    const int32_t zp = ZeroPointAt(a_zp, a_zp_n, i);
    for (int64_t k = 0; k < K; ++k) ar[k] = static_cast<int16_t>(static_cast<int32_t>(a[i * K + k]) - zp);
    for (int64_t j = 0; j < N; ++j) y[i * N + j] = DotI16(K, ar, bt + j * K);
  }
}

// QLinearMatMul of one matrix: MatMulInt, then each sum times
// a_scale[i] * b_scale[j] / y_scale rounded half to even, plus y_zp,
// saturated to TY. Scales per tensor or per row / column as the zero points.
template <typename TA, typename TB, typename TY>
inline void QLinearMatMul(int64_t M, int64_t N, int64_t K, const TA* a, const float* a_scale, int64_t a_n,
                          const TA* a_zp, const TB* b, const float* b_scale, int64_t b_n, const TB* b_zp,
                          float y_scale, int32_t y_zp, int16_t* bt, int16_t* ar, int32_t* acc, TY* y) {
  MatMulInt<TA, TB>(M, N, K, a, a_zp, a_n, b, b_zp, b_n, bt, ar, acc);
  for (int64_t i = 0; i < M; ++i) {
    const float sa = a_scale[a_n == 1 ? 0 : i];
    for (int64_t j = 0; j < N; ++j) {
      const float m = sa * b_scale[b_n == 1 ? 0 : j] / y_scale;
      y[i * N + j] = QuantizeOne<TY>(static_cast<float>(acc[i * N + j]) * m, 1.f, y_zp, QLow<TY>(), QHigh<TY>());
    }
  }
}

// ConvInteger: y [batch, c_out, out...] int32 = the convolution of (x - x_zp)
// and (w - w_zp[c]) (w [c_out, c_in / group, kernel...], its zero point per
// tensor or per output channel); positions in the padding read x_zp (a real
// 0). Scratch: colT out_size * kc TX values, col16 the same in int16, w16
// c_out / group * kc int16 values (kc = c_in / group * kernel size).
template <typename TX, typename TW>
inline void ConvInt(const ConvGeometry& g, int64_t batch, int64_t c_in, int64_t c_out, int64_t group, const TX* x,
                    int32_t x_zp, const TW* w, const TW* w_zp, int64_t w_zp_n, TX* colT, int16_t* col16, int16_t* w16,
                    int32_t* y) {
  const int64_t in_size = ConvCount(g.in, g.spatial), out_size = ConvCount(g.out, g.spatial);
  const int64_t cin_g = c_in / group, cout_g = c_out / group;
  const int64_t kc = cin_g * ConvCount(g.kernel, g.spatial);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      Im2ColRows<TX>(g, cin_g, x + (n * c_in + gi * cin_g) * in_size, static_cast<TX>(x_zp), kc, colT);
      for (int64_t i = 0; i < out_size * kc; ++i)
        col16[i] = static_cast<int16_t>(static_cast<int32_t>(colT[i]) - x_zp);
      for (int64_t c = 0; c < cout_g; ++c) {
        const int32_t zp = ZeroPointAt(w_zp, w_zp_n, gi * cout_g + c);
        const TW* wc = w + (gi * cout_g + c) * kc;
        for (int64_t k = 0; k < kc; ++k) w16[c * kc + k] = static_cast<int16_t>(static_cast<int32_t>(wc[k]) - zp);
      }
      int32_t* yg = y + (n * c_out + gi * cout_g) * out_size;
      for (int64_t c = 0; c < cout_g; ++c)
        for (int64_t p = 0; p < out_size; ++p) yg[c * out_size + p] = DotI16(kc, col16 + p * kc, w16 + c * kc);
    }
  }
}

// QLinearConv's requantisation of the ConvInteger sums acc [batch, c_out,
// out_size]: (acc + bias[c]) * x_scale * w_scale[c] / y_scale rounded half to
// even, plus y_zp, saturated to TY (bias int32 or null; w_scale per tensor
// when w_n is 1, else per output channel).
template <typename TY>
inline void RequantizeChannels(int64_t batch, int64_t c_out, int64_t out_size, const int32_t* acc, const int32_t* bias,
                               float x_scale, const float* w_scale, int64_t w_n, float y_scale, int32_t y_zp, TY* y) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < c_out; ++c) {
      const float m = x_scale * w_scale[w_n == 1 ? 0 : c] / y_scale;
      const int32_t b = bias != nullptr ? bias[c] : 0;
      const int64_t base = (n * c_out + c) * out_size;
      for (int64_t p = 0; p < out_size; ++p)
        y[base + p] = QuantizeOne<TY>(static_cast<float>(acc[base + p] + b) * m, 1.f, y_zp, QLow<TY>(), QHigh<TY>());
    }
}

// QuantizeLinear over x [outer, C, inner] with scale and zero point per
// tensor (C == 1 broadcast) or per index of the middle axis (n == C).
template <typename TY>
inline void QuantizeAxis(int64_t outer, int64_t C, int64_t inner, const float* x, const float* scale, int64_t n,
                         const TY* zp, TY* y) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float s = scale[n == 1 ? 0 : c];
      const int32_t z = ZeroPointAt(zp, n, c);
      const int64_t base = (o * C + c) * inner;
      for (int64_t i = 0; i < inner; ++i) y[base + i] = QuantizeOne<TY>(x[base + i], s, z, QLow<TY>(), QHigh<TY>());
    }
}

// DequantizeLinear over x [outer, C, inner]: (x - zp) * scale, per tensor or
// per index of the middle axis as QuantizeAxis.
template <typename TX>
inline void DequantizeAxis(int64_t outer, int64_t C, int64_t inner, const TX* x, const float* scale, int64_t n,
                           const TX* zp, float* y) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c) {
      const float s = scale[n == 1 ? 0 : c];
      const int32_t z = ZeroPointAt(zp, n, c);
      const int64_t base = (o * C + c) * inner;
      for (int64_t i = 0; i < inner; ++i)
        y[base + i] = static_cast<float>(static_cast<int32_t>(x[base + i]) - z) * s;
    }
}

// DynamicQuantizeLinear: uint8 scale and zero point from the range of x
// widened to include 0, then x quantised with them. An all-zero x gives
// scale 0, zero point 0 and zeros.
inline void DynamicQuantizeLinear(int64_t n, const float* x, uint8_t* y, float* y_scale, uint8_t* y_zp) {
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  const float scale = (hi - lo) / 255.f;
  int32_t zp = 0;
  if (scale > 0.f) {
    float z = RoundHalfEven(0.f - lo / scale);
    z = z < 0.f ? 0.f : (z > 255.f ? 255.f : z);
    zp = static_cast<int32_t>(z);
  }
  *y_scale = scale;
  *y_zp = static_cast<uint8_t>(zp);
  for (int64_t i = 0; i < n; ++i) y[i] = scale > 0.f ? QuantizeOne<uint8_t>(x[i], scale, zp, 0, 255) : 0;
}

}  // namespace hepml_emitted
