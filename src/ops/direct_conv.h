// A direct fp32 convolution kernel for small stride-1 2-D convolutions (3x3
// and similar over a few dozen channels, as in calorimeter-image CNNs), where
// the GEMM engine's operand packing and its tile shapes cost more than the
// products: no im2col and no packing of the input.
//
// The input planes of a group are laid out zero-padded, Hp x Wp each (see
// ShiftedViewConv in conv.cc). Output pixel (oh, ow) then sits at flat
// position p = oh * Wp + ow, and the window tap (c, kh, kw) of every pixel
// reads the padded buffer at p + offset(c, kh, kw): each tap is the buffer
// itself, shifted. The kernel keeps a tile of MR output channels by a strip
// of positions (a few vectors) in registers and, for every tap, loads the
// strip's shifted inputs once and multiplies them by each channel's weight
// (a broadcast): MR x strip fused multiply-adds per tap, read straight from
// the buffer. Positions Wp - OW at each row end are windows that wrap into
// the next row; they are computed and dropped by the caller's epilogue.
#pragma once

#include <cstdint>

#include "ops/gemm.h"

namespace hepml::ops {

// Register tile of the direct kernel for this CPU.
struct DirectConvShape {
  int mr = 0;     // output channels of a tile (and of a packed weight block)
  int lanes = 0;  // floats per vector
  int strip = 0;  // positions of a tile (a few vectors): np a multiple of it wastes none
};
DirectConvShape DirectConvKernelShape();

// Floats the kernel may read past the last tap's last position (one
// vector's worth for the widest target): padded buffers need this slack.
inline constexpr int64_t kDirectConvSlack = 64;

// Convolution weights of one group (m output channels by k taps, row-major
// as W[m][c][kh][kw]) in blocks of mr output channels: block b holds, for
// each tap t, the weights of channels [b*mr, b*mr + mr) (zero past m).
// Immutable after packing; valid only in the process that packed it.
class DirectConvWeights {
 public:
  DirectConvWeights() = default;
  static DirectConvWeights Pack(int64_t m, int64_t k, const float* w, int64_t ldw);
  int64_t m() const { return m_; }
  int64_t k() const { return k_; }
  int mr() const { return mr_; }
  const float* data() const { return data_.data(); }

 private:
  int64_t m_ = 0, k_ = 0;
  int mr_ = 0;
  AlignedFloats data_;
};

// C[r][p] = sum_t W[r][t] * src[tap_offsets[t] + p] for r < w.m() and
// p < RoundUp(np, lanes): the whole last vector of positions is computed.
// C has ldc floats per row (ldc >= RoundUp(np, lanes)) and RoundUp(m, mr)
// rows (the rows past m receive zeros). REQUIRES: src is readable up to
// max(tap_offsets) + np + kDirectConvSlack floats. `ctx`, when non-null,
// spreads the tiles over its threads; pass null inside a ParallelFor.
void DirectConvF32(const DirectConvWeights& w, const int64_t* tap_offsets, const float* src,
                   int64_t np, float* c, int64_t ldc, const KernelContext* ctx);

// MaxPool2d(2) over one plane, the pooling that follows such convolutions:
// out[oh][ow] = the max of in's 2 x 2 window at (2 oh, 2 ow), rows w_in
// floats apart, taken as the pool operator does: the window's first element,
// then each later one that compares greater (a NaN first stays, later NaNs
// are passed over). REQUIRES: 2 oh_n rows of at least 2 ow_n floats.
void MaxPool2x2F32(const float* in, int64_t w_in, float* out, int64_t oh_n, int64_t ow_n);

}  // namespace hepml::ops
