// Loss functions of the emitted code: NegativeLogLikelihoodLoss (and, with a
// LogSoftmax before it, SoftmaxCrossEntropyLoss).
#pragma once

#include <cstdint>

#include "codegen/emitted/common.h"

namespace hepml_emitted {

// x: [N, C, D] log-probabilities (D the product of the extra dims), target:
// [N, D] class indices, weight: [C] or null. reduction 0 none (y: [N, D]),
// 1 sum, 2 mean (weighted by weight[target]). Targets equal to ignore_index
// (when has_ignore) contribute 0. False when a target is out of range.
template <typename T, typename I>
inline bool NllLoss(int64_t N, int64_t C, int64_t D, const T* x, const I* target, const T* weight, bool has_ignore,
                    int64_t ignore_index, int reduction, T* y) {
  double sum = 0, wsum = 0;
  for (int64_t b = 0; b < N; ++b) {
    for (int64_t d = 0; d < D; ++d) {
      const int64_t t = static_cast<int64_t>(target[b * D + d]);
      double loss = 0, w = 0;
      if (!(has_ignore && t == ignore_index)) {
        if (t < 0 || t >= C) return false;
        w = weight ? static_cast<double>(weight[t]) : 1.0;
        loss = -static_cast<double>(x[(b * C + t) * D + d]) * w;
      }
      if (reduction == 0) y[b * D + d] = static_cast<T>(loss);
      sum += loss;
      wsum += w;
    }
  }
  if (reduction == 1) y[0] = static_cast<T>(sum);
  if (reduction == 2) y[0] = static_cast<T>(sum / wsum);
  return true;
}

}  // namespace hepml_emitted
