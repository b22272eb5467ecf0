// Sliding-window geometry shared by the conv and pool families: strides,
// dilations, explicit pads or auto_pad, ceil_mode, and the output size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "hepml/tensor.h"
#include "ops/epilogue.h"
#include "ops/op_registry.h"

namespace hepml::ops {

// The windows of a convolution or pooling over nd spatial dims.
struct WindowGeometry {
  int nd = 0;
  Shape in;          // input spatial dims
  Shape kernel;      // window size per dim (before dilation)
  Shape strides;     // >= 1
  Shape dilations;   // >= 1
  Shape pads_begin;  // >= 0 unless computed for ConvTranspose
  Shape pads_end;
  Shape out;         // output spatial dims

  int64_t KernelSize() const { return NumElements(kernel); }
  int64_t OutSize() const { return NumElements(out); }
  int64_t InSize() const { return NumElements(in); }
  // The extent of the dilated window along dim d.
  int64_t Extent(int d) const { return (kernel[d] - 1) * dilations[d] + 1; }
};

struct WindowOptions {
  bool ceil_mode = false;       // pooling: round the output size up
  bool allow_dilations = true;  // false: a 'dilations' attribute is an error
};

// Reads strides, dilations, pads and auto_pad from `node` and computes the
// pads and the output dims of windows of `kernel` over `in`
// (Conv/pooling semantics). An error names the bad attribute.
absl::StatusOr<WindowGeometry> ComputeWindowGeometry(const Node& node,
                                                     absl::Span<const int64_t> in,
                                                     absl::Span<const int64_t> kernel,
                                                     const WindowOptions& options = {});

// ConvTranspose's output dims and pads (they may be negative when an
// explicit output_shape asks for more than the windows cover).
absl::StatusOr<WindowGeometry> ConvTransposeGeometry(const Node& node, const Shape& in, const Shape& kernel);

class KernelContext;
struct InferContext;

// Conv's kernel (inputs X, W, optional B; Conv's attributes): checks the
// inputs, allocates output 0 and computes it, then applies `act` (FusedConv's
// activation; fp32 adds the bias and activates each channel right after its
// GEMM, while it is in cache). With `pool` (FusedConv's pool =
// "MaxPool2x2", 2-D only) output 0 is MaxPool 2x2/2 (floor, no pads) of that
// result instead. Returns the output.
absl::StatusOr<Tensor*> RunConv(KernelContext& ctx, const ActivationSpec& act = {}, bool pool = false);

// Conv's prepare step: packs constant fp32 weights per group for RunConv.
absl::StatusOr<std::unique_ptr<KernelState>> PrepareConv(const PrepareContext& ctx);
// Conv's shape/type function (OpDef::infer).
absl::Status InferConvOutput(const InferContext& ctx, std::vector<TypeInfo>& outputs);

}  // namespace hepml::ops
