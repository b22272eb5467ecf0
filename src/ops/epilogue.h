// Activations applied to a kernel's output in place: the `activation`
// attribute of hepml's fused operators (fused.cc), run by Gemm and Conv as
// their epilogue so that the output is not read a second time from memory.
// Arithmetic equals the standalone operators' (activations.cc), so a fused
// node computes what the unfused pair computed.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "hepml/tensor.h"
#include "ops/kernel_context.h"

namespace hepml::ops {

enum class Activation { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kGelu, kSoftplus };

struct ActivationSpec {
  Activation kind = Activation::kNone;
  float alpha = 0;  // LeakyRelu's slope; Clip's lower bound
  float beta = 0;   // Clip's upper bound
};

// Reads `activation` ("", "None", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
// "Clip", "Gelu", "Softplus") and its activation_alpha/activation_beta; an unknown name
// is an error naming the node.
absl::StatusOr<ActivationSpec> ParseActivation(const Node& node);

// y = act(y) over a whole float tensor (any float dtype), spread over the
// intra-op threads of ctx.
absl::Status ApplyActivation(KernelContext& ctx, const ActivationSpec& spec, Tensor* y);

// y[i] = act(y[i] + bias) for i < n on the calling thread (fp32): one
// channel's plane of a convolution right after its GEMM, while it is in
// cache. bias 0 adds nothing.
void BiasActivateF32(const ActivationSpec& spec, float bias, float* y, int64_t n);

}  // namespace hepml::ops
