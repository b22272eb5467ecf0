// Winograd F(2x2, 3x3) for the 3x3, stride-1, "same" (pads 1) fp32
// convolutions of image CNNs with a few dozen channels (calo_cnn's 16 -> 32
// and 32 -> 64 layers): each 2 x 2 block of output pixels comes from its
// 4 x 4 input patch with 16 products per (input, output) channel pair
// instead of 36, i.e. 2.25x fewer multiply-adds than the direct kernel.
//
//   V = B^T d B   (input patch d, 4 x 4, per input channel)
//   U = G g G^T   (3 x 3 filter g, 4 x 4, per channel pair; at prepare time)
//   M[xi] = U[xi] V[xi]   for each of the 16 positions xi of a 4 x 4 tile:
//                         16 matrix products (out_ch x in_ch) x (in_ch x tiles)
//   Y = A^T M A   (2 x 2 output block)
//
// The products run on the direct kernel's register tiles (direct_conv.h: a
// GEMM whose right operand's rows are read at given offsets) over the tiles
// of a few images side by side. The input transform reads the padded input
// split by the parity of its rows and columns, so that each of a tile's 16
// inputs is a straight vector load; it computes one wrap-around tile column
// per tile row and compresses it out as it stores, so the products compute
// no padding positions.
//
// The output step adds the bias, applies Relu (or nothing) and either
// writes the 2 x 2 blocks or, for a following MaxPool 2x2/2 (whose windows
// are exactly those blocks), only the maximum of each: the pooled output of
// a "FusedConv" with pool = "MaxPool2x2" (see fuse_conv_maxpool.cc).
//
// Rounding differs from the direct sum (the transforms add and subtract
// inputs before the products): errors of a few ulps of the inputs' scale,
// as in every Winograd convolution.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/direct_conv.h"

namespace hepml::ops {

// The 16 transformed filters of one convolution (out_ch x in_ch each), in
// the direct kernel's packed blocks. Immutable after packing.
class WinogradWeights {
 public:
  WinogradWeights() = default;
  // w: [m][c][3][3] row-major.
  static WinogradWeights Pack(int64_t m, int64_t c, const float* w);
  int64_t m() const { return m_; }
  int64_t c() const { return c_; }
  const DirectConvWeights& at(int xi) const { return u_[xi]; }

 private:
  int64_t m_ = 0, c_ = 0;
  std::vector<DirectConvWeights> u_;  // 16
};

struct WinogradOutput {
  const float* bias = nullptr;  // [m] or null
  bool relu = false;            // max(x + bias, 0) (as ReluF32) before any pooling
  bool pool = false;            // write MaxPool2x2 of the result: [m][h/2][w/2]
};

// Floats of scratch WinogradConv3x3F32 needs for `images` images of h x w.
int64_t WinogradScratchFloats(const WinogradWeights& w, int64_t images, int64_t h, int64_t w_in);

// Images a task should take at once so that its transformed tiles stay in
// the core's L2 (at least 1).
int64_t WinogradImagesPerTask(const WinogradWeights& w, int64_t h, int64_t w_in);

// y = conv(x) of `images` NCHW images (c x h x w each, contiguous) with
// pads 1 on every side: y is [images][m][h][w], or with out.pool
// [images][m][h/2][w/2]. scratch: WinogradScratchFloats floats. `ctx`, when
// non-null, spreads the products over its threads; null inside a ParallelFor.
void WinogradConv3x3F32(const WinogradWeights& w, const float* x, int64_t images, int64_t h,
                        int64_t w_in, const WinogradOutput& out, float* y, float* scratch,
                        const KernelContext* ctx);

}  // namespace hepml::ops
