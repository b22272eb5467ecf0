// The per-axis tap tables of a Resize / Upsample node, shared by the runtime
// kernel (image.cc) and the ahead-of-time compiler, so both compute the same
// interpolation.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"

namespace hepml::ops {

struct ResizePlan {
  // One axis: output index j reads index[j * taps + t] with weight[j * taps + t]
  // (already clamped into the input); outside[j]: the extrapolation value.
  struct Axis {
    int64_t in_len = 1, out_len = 1, taps = 1;
    std::vector<int64_t> index;
    std::vector<double> weight;
    std::vector<uint8_t> outside;
    bool identity = false;  // the axis is copied unchanged
  };
  bool nearest = true;
  double extrapolation = 0.0;
  std::vector<Axis> axes;
};

// For an input of shape x and the node's constant roi / scales / sizes inputs
// (null when absent; Upsample and Resize-10 read only `scales`). Errors name
// the bad attribute or input.
absl::StatusOr<ResizePlan> PlanResize(const Node& node, int opset, const Shape& x, const Tensor* roi,
                                      const Tensor* scales, const Tensor* sizes);

}  // namespace hepml::ops
