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

// ONNX QuantizeLinear of one value: x / scale rounded half to even, plus the
// zero point, saturated to [lo, hi]. NaN goes to the zero point.
template <typename T>
inline T QuantizeOne(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float v = std::nearbyint(x / scale) + static_cast<float>(zp);
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

// sum_k a[k] * w[k] over kp (a multiple of kQK) values, exact in int32 for
// kp < 2^16 (|a|, |w| <= 255, 128).
template <typename TA>
inline int32_t DotQ(int64_t kp, const TA* a, const int8_t* w) {
  int32_t acc[kQK] = {0};
  for (int64_t k0 = 0; k0 < kp; k0 += kQK) {
    for (int64_t l = 0; l < kQK; ++l)
      acc[l] += static_cast<int32_t>(static_cast<int16_t>(a[k0 + l]) * static_cast<int16_t>(w[k0 + l]));
  }
  int32_t s = 0;
  for (int64_t l = 0; l < kQK; ++l) s += acc[l];
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
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {
      // Four columns per pass share the row of a.
      int32_t a0[kQK] = {0}, a1[kQK] = {0}, a2[kQK] = {0}, a3[kQK] = {0};
      const int8_t *w0 = w + j * kp, *w1 = w0 + kp, *w2 = w1 + kp, *w3 = w2 + kp;
      for (int64_t k0 = 0; k0 < kp; k0 += kQK) {
        for (int64_t l = 0; l < kQK; ++l) {
          const int16_t av = static_cast<int16_t>(ar[k0 + l]);
          a0[l] += static_cast<int32_t>(av * static_cast<int16_t>(w0[k0 + l]));
          a1[l] += static_cast<int32_t>(av * static_cast<int16_t>(w1[k0 + l]));
          a2[l] += static_cast<int32_t>(av * static_cast<int16_t>(w2[k0 + l]));
          a3[l] += static_cast<int32_t>(av * static_cast<int16_t>(w3[k0 + l]));
        }
      }
      int32_t s[4] = {0, 0, 0, 0};
      for (int64_t l = 0; l < kQK; ++l) {
        s[0] += a0[l];
        s[1] += a1[l];
        s[2] += a2[l];
        s[3] += a3[l];
      }
      for (int64_t c = 0; c < 4; ++c) {
        const int32_t v = wsum != nullptr ? s[c] - a_zp * wsum[j + c] : s[c];
        Y[i * y_row + (j + c) * y_col] = scale[j + c] * static_cast<float>(v);
      }
    }
    for (; j < N; ++j) {
      int32_t v = DotQ(kp, ar, w + j * kp);
      if (wsum != nullptr) v -= a_zp * wsum[j];
      Y[i * y_row + j * y_col] = scale[j] * static_cast<float>(v);
    }
  }
}

// The column matrix of a convolution transposed: colT[p * ld + (c * K + k)]
// for output position p, channel c < channels, kernel offset k; positions in
// the padding read `pad` (the zero point: a real 0).
template <typename T>
inline void Im2ColRows(const ConvGeometry& g, int64_t channels, const T* x, T pad, int64_t ld, T* colT) {
  int64_t in[3], out[3], ker[3], str[3], dil[3], pb[3];
  const int lead = 3 - g.spatial;
  for (int i = 0; i < 3; ++i) {
    const bool real = i >= lead;
    in[i] = real ? g.in[i - lead] : 1;
    out[i] = real ? g.out[i - lead] : 1;
    ker[i] = real ? g.kernel[i - lead] : 1;
    str[i] = real ? g.stride[i - lead] : 1;
    dil[i] = real ? g.dilation[i - lead] : 1;
    pb[i] = real ? g.pad_begin[i - lead] : 0;
  }
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

}  // namespace hepml_emitted
