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

// One LSTM step of a row from its gate pre-activations g [4H] (i, o, f, c):
// the three sigmoids and the two tanh in one pass over the hidden units,
// updating c [H] and writing h [H]. Without peepholes the loop is plain
// arithmetic (vecmath.h) and vectorises; with them (peep [3H]: i, o, f) the
// input and forget gates see the old c, the output gate the new one.
inline void LstmCell(int64_t H, const float* g, const float* peep, float* c, float* h) {
  if (peep == nullptr) {
    for (int64_t j = 0; j < H; ++j) {
      const float ig = SigmoidF(g[j]), og = SigmoidF(g[H + j]), fg = SigmoidF(g[2 * H + j]);
      const float cc = fg * c[j] + ig * TanhF(g[3 * H + j]);
      c[j] = cc;
      h[j] = og * TanhF(cc);
    }
    return;
  }
  for (int64_t j = 0; j < H; ++j) {
    const float ig = SigmoidF(g[j] + peep[j] * c[j]), fg = SigmoidF(g[2 * H + j] + peep[2 * H + j] * c[j]);
    const float cc = fg * c[j] + ig * TanhF(g[3 * H + j]);
    c[j] = cc;
    h[j] = SigmoidF(g[H + j] + peep[H + j] * cc) * TanhF(cc);
  }
}

// Sequence lengths (ONNX sequence_lens, int32 [B]): row b runs its first
// lens[b] steps (a reverse direction from step lens[b] - 1 down), its state
// stays put afterwards and Y is 0 at steps >= lens[b]. Null: every row runs T.
inline int64_t SeqLen(const int32_t* lens, int64_t b, int64_t T) {
  if (lens == nullptr) return T;
  const int64_t l = lens[b];
  return l < 0 ? 0 : (l > T ? T : l);
}

// The step of row b at iteration s (< SeqLen), and the zeros of Y past each
// row's length.
inline int64_t SeqStep(bool reverse, int64_t len, int64_t s) { return reverse ? len - 1 - s : s; }

inline void ZeroPastLengths(int64_t T, int64_t B, int64_t H, const int32_t* lens, float* y, int64_t y_step) {
  if (y == nullptr || lens == nullptr) return;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = SeqLen(lens, b, T); t < T; ++t) std::memset(y + t * y_step + b * H, 0, static_cast<size_t>(H) * sizeof(float));
}

// x [T, B, I]; bias [4H] (W and R biases summed) or null; h0, c0 [B, H] or
// null; peep [3H] (i, o, f) or null; lens as above (then xs holds B * I
// floats: the rows of each step gathered). Writes h of step t to
// y + t * y_step (y may be null) and the last h / c to yh / yc (may be null).
// Scratch: gates [B, 4H], h and c [B, H].
inline void Lstm(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* wt, const float* rt,
                 const float* bias, const float* h0, const float* c0, const float* peep, bool reverse, float* y,
                 int64_t y_step, float* yh, float* yc, float* gates, float* h, float* c,
                 const int32_t* lens = nullptr, float* xs = nullptr) {
  const int64_t G = 4 * H;
  for (int64_t i = 0; i < B * H; ++i) {
    h[i] = h0 ? h0[i] : 0.f;
    c[i] = c0 ? c0[i] : 0.f;
  }
  ZeroPastLengths(T, B, H, lens, y, y_step);
  for (int64_t s = 0; s < T; ++s) {
    const float* xt = x + SeqStep(reverse, T, s) * B * I;
    if (lens != nullptr) {
      for (int64_t b = 0; b < B; ++b) {
        const int64_t len = SeqLen(lens, b, T);
        if (s < len) std::memcpy(xs + b * I, x + (SeqStep(reverse, len, s) * B + b) * I, static_cast<size_t>(I) * sizeof(float));
        else std::memset(xs + b * I, 0, static_cast<size_t>(I) * sizeof(float));
      }
      xt = xs;
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < G; ++g) gates[b * G + g] = bias ? bias[g] : 0.f;
    GemmNN(B, G, I, xt, I, wt, G, gates, G, true);
    GemmNN(B, G, H, h, H, rt, G, gates, G, true);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = SeqLen(lens, b, T);
      if (s >= len) continue;
      LstmCell(H, gates + b * G, peep, c + b * H, h + b * H);
      if (y) std::memcpy(y + SeqStep(reverse, len, s) * y_step + b * H, h + b * H, static_cast<size_t>(H) * sizeof(float));
    }
  }
  if (yh) std::memcpy(yh, h, static_cast<size_t>(B * H) * sizeof(float));
  if (yc) std::memcpy(yc, c, static_cast<size_t>(B * H) * sizeof(float));
}

// RNN and GRU of one direction over weights in ONNX's own layout (W [G, I],
// R [G, H], biases [G] or null; G = H for RNN, 3H for GRU with gates z, r, h).
// y (may be null) advances y_step per time step; h and tmp hold B * H floats;
// lens as for Lstm.
inline float RnnAct(int act, float v) {
  return act == 1 ? (v > 0.f ? v : 0.f) : act == 2 ? SigmoidF(v) : TanhF(v);
}

inline void Rnn(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* w, const float* r,
                const float* wb, const float* rb, const float* h0, bool reverse, int act, float* y, int64_t y_step,
                float* yh, float* h, float* tmp, const int32_t* lens = nullptr) {
  for (int64_t i = 0; i < B * H; ++i) h[i] = h0 ? h0[i] : 0.f;
  ZeroPastLengths(T, B, H, lens, y, y_step);
  for (int64_t s = 0; s < T; ++s) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = SeqLen(lens, b, T);
      if (s >= len) continue;
      const int64_t t = SeqStep(reverse, len, s);
      for (int64_t j = 0; j < H; ++j) {
        float acc = (wb ? wb[j] : 0.f) + (rb ? rb[j] : 0.f);
        for (int64_t k = 0; k < I; ++k) acc += x[(t * B + b) * I + k] * w[j * I + k];
        for (int64_t k = 0; k < H; ++k) acc += h[b * H + k] * r[j * H + k];
        tmp[b * H + j] = RnnAct(act, acc);
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = SeqLen(lens, b, T);
      if (s >= len) continue;
      const int64_t t = SeqStep(reverse, len, s);
      for (int64_t j = 0; j < H; ++j) {
        h[b * H + j] = tmp[b * H + j];
        if (y) y[t * y_step + b * H + j] = h[b * H + j];
      }
    }
  }
  if (yh)
    for (int64_t i = 0; i < B * H; ++i) yh[i] = h[i];
}

inline void Gru(int64_t T, int64_t B, int64_t I, int64_t H, const float* x, const float* w, const float* r,
                const float* wb, const float* rb, const float* h0, bool reverse, bool linear_before_reset, float* y,
                int64_t y_step, float* yh, float* h, float* tmp, const int32_t* lens = nullptr) {
  auto sig = [](float v) { return SigmoidF(v); };
  for (int64_t i = 0; i < B * H; ++i) h[i] = h0 ? h0[i] : 0.f;
  ZeroPastLengths(T, B, H, lens, y, y_step);
  for (int64_t s = 0; s < T; ++s) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = SeqLen(lens, b, T);
      if (s >= len) continue;
      const int64_t t = SeqStep(reverse, len, s);
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
          cand = TanhF(gx[2] + rg * gh[2]);
        } else {
          // (r (.) h_prev) R_h^T needs r of every hidden unit k.
          float acc = gh[2];
          for (int64_t k = 0; k < H; ++k) {
            float ar = (wb ? wb[H + k] : 0.f) + (rb ? rb[H + k] : 0.f);
            for (int64_t m = 0; m < I; ++m) ar += xt[m] * w[(H + k) * I + m];
            for (int64_t m = 0; m < H; ++m) ar += hp[m] * r[(H + k) * H + m];
            acc += sig(ar) * hp[k] * r[(2 * H + j) * H + k];
          }
          cand = TanhF(gx[2] + acc);
        }
        tmp[b * H + j] = (1.f - z) * cand + z * hp[j];
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = SeqLen(lens, b, T);
      if (s >= len) continue;
      const int64_t t = SeqStep(reverse, len, s);
      for (int64_t j = 0; j < H; ++j) {
        h[b * H + j] = tmp[b * H + j];
        if (y) y[t * y_step + b * H + j] = h[b * H + j];
      }
    }
  }
  if (yh)
    for (int64_t i = 0; i < B * H; ++i) yh[i] = h[i];
}

}  // namespace hepml_emitted
