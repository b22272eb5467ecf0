// The direct convolution kernel (see direct_conv.h). This file is compiled
// once per Highway target (foreach_target.h re-includes it);
// HWY_DYNAMIC_DISPATCH picks the best target the CPU supports on first use.
#include "ops/direct_conv.h"

// Register arrays of vectors need a compile-time vector size: the scalable
// targets are left out, as for the GEMM engine (gemm.cc).
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#include <algorithm>
#include <array>
#include <utility>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/direct_conv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace hepml::ops {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

constexpr int kL = static_cast<int>(hn::MaxLanes(DF()));
// Tile: kMR output channels by kP vectors of positions. Accumulators take
// kMR * kP registers, plus kP for the shifted inputs and one broadcast
// weight: 8 x 3 + 4 = 28 of AVX-512's 32, 4 x 2 + 3 = 11 of AVX2's 16
// (whose broadcasts are separate instructions, not memory operands).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4 || \
    HWY_TARGET == HWY_AVX3_SPR
constexpr int kMR = 8;
constexpr int kP = 3;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr int kMR = 4;
constexpr int kP = 1;
#else
constexpr int kMR = 4;
constexpr int kP = 2;
#endif

// Multiply-adds under which the tiles stay on the calling thread.
constexpr int64_t kParallelMacs = int64_t{1} << 18;

// C[0:kMR, p0 : p0 + P * kL] for one weight block: every tap loads the P
// shifted input vectors once and feeds each of the kMR channels' weights.
template <int P>
HWY_NOINLINE void DirectTile(int64_t taps, const int64_t* HWY_RESTRICT offs,
                             const float* HWY_RESTRICT src, const float* HWY_RESTRICT w,
                             float* HWY_RESTRICT c, int64_t ldc) {
  const DF d;
  VF acc[kMR][P];
  HWY_UNROLL(16)
  for (int r = 0; r < kMR; ++r) {
    HWY_UNROLL(4)
    for (int j = 0; j < P; ++j) acc[r][j] = hn::Zero(d);
  }
  for (int64_t t = 0; t < taps; ++t) {
    const float* s = src + offs[t];
    const float* wt = w + t * kMR;
    VF x[P];
    HWY_UNROLL(4)
    for (int j = 0; j < P; ++j) x[j] = hn::LoadU(d, s + j * kL);
    HWY_UNROLL(16)
    for (int r = 0; r < kMR; ++r) {
      const VF wr = hn::Set(d, wt[r]);
      HWY_UNROLL(4)
      for (int j = 0; j < P; ++j) acc[r][j] = hn::MulAdd(wr, x[j], acc[r][j]);
    }
  }
  HWY_UNROLL(16)
  for (int r = 0; r < kMR; ++r) {
    HWY_UNROLL(4)
    for (int j = 0; j < P; ++j) hn::StoreU(acc[r][j], d, c + r * ldc + j * kL);
  }
}

using TileFn = void (*)(int64_t, const int64_t*, const float*, const float*, float*, int64_t);
template <size_t... P>
constexpr std::array<TileFn, kP> MakeTiles(std::index_sequence<P...>) {
  return {&DirectTile<static_cast<int>(P) + 1>...};
}
constexpr std::array<TileFn, kP> kTiles = MakeTiles(std::make_index_sequence<kP>());

}  // namespace

DirectConvShape DirectShapeImpl() { return DirectConvShape{kMR, kL, kP * kL}; }

void DirectPackImpl(int64_t m, int64_t k, const float* w, int64_t ldw, float* out) {
  const int64_t blocks = (m + kMR - 1) / kMR;
  for (int64_t b = 0; b < blocks; ++b) {
    float* dst = out + b * k * kMR;
    for (int64_t t = 0; t < k; ++t)
      for (int r = 0; r < kMR; ++r) {
        const int64_t row = b * kMR + r;
        dst[t * kMR + r] = row < m ? w[row * ldw + t] : 0.0f;
      }
  }
}

void DirectRunImpl(int64_t m, int64_t k, const float* w, const int64_t* offs, const float* src,
                   int64_t np, float* c, int64_t ldc, const KernelContext* ctx) {
  const int64_t blocks = (m + kMR - 1) / kMR;
  const int64_t vecs = (np + kL - 1) / kL;
  const int64_t strips = (vecs + kP - 1) / kP;
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; ++u) {
      // Block-major: a block's weights stay in L1 while its strips pass.
      const int64_t b = u / strips, s = u % strips;
      const int64_t v0 = s * kP;
      const int nv = static_cast<int>(std::min<int64_t>(kP, vecs - v0));
      kTiles[nv - 1](k, offs, src + v0 * kL, w + b * k * kMR, c + b * kMR * ldc + v0 * kL, ldc);
    }
  };
  const int64_t units = blocks * strips;
  const int64_t macs = blocks * kMR * vecs * kL * k;
  if (ctx == nullptr || units <= 1 || macs < 2 * kParallelMacs) {
    run(0, units);
    return;
  }
  ctx->ParallelFor(0, units, std::max<int64_t>(1, kParallelMacs * units / macs), run);
}

void MaxPool2x2Impl(const float* in, int64_t w_in, float* out, int64_t oh_n, int64_t ow_n) {
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const float* r0 = in + 2 * oh * w_in;
    const float* r1 = r0 + w_in;
    float* o = out + oh * ow_n;
    int64_t ow = 0;
#if HWY_TARGET != HWY_SCALAR
    const DF d;
    for (; ow + kL <= ow_n; ow += kL) {
      // Even and odd columns of each row: the window's left and right.
      const VF a0 = hn::LoadU(d, r0 + 2 * ow), a1 = hn::LoadU(d, r0 + 2 * ow + kL);
      const VF b0 = hn::LoadU(d, r1 + 2 * ow), b1 = hn::LoadU(d, r1 + 2 * ow + kL);
      VF best = hn::ConcatEven(d, a1, a0);
      const VF v1 = hn::ConcatOdd(d, a1, a0);
      const VF v2 = hn::ConcatEven(d, b1, b0);
      const VF v3 = hn::ConcatOdd(d, b1, b0);
      best = hn::IfThenElse(hn::Gt(v1, best), v1, best);
      best = hn::IfThenElse(hn::Gt(v2, best), v2, best);
      best = hn::IfThenElse(hn::Gt(v3, best), v3, best);
      hn::StoreU(best, d, o + ow);
    }
#endif
    for (; ow < ow_n; ++ow) {
      float best = r0[2 * ow];
      for (float v : {r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]}) best = v > best ? v : best;
      o[ow] = best;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace hepml::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hepml::ops {

HWY_EXPORT(DirectShapeImpl);
HWY_EXPORT(DirectPackImpl);
HWY_EXPORT(DirectRunImpl);
HWY_EXPORT(MaxPool2x2Impl);

void MaxPool2x2F32(const float* in, int64_t w_in, float* out, int64_t oh_n, int64_t ow_n) {
  if (oh_n > 0 && ow_n > 0) HWY_DYNAMIC_DISPATCH(MaxPool2x2Impl)(in, w_in, out, oh_n, ow_n);
}

DirectConvShape DirectConvKernelShape() { return HWY_DYNAMIC_DISPATCH(DirectShapeImpl)(); }

DirectConvWeights DirectConvWeights::Pack(int64_t m, int64_t k, const float* w, int64_t ldw) {
  DirectConvWeights out;
  const DirectConvShape shape = DirectConvKernelShape();
  out.m_ = m;
  out.k_ = k;
  out.mr_ = shape.mr;
  out.data_ = AlignedFloats(std::max<int64_t>(1, (m + shape.mr - 1) / shape.mr * shape.mr * k));
  HWY_DYNAMIC_DISPATCH(DirectPackImpl)(m, k, w, ldw, out.data_.data());
  return out;
}

void DirectConvF32(const DirectConvWeights& w, const int64_t* tap_offsets, const float* src,
                   int64_t np, float* c, int64_t ldc, const KernelContext* ctx) {
  if (w.m() <= 0 || np <= 0) return;
  if (w.k() <= 0) {  // no taps: every sum is empty
    const int64_t lanes = DirectConvKernelShape().lanes;
    const int64_t rows = (w.m() + w.mr() - 1) / w.mr() * w.mr();
    const int64_t cols = (np + lanes - 1) / lanes * lanes;
    for (int64_t r = 0; r < rows; ++r) std::fill(c + r * ldc, c + r * ldc + cols, 0.0f);
    return;
  }
  HWY_DYNAMIC_DISPATCH(DirectRunImpl)(w.m(), w.k(), w.data(), tap_offsets, src, np, c, ldc, ctx);
}

}  // namespace hepml::ops
#endif  // HWY_ONCE
