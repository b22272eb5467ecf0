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

}  // namespace hepml_emitted
