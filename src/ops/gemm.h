// The fp32 GEMM engine behind GemmRowMajor<float> (linalg.h): Highway kernels
// chosen at run time for the CPU (AVX-512, AVX2, SSE4, scalar), operand
// packing, cache blocking, and prepacked constant operands.
//
// Layouts. A packed right-hand operand op(B) (k x n) is a sequence of column
// panels of `nr` columns; panel j starts at j*k*nr floats and holds rows
// 0..k-1 of columns [j*nr, j*nr + nr), row after row, zero-padded past n,
// except that a last panel of at most nr/2 columns is only nr/2 wide (one
// vector: a 5-class output layer wastes fewer lanes). A packed left-hand
// operand op(A) (m x k) is a sequence of row panels of `mr` rows; panel i
// holds, for p = 0..k-1, the column p of its rows (mr' floats, mr' = the rows
// the panel actually has: the last one may be narrower, it is not padded).
// mr and nr belong to the kernel the CPU runs; a packed operand records them
// and is only valid in the process that packed it.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/kernel_context.h"

namespace hepml::ops {

// Register-tile shape of the fp32 kernel selected for this CPU.
struct GemmKernelShape {
  int mr = 0;  // rows of a tile (and of a packed A panel)
  int nr = 0;  // columns of a tile (and of a packed B panel)
  const char* target = "";  // Highway target name, e.g. "AVX3", "AVX2"
  // A divisor of mr: a tile of any multiple of this many rows sums each row
  // over k in the same order as a full tile (tiles of fewer rows split the
  // sums into two or four chains). So rows [r, r + m) of a product of M
  // rows, computed as a product of their own, get bitwise the values of the
  // whole when r, m and M are multiples of it and m and M exceed 2 * mr
  // (the drivers for fewer rows differ).
  int exact_rows = 0;
};
GemmKernelShape GemmF32KernelShape();

// A float buffer aligned for the widest vector loads (64 bytes).
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(int64_t n);
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  int64_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  int64_t size_ = 0;
};

// op(B) packed once (e.g. constant weights at Session creation) and reused by
// every GEMM that multiplies by it. Immutable after packing: safe to share
// between threads.
class PackedB {
 public:
  PackedB() = default;
  // op(B) is k x n: B is k x n (row stride ldb), or, with trans_b, n x k.
  static PackedB Pack(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb);
  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  int nr() const { return nr_; }
  // Panel j starts at data() + j * k() * nr().
  const float* data() const { return data_.data(); }

 private:
  int64_t k_ = 0, n_ = 0;
  int nr_ = 0;
  AlignedFloats data_;
};

// op(A) packed once (constant convolution weights). Same contract as PackedB.
class PackedA {
 public:
  PackedA() = default;
  // op(A) is m x k: A is m x k (row stride lda), or, with trans_a, k x m.
  static PackedA Pack(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  int mr() const { return mr_; }
  // Panel i (rows [i*mr, ...)) starts at data() + i * mr() * k().
  const float* data() const { return data_.data(); }

 private:
  int64_t m_ = 0, k_ = 0;
  int mr_ = 0;
  AlignedFloats data_;
};

// C = alpha * op(A) * op(B) + beta * C for fp32, C row-major m x n (ldc).
// op(A) comes from `packed_a` when non-null, else from a/lda/trans_a (as in
// GemmRowMajor); op(B) likewise from `packed_b` or b/ldb/trans_b. A packed
// operand must have the product's dimensions (REQUIRES). beta == 0 never
// reads C. With `row_bias` (n floats), the bias row stands for every row of
// the old C and C is only written: C = alpha * op(A) * op(B) + beta * bias
// (a Linear layer's bias, without filling C first). `ctx`, when non-null,
// spreads the work over ctx->ParallelFor; pass null from inside a
// ParallelFor body. Allocates nothing per call once each thread's scratch
// has grown to the sizes it needs.
void GemmF32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const PackedA* packed_a, const float* b, int64_t ldb,
             const PackedB* packed_b, float beta, float* c, int64_t ldc,
             const KernelContext* ctx, const float* row_bias = nullptr);

// C = op(A) * B + beta * C where row p of B (k x n) is the n contiguous
// floats at b_rows[p]: B need not exist as a matrix. A convolution passes
// shifted views of its (padded) input as the rows, an implicit im2col; the
// engine reads each row once while packing. op(A) is A (m x k, row stride
// lda) or `packed_a`. Otherwise as GemmF32.
void GemmF32Rows(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const PackedA* packed_a, const float* const* b_rows, float beta, float* c,
                 int64_t ldc, const KernelContext* ctx);

// y[i] = x[i] > 0 ? x[i] : 0 for i < n (NaN and -0 give +0), vectorised for
// the CPU: the activation that follows most GEMMs. x == y is allowed.
void ReluF32(const float* x, float* y, int64_t n);

// y[i] = x[i] + bias, then (with `relu`) y[i] = max(y[i], 0) as ReluF32, in
// one vectorised pass: a convolution channel's epilogue. x == y is allowed.
void BiasReluF32(const float* x, float* y, float bias, bool relu, int64_t n);
// The same over `rows` rows of n floats, read x_stride apart from x and
// written y_stride apart into y.
void BiasReluRowsF32(const float* x, int64_t x_stride, float* y, int64_t y_stride, int64_t rows,
                     int64_t n, float bias, bool relu);

}  // namespace hepml::ops
