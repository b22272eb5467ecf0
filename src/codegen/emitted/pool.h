// MaxPool / AveragePool (spatial rank 1 to 3) and the global poolings of the
// emitted code. Padding never wins a max; averages divide by the count of
// real elements unless count_include_pad.
#pragma once

#include <cmath>
#include <cstdint>

#include "codegen/emitted/common.h"
#include "codegen/emitted/conv.h"

namespace hepml_emitted {

inline void Pool(const ConvGeometry& g, int64_t planes, bool max, bool count_include_pad, const float* x, float* y) {
  const ConvGeometry g3 = As3d(g);
  const int64_t *in = g3.in, *out = g3.out, *ker = g3.kernel, *str = g3.stride, *dil = g3.dilation,
                *pad = g3.pad_begin;
  const int64_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
  if (max && in[0] == 1 && out[0] == 1 && ker[1] == 2 && ker[2] == 2 && str[1] == 2 && str[2] == 2 &&
      dil[1] == 1 && dil[2] == 1 && pad[1] == 0 && pad[2] == 0 && 2 * out[1] <= in[1] && 2 * out[2] <= in[2]) {
    // MaxPool 2x2 / 2 without padding (the image CNNs' pooling): every
    // window lies inside the input. Same comparisons in the same order as
    // the general loop below.
    const int64_t w = in[2], ow = out[2];
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t o1 = 0; o1 < out[1]; ++o1) {
        const float* r0 = x + p * in_size + 2 * o1 * w;
        const float* r1 = r0 + w;
        float* yr = y + p * out_size + o1 * ow;
        for (int64_t o2 = 0; o2 < ow; ++o2) {
          float acc = -INFINITY;
          acc = r0[2 * o2] > acc ? r0[2 * o2] : acc;
          acc = r0[2 * o2 + 1] > acc ? r0[2 * o2 + 1] : acc;
          acc = r1[2 * o2] > acc ? r1[2 * o2] : acc;
          acc = r1[2 * o2 + 1] > acc ? r1[2 * o2 + 1] : acc;
          yr[o2] = acc;
        }
      }
    return;
  }
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * in_size;
    float* yp = y + p * out_size;
    for (int64_t o0 = 0; o0 < out[0]; ++o0)
      for (int64_t o1 = 0; o1 < out[1]; ++o1)
        for (int64_t o2 = 0; o2 < out[2]; ++o2) {
          float acc = max ? -INFINITY : 0.f;
          int64_t count = 0;
          for (int64_t k0 = 0; k0 < ker[0]; ++k0) {
            const int64_t i0 = o0 * str[0] - pad[0] + k0 * dil[0];
            if (i0 < 0 || i0 >= in[0]) continue;
            for (int64_t k1 = 0; k1 < ker[1]; ++k1) {
              const int64_t i1 = o1 * str[1] - pad[1] + k1 * dil[1];
              if (i1 < 0 || i1 >= in[1]) continue;
              for (int64_t k2 = 0; k2 < ker[2]; ++k2) {
                const int64_t i2 = o2 * str[2] - pad[2] + k2 * dil[2];
                if (i2 < 0 || i2 >= in[2]) continue;
                const float v = xp[(i0 * in[1] + i1) * in[2] + i2];
                if (max) acc = v > acc ? v : acc;
                else acc += v;
                ++count;
              }
            }
          }
          if (!max) acc /= static_cast<float>(count_include_pad ? ker[0] * ker[1] * ker[2] : (count ? count : 1));
          yp[(o0 * out[1] + o1) * out[2] + o2] = acc;
        }
  }
}

// y[p] = max or mean of x[p * n .. p * n + n).
inline void GlobalPool(int64_t planes, int64_t n, bool max, const float* x, float* y) {
  for (int64_t p = 0; p < planes; ++p) {
    float acc = max ? -INFINITY : 0.f;
    for (int64_t i = 0; i < n; ++i) acc = max ? (x[p * n + i] > acc ? x[p * n + i] : acc) : acc + x[p * n + i];
    y[p] = max ? acc : acc / static_cast<float>(n);
  }
}

}  // namespace hepml_emitted
