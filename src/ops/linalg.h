// Dense matrix kernels shared by the linalg, conv and normalization families.
//
// GemmRowMajor is the one GEMM routine of these families (MatMul, Gemm, Conv
// through im2col, ConvTranspose, DeformConv, the recurrent layers). For fp32
// it runs the packed, vectorised engine of gemm.h (which also takes
// prepacked constant operands); the other types run a portable loop.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "hepml/tensor.h"
#include "ops/epilogue.h"
#include "ops/kernel_context.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {

// C = alpha * op(A) * op(B) + beta * C, all row-major.
//   op(A) is m x k: A is m x k with row stride lda, or (trans_a) k x m.
//   op(B) is k x n: B is k x n with row stride ldb, or (trans_b) n x k.
//   C is m x n with row stride ldc.
// beta == 0 overwrites C without reading it (garbage or NaN in C is ignored).
// Integer types wrap around modulo 2^bits (no undefined overflow).
// `ctx`, when non-null, spreads the work over ctx->ParallelFor; pass null
// from code that already runs inside a ParallelFor body.
// Instantiated for float, double, int32_t, int64_t, uint32_t and uint64_t.
template <typename T>
void GemmRowMajor(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                  const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc,
                  const KernelContext* ctx);

// Gemm's kernel (inputs A, B, optional C; attributes transA, transB, alpha,
// beta): checks the inputs, allocates output 0 and computes it; returns the
// output so that callers (the fused operators) can post-process it in place.
// `flatten_a`: A may have rank > 2 when transA = 0; its leading dims are
// then flattened into M and kept in the output ([..., M, K] x [K, N] ->
// [..., M, N]), as MatMul with a 2-D B.
absl::StatusOr<Tensor*> RunGemm(KernelContext& ctx, bool flatten_a);

// Gemm's prepare step: reads the attributes (and FusedGemm's activation)
// once and packs a constant fp32 B for RunGemm. Shared with the fused
// operators that run through RunGemm.
absl::StatusOr<std::unique_ptr<KernelState>> PrepareGemmWeights(const PrepareContext& ctx);

// The activation of a node run through RunGemm (FusedGemm's `activation`
// attributes, parsed at prepare time when there was one).
absl::StatusOr<ActivationSpec> GemmActivation(const KernelContext& ctx);

// A read-only view of a tensor's data as C = ComputeT<T>: the data itself when
// T == C, else a converted copy held by the view.
template <typename T>
class ComputeView {
 public:
  using C = ComputeT<T>;
  explicit ComputeView(const Tensor& t) {
    if constexpr (std::is_same_v<T, C>) {
      data_ = t.data<T>();
    } else {
      copy_.resize(static_cast<size_t>(t.size()));
      const T* p = t.data<T>();
      for (int64_t i = 0; i < t.size(); ++i) copy_[i] = static_cast<C>(p[i]);
      data_ = copy_.data();
    }
  }
  const C* data() const { return data_; }

 private:
  const C* data_ = nullptr;
  std::vector<C> copy_;
};

// Output storage of T written as C = ComputeT<T>: writes go straight to the
// tensor when T == C, else to a scratch buffer that Finish() converts back.
template <typename T>
class ComputeOutput {
 public:
  using C = ComputeT<T>;
  explicit ComputeOutput(Tensor* t) : out_(t) {
    if constexpr (std::is_same_v<T, C>) {
      data_ = t->mutable_data<T>();
    } else {
      scratch_.resize(static_cast<size_t>(t->size()));
      data_ = scratch_.data();
    }
  }
  C* data() { return data_; }
  void Finish() {
    if constexpr (!std::is_same_v<T, C>) {
      T* p = out_->mutable_data<T>();
      for (int64_t i = 0; i < out_->size(); ++i) p[i] = static_cast<T>(scratch_[i]);
    }
  }

 private:
  Tensor* out_;
  C* data_ = nullptr;
  std::vector<C> scratch_;
};

}  // namespace hepml::ops
