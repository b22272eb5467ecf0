// Fixed-point emulation of the emitted code (`hepml compile --precision
// fixed<W,I,Q,O>`): the rules of Vivado/Vitis HLS ap_fixed<W, I, Q, O> in
// integer arithmetic, as hls4ml applies them: the weights, the biases and
// each layer's output are of the type, products are summed exactly in a wide
// integer (int64, or __int128 where the compiler chose it for wide types),
// then the sum is quantised back to the type.
//
// A value of type ap_fixed<W, I> is raw * 2^-F with F = W - I and raw a
// W-bit two's-complement integer. Reproduced modes:
//   quantisation: AP_TRN (floor toward -inf; ap_fixed's default),
//                 AP_RND (round to nearest, ties toward +inf),
//                 AP_RND_CONV (round to nearest, ties to even);
//   overflow:     AP_WRAP (keep the low W bits; the default),
//                 AP_SAT (clamp to [-2^(W-1), 2^(W-1) - 1] raw).
// Not reproduced: AP_RND_ZERO, AP_RND_INF, AP_RND_MIN_INF, AP_TRN_ZERO,
// AP_SAT_ZERO, AP_SAT_SYM, the N (saturation bits) parameter, ap_ufixed.
#pragma once

#include <cmath>
#include <cstdint>

#include "codegen/emitted/common.h"
#include "codegen/emitted/conv.h"
#include "codegen/emitted/int8.h"

namespace hepml_emitted {

inline constexpr int kFxTrn = 0;
inline constexpr int kFxRnd = 1;
inline constexpr int kFxRndConv = 2;
inline constexpr int kFxWrap = 0;
inline constexpr int kFxSat = 1;

#if defined(__SIZEOF_INT128__)
__extension__ typedef __int128 FxWide;
#define HEPML_EMITTED_FX_WIDE 1
#else
typedef int64_t FxWide;
#endif

// v * 2^-shift (shift >= 0 extra fractional bits) quantised to a W-bit raw
// value (1 <= W <= 32) with quantisation mode q and overflow mode o.
template <typename Acc>
inline int64_t FxQuantize(Acc v, int shift, int w, int q, int o) {
  if (shift > 0) {
    const Acc d = static_cast<Acc>(1) << shift;
    // Floor division by 2^shift and the remainder in [0, d).
    Acc fl = v / d;
    Acc rem = v - fl * d;
    if (rem < 0) {
      fl -= 1;
      rem += d;
    }
    const Acc half = d / 2;
    if (q == kFxRnd) {
      if (rem >= half) fl += 1;
    } else if (q == kFxRndConv) {
      if (rem > half || (rem == half && (fl % 2 != 0))) fl += 1;
    }
    v = fl;
  }
  const int64_t hi = (static_cast<int64_t>(1) << (w - 1)) - 1, lo = -hi - 1;
  if (o == kFxSat) {
    if (v < static_cast<Acc>(lo)) return lo;
    if (v > static_cast<Acc>(hi)) return hi;
    return static_cast<int64_t>(v);
  }
  // AP_WRAP: the low W bits as a two's-complement number.
  const uint64_t mask = (static_cast<uint64_t>(1) << w) - 1;
  const uint64_t u = static_cast<uint64_t>(v) & mask;
  return static_cast<int64_t>(u) - ((u >> (w - 1)) != 0 ? static_cast<int64_t>(mask) + 1 : 0);
}

// A float to raw ap_fixed<W, W - f>: x = m * 2^e with an integer m of at most
// 24 bits (exact), then FxQuantize of m with the right shift. NaN gives 0,
// +-inf the largest magnitude under AP_SAT and 0 under AP_WRAP.
inline int64_t FxFromFloat(float x, int f, int w, int q, int o) {
  const int64_t hi = (static_cast<int64_t>(1) << (w - 1)) - 1, lo = -hi - 1;
  if (!(x == x)) return 0;
  if (std::isinf(x)) return o == kFxSat ? (x > 0 ? hi : lo) : 0;
  if (x == 0.f) return 0;
  int e = 0;
  const float fr = std::frexp(x, &e);  // x = fr * 2^e, 0.5 <= |fr| < 1
  const int64_t m = static_cast<int64_t>(std::ldexp(fr, 24));
  const int k = e - 24 + f;  // x * 2^f = m * 2^k
  if (k >= 0) {
    // m * 2^k is an integer: no rounding. Beyond 2^62 its low W (<= 32) bits
    // are zero.
    if (k > 38) return o == kFxSat ? (m > 0 ? hi : lo) : 0;
    return FxQuantize<int64_t>(m * (static_cast<int64_t>(1) << k), 0, w, q, o);
  }
  if (-k > 60) {
    // |x * 2^f| < 2^-36: floor is 0 or -1, rounding gives 0.
    return FxQuantize<int64_t>(q == kFxTrn && m < 0 ? -1 : 0, 0, w, q, o);
  }
  return FxQuantize<int64_t>(m, -k, w, q, o);
}

inline float FxToFloat(int64_t raw, int f) { return static_cast<float>(std::ldexp(static_cast<double>(raw), -f)); }

// The activation of a fixed-point layer on its quantised result: ReLU on the
// raw value (exact), others computed in float on the value and quantised
// again to the type (hls4ml evaluates them through lookup tables).
inline int64_t FxAct(int64_t raw, int f, int w, int q, int o, Act act, float alpha, float beta) {
  if (act == Act::kNone) return raw;
  if (act == Act::kRelu) return raw > 0 ? raw : 0;
  return FxFromFloat(ApplyAct(act, FxToFloat(raw, f), alpha, beta), f, w, q, o);
}

// Dense fixed-point layer: Y[M, N] = act(quantise(sum_k x[i, k] w[j, k] + b[j]))
// with x quantised from float, w [N, K] and b [N] raw values of the type
// (F fractional bits; w stored in the narrowest of int8/int16/int32 that
// holds W bits), the sum exact in Acc with 2F fractional bits. xq holds K
// raw values.
template <typename Acc, typename TW>
inline void GemmFixed(int64_t M, int64_t N, int64_t K, const float* A, const TW* w, const int32_t* bias, int f,
                      int wbits, int q, int o, Act act, float act_alpha, float act_beta, int32_t* xq, float* Y) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t k = 0; k < K; ++k) xq[k] = static_cast<int32_t>(FxFromFloat(A[i * K + k], f, wbits, q, o));
    for (int64_t j = 0; j < N; ++j) {
      const TW* wr = w + j * K;
      Acc acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<Acc>(static_cast<int64_t>(xq[k]) * wr[k]);
      if (bias != nullptr) acc += static_cast<Acc>(bias[j]) * (static_cast<Acc>(1) << f);
      const int64_t r = FxAct(FxQuantize<Acc>(acc, f, wbits, q, o), f, wbits, q, o, act, act_alpha, act_beta);
      Y[i * N + j] = FxToFloat(r, f);
    }
  }
}

// Fixed-point convolution: x quantised from float into xq (c_in * in_size raw
// values per image), the column rows into colT (out_size * K), then one
// exact dot product per output channel and position, quantised as GemmFixed.
template <typename Acc, typename TW>
inline void ConvFixed(const ConvGeometry& g, int64_t batch, int64_t c_in, int64_t c_out, int64_t group,
                      const float* x, const TW* w, const int32_t* bias, int f, int wbits, int q, int o, Act act,
                      float act_alpha, float act_beta, int32_t* xq, int32_t* colT, float* y) {
  const int64_t in_size = ConvCount(g.in, g.spatial), out_size = ConvCount(g.out, g.spatial);
  const int64_t cin_g = c_in / group, cout_g = c_out / group;
  const int64_t K = cin_g * ConvCount(g.kernel, g.spatial);
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * c_in * in_size;
    for (int64_t i = 0; i < c_in * in_size; ++i) xq[i] = static_cast<int32_t>(FxFromFloat(xn[i], f, wbits, q, o));
    for (int64_t gi = 0; gi < group; ++gi) {
      Im2ColRows<int32_t>(g, cin_g, xq + gi * cin_g * in_size, 0, K, colT);
      for (int64_t c = 0; c < cout_g; ++c) {
        const int64_t oc = gi * cout_g + c;
        const TW* wr = w + oc * K;
        float* yc = y + (n * c_out + oc) * out_size;
        for (int64_t p = 0; p < out_size; ++p) {
          const int32_t* xr = colT + p * K;
          Acc acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += static_cast<Acc>(static_cast<int64_t>(xr[k]) * wr[k]);
          if (bias != nullptr) acc += static_cast<Acc>(bias[oc]) * (static_cast<Acc>(1) << f);
          yc[p] = FxToFloat(FxAct(FxQuantize<Acc>(acc, f, wbits, q, o), f, wbits, q, o, act, act_alpha, act_beta), f);
        }
      }
    }
  }
}

}  // namespace hepml_emitted
