// LSTM of the emitted code (ONNX gate order i, o, f, c; sigmoid / tanh /
// tanh; optional peepholes), one direction per call. The weights come
// transposed by the compiler, W^T [I, 4H] and R^T [H, 4H], so each step is two
// GEMMs into the gate buffer.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"
#include "codegen/emitted/gemm.h"

namespace hepml_emitted {

inline float LstmSigmoid(float v) { return 1.f / (1.f + std::exp(-v)); }

// x [T, B, I]; bias [4H] (W and R biases summed) or null; h0, c0 [B, H] or
// null; peep [3H] (i, o, f) or null. Writes h of step t to y + t * y_step
// (y may be null) and the last h / c to yh / yc (may be null). Scratch:
// gates [B, 4H], h and c [B, H].
inline void Lstm(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* wt, const float* rt,
                 const float* bias, const float* h0, const float* c0, const float* peep, bool reverse, float* y,
                 int64_t y_step, float* yh, float* yc, float* gates, float* h, float* c) {
  const int64_t G = 4 * H;
  for (int64_t i = 0; i < B * H; ++i) {
    h[i] = h0 ? h0[i] : 0.f;
    c[i] = c0 ? c0[i] : 0.f;
  }
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < G; ++g) gates[b * G + g] = bias ? bias[g] : 0.f;
    GemmNN(B, G, I, x + t * B * I, I, wt, G, gates, G, true);
    GemmNN(B, G, H, h, H, rt, G, gates, G, true);
    for (int64_t b = 0; b < B; ++b) {
      const float* gb = gates + b * G;
      for (int64_t j = 0; j < H; ++j) {
        float& cc = c[b * H + j];
        float ig = gb[j], og = gb[H + j], fg = gb[2 * H + j];
        const float cg = std::tanh(gb[3 * H + j]);
        if (peep) {
          ig += peep[j] * cc;
          fg += peep[2 * H + j] * cc;
        }
        ig = LstmSigmoid(ig);
        fg = LstmSigmoid(fg);
        cc = fg * cc + ig * cg;
        if (peep) og += peep[H + j] * cc;
        og = LstmSigmoid(og);
        h[b * H + j] = og * std::tanh(cc);
      }
    }
    if (y) std::memcpy(y + t * y_step, h, static_cast<size_t>(B * H) * sizeof(float));
  }
  if (yh) std::memcpy(yh, h, static_cast<size_t>(B * H) * sizeof(float));
  if (yc) std::memcpy(yc, c, static_cast<size_t>(B * H) * sizeof(float));
}

// RNN and GRU of one direction over weights in ONNX's own layout (W [G, I],
// R [G, H], biases [G] or null; G = H for RNN, 3H for GRU with gates z, r, h).
// y (may be null) advances y_step per time step; h and tmp hold B * H floats.
inline float RnnAct(int act, float v) {
  return act == 1 ? (v > 0.f ? v : 0.f) : act == 2 ? 1.f / (1.f + std::exp(-v)) : std::tanh(v);
}

inline void Rnn(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* w, const float* r,
                const float* wb, const float* rb, const float* h0, bool reverse, int act, float* y, int64_t y_step,
                float* yh, float* h, float* tmp) {
  for (int64_t i = 0; i < B * H; ++i) h[i] = h0 ? h0[i] : 0.f;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        float acc = (wb ? wb[j] : 0.f) + (rb ? rb[j] : 0.f);
        for (int64_t k = 0; k < I; ++k) acc += x[(t * B + b) * I + k] * w[j * I + k];
        for (int64_t k = 0; k < H; ++k) acc += h[b * H + k] * r[j * H + k];
        tmp[b * H + j] = RnnAct(act, acc);
      }
    for (int64_t i = 0; i < B * H; ++i) {
      h[i] = tmp[i];
      if (y) y[t * y_step + i] = h[i];
    }
  }
  if (yh)
    for (int64_t i = 0; i < B * H; ++i) yh[i] = h[i];
}

inline void Gru(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* w, const float* r,
                const float* wb, const float* rb, const float* h0, bool reverse, bool linear_before_reset, float* y,
                int64_t y_step, float* yh, float* h, float* tmp) {
  auto sig = [](float v) { return 1.f / (1.f + std::exp(-v)); };
  for (int64_t i = 0; i < B * H; ++i) h[i] = h0 ? h0[i] : 0.f;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    for (int64_t b = 0; b < B; ++b) {
      const float* xt = x + (t * B + b) * I;
      const float* hp = h + b * H;
      for (int64_t j = 0; j < H; ++j) {
        float gx[3], gh[3];
        for (int q = 0; q < 3; ++q) {
          const int64_t row = q * H + j;
          float ax = wb ? wb[row] : 0.f, ah = rb ? rb[row] : 0.f;
          for (int64_t k = 0; k < I; ++k) ax += xt[k] * w[row * I + k];
          if (q < 2 || linear_before_reset)
            for (int64_t k = 0; k < H; ++k) ah += hp[k] * r[row * H + k];
          gx[q] = ax;
          gh[q] = ah;
        }
        const float z = sig(gx[0] + gh[0]);
        float cand;
        if (linear_before_reset) {
          const float rg = sig(gx[1] + gh[1]);
          cand = std::tanh(gx[2] + rg * gh[2]);
        } else {
          // (r (.) h_prev) R_h^T needs r of every hidden unit k.
          float acc = gh[2];
          for (int64_t k = 0; k < H; ++k) {
            float ar = (wb ? wb[H + k] : 0.f) + (rb ? rb[H + k] : 0.f);
            for (int64_t m = 0; m < I; ++m) ar += xt[m] * w[(H + k) * I + m];
            for (int64_t m = 0; m < H; ++m) ar += hp[m] * r[(H + k) * H + m];
            acc += sig(ar) * hp[k] * r[(2 * H + j) * H + k];
          }
          cand = std::tanh(gx[2] + acc);
        }
        tmp[b * H + j] = (1.f - z) * cand + z * hp[j];
      }
    }
    for (int64_t i = 0; i < B * H; ++i) {
      h[i] = tmp[i];
      if (y) y[t * y_step + i] = h[i];
    }
  }
  if (yh)
    for (int64_t i = 0; i < B * H; ++i) yh[i] = h[i];
}

}  // namespace hepml_emitted
