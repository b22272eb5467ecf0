// The fp32 GEMM engine (see gemm.h). This file is compiled once per Highway
// target (foreach_target.h re-includes it); HWY_DYNAMIC_DISPATCH picks the
// best target the CPU supports on first use.
//
// Structure (after BLIS): a register-tiled micro-kernel computes an R x NR
// tile of C (R <= MR rows, NR = two vectors) from an R-row sliver of A and an
// NR-column panel of B. Two drivers feed it:
//  - direct: one pass over the whole k, A read where it lies (row-major,
//    transposed or prepacked), B prepacked or read in place; for skinny and
//    small products, where packing A would cost as much as the product;
//  - blocked: C split into MC x NC blocks (threads take blocks); k in KC
//    slices; per slice the block's A (MC x KC) and B (KC x NC) are packed
//    into cache-resident panels (or taken from the prepacked operand).
#include "ops/gemm.h"

// Scalable targets would make the tile width a run-time value; x86 and NEON
// cover the grid. SSSE3 adds nothing over SSE4 for this kernel.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#ifndef HEPML_OPS_GEMM_SHARED_
#define HEPML_OPS_GEMM_SHARED_

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <utility>

#include "hwy/aligned_allocator.h"
#include "ops/scratch.h"

namespace hepml::ops {
namespace gemm_internal {

// What a tile does with its sums: C = alpha * sums + beta * old, where old is
// C itself, or the bias row (columns from the tile's first) when `bias` is
// set. beta == 0 reads neither.
struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;
};

// One product, as GemmF32 received it (the same type for every target).
struct Problem {
  bool trans_a, trans_b;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const PackedA* packed_a;
  const float* b;
  int64_t ldb;
  const PackedB* packed_b;
  float beta;
  float* c;
  int64_t ldc;
  const KernelContext* ctx;
  const float* row_bias;  // see GemmF32
  // When set, row p of op(B) starts at b_rows[p] (n contiguous floats;
  // trans_b is false and b/ldb are unused): see GemmF32Rows.
  const float* const* b_rows = nullptr;
};

// Multiply-adds under which a product stays on the calling thread: a
// parallel_for costs a few microseconds to start.
constexpr int64_t kParallelMacs = int64_t{1} << 18;

}  // namespace gemm_internal
}  // namespace hepml::ops

#endif  // HEPML_OPS_GEMM_SHARED_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace hepml::ops {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using gemm_internal::Epilogue;
using gemm_internal::kParallelMacs;
using gemm_internal::Problem;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Tile shape: up to kMR rows by NR = kNV vectors. Accumulators take
// kMR * kNV registers, plus kNV for B and one for the broadcast A value:
// 12 x 2 + 3 = 27 of AVX-512's 32, 6 x 2 + 3 = 15 of AVX2's 16.
constexpr int kNV = 2;
constexpr int kL = static_cast<int>(hn::MaxLanes(DF()));
constexpr int kNR = kNV * kL;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
constexpr int kMR = 12;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr int kMR = 4;
#else
constexpr int kMR = 6;
#endif

// Column panels of op(B) are kNR wide, except a last one of at most kL
// columns, which is one vector wide (half the wasted lanes for, e.g., the 5
// classes of an output layer). Panel q always starts at q * kNR columns and
// q * k * kNR floats into a packed operand.
constexpr int64_t PanelWidth(int64_t cols_left) { return cols_left <= kL ? kL : kNR; }

// A tile with at least this many accumulators (rows x vectors) sums over k
// in one chain per accumulator; fewer would each wait on the FMA latency
// and split the sum into two or four chains (Tile). Every panel is at least
// one vector wide, so tiles of this many rows or more always take one chain.
constexpr int kOneChainAccumulators = 4;
// The smallest divisor of kMR from which every tile takes one chain: tiles
// of any multiple of it do (GemmKernelShape::exact_rows).
constexpr int ExactRows() {
  for (int d = kOneChainAccumulators; d < kMR; ++d)
    if (kMR % d == 0) return d;
  return kMR;
}

// Cache blocking of the blocked driver: a KC x MR sliver of A (24 KiB on
// AVX-512) stays in L1 while the KC x NC block of B (1 MiB) streams from
// L2/L3; the MC x KC block of A is packed once per column block. Chosen by
// measurement on Zen 4 (KC 512 beat 128-384 by 5-10% at n = 2048, equal
// below; see docs/benchmarks.md).
constexpr int64_t kKC = 512;
constexpr int64_t kMC = kMR * 16;
constexpr int64_t kNC = kNR * 16;

// Products with k up to this and at most kSmallMacs multiply-adds count as
// small: the direct driver runs them without packing A.
constexpr int64_t kSmallK = 256;
constexpr int64_t kSmallMacs = int64_t{1} << 21;

// B may be read where it lies (row-major, full panels) when it is this
// small: with a large, power-of-two row stride every row of a panel falls
// in the same cache sets and the reads miss all the way to L3.
constexpr int64_t kInPlaceFloats = int64_t{1} << 16;

// Few-row products pack a B that is neither prepacked nor in place whole
// when it is at most this large (16 MiB), once per call.
constexpr int64_t kWholeBFloats = int64_t{1} << 22;

// The blocked driver packs a whole A of at most this size (16 MiB) once.
constexpr int64_t kWholeAFloats = int64_t{1} << 22;

// Where the R rows of A a tile reads live: A(r, p) is a[p * stride + r]
// (kColMajor: packed slivers and transposed A) or a[r * stride + p].
enum class ALayout { kColMajor, kRowMajor };

// C[0:R, 0:cols] = ep(sum_p A(r, p) * B(p, j)) for B(p, j) = b[p * ldb + j]
// with NV * kL readable columns (those past `cols` are zero padding or
// ignored). A sliver times a panel: the register tile of the GEMM.
template <int R, int NV, ALayout kLayout>
HWY_NOINLINE void Tile(int64_t kc, const float* HWY_RESTRICT a, int64_t a_stride,
                       const float* HWY_RESTRICT b, int64_t ldb, float* HWY_RESTRICT c,
                       int64_t ldc, int64_t cols, Epilogue ep) {
  const DF d;
  VF acc[R][NV];
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    HWY_UNROLL(4)
    for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  }
  auto a_at = [&](int r, int64_t p) -> float {
    return kLayout == ALayout::kColMajor ? a[p * a_stride + r] : a[r * a_stride + p];
  };
  int64_t p = 0;
  if constexpr (R * NV == 1) {
    // One accumulator (a row times a one-vector panel: a GEMV's last
    // columns): four chains over k.
    VF acc1 = hn::Zero(d), acc2 = hn::Zero(d), acc3 = hn::Zero(d);
    for (; p + 4 <= kc; p += 4) {
      acc[0][0] = hn::MulAdd(hn::Set(d, a_at(0, p)), hn::LoadU(d, b + p * ldb), acc[0][0]);
      acc1 = hn::MulAdd(hn::Set(d, a_at(0, p + 1)), hn::LoadU(d, b + (p + 1) * ldb), acc1);
      acc2 = hn::MulAdd(hn::Set(d, a_at(0, p + 2)), hn::LoadU(d, b + (p + 2) * ldb), acc2);
      acc3 = hn::MulAdd(hn::Set(d, a_at(0, p + 3)), hn::LoadU(d, b + (p + 3) * ldb), acc3);
    }
    acc[0][0] = hn::Add(hn::Add(acc[0][0], acc1), hn::Add(acc2, acc3));
  } else if constexpr (R * NV < kOneChainAccumulators) {
    // Few accumulators: one chain of dependent FMAs each would wait on the
    // FMA latency; a second set halves the chains.
    VF acc2[R][NV];
    HWY_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      HWY_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc2[r][v] = hn::Zero(d);
    }
    for (; p + 2 <= kc; p += 2) {
      HWY_UNROLL(4)
      for (int r = 0; r < R; ++r) {
        const VF a0 = hn::Set(d, a_at(r, p));
        const VF a1 = hn::Set(d, a_at(r, p + 1));
        HWY_UNROLL(4)
        for (int v = 0; v < NV; ++v) {
          acc[r][v] = hn::MulAdd(a0, hn::LoadU(d, b + p * ldb + v * kL), acc[r][v]);
          acc2[r][v] = hn::MulAdd(a1, hn::LoadU(d, b + (p + 1) * ldb + v * kL), acc2[r][v]);
        }
      }
    }
    HWY_UNROLL(4)
    for (int r = 0; r < R; ++r) {
      HWY_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::Add(acc[r][v], acc2[r][v]);
    }
  }
  for (; p < kc; ++p) {
    VF bv[NV];
    HWY_UNROLL(4)
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, b + p * ldb + v * kL);
    HWY_UNROLL(16)
    for (int r = 0; r < R; ++r) {
      const VF av = hn::Set(d, a_at(r, p));
      HWY_UNROLL(4)
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, bv[v], acc[r][v]);
    }
  }
  if (cols == NV * kL) {
    if (ep.bias != nullptr && ep.beta != 0.0f) {
      const VF alpha = hn::Set(d, ep.alpha), beta = hn::Set(d, ep.beta);
      VF bias[NV];
      HWY_UNROLL(4)
      for (int v = 0; v < NV; ++v) bias[v] = hn::Mul(hn::LoadU(d, ep.bias + v * kL), beta);
      HWY_UNROLL(16)
      for (int r = 0; r < R; ++r) {
        HWY_UNROLL(4)
        for (int v = 0; v < NV; ++v) {
          hn::StoreU(hn::MulAdd(acc[r][v], alpha, bias[v]), d, c + r * ldc + v * kL);
        }
      }
    } else if (ep.beta == 0.0f) {
      if (ep.alpha != 1.0f) {
        const VF alpha = hn::Set(d, ep.alpha);
        HWY_UNROLL(16)
        for (int r = 0; r < R; ++r) {
          HWY_UNROLL(4)
          for (int v = 0; v < NV; ++v) acc[r][v] = hn::Mul(acc[r][v], alpha);
        }
      }
      HWY_UNROLL(16)
      for (int r = 0; r < R; ++r) {
        HWY_UNROLL(4)
        for (int v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, c + r * ldc + v * kL);
      }
    } else if (ep.beta == 1.0f && ep.alpha == 1.0f) {
      HWY_UNROLL(16)
      for (int r = 0; r < R; ++r) {
        HWY_UNROLL(4)
        for (int v = 0; v < NV; ++v) {
          float* cp = c + r * ldc + v * kL;
          hn::StoreU(hn::Add(hn::LoadU(d, cp), acc[r][v]), d, cp);
        }
      }
    } else {
      const VF alpha = hn::Set(d, ep.alpha), beta = hn::Set(d, ep.beta);
      HWY_UNROLL(16)
      for (int r = 0; r < R; ++r) {
        HWY_UNROLL(4)
        for (int v = 0; v < NV; ++v) {
          float* cp = c + r * ldc + v * kL;
          hn::StoreU(hn::MulAdd(hn::LoadU(d, cp), beta, hn::Mul(acc[r][v], alpha)), d, cp);
        }
      }
    }
    return;
  }
  // A partial tile (the last columns of C): through a buffer, so that
  // nothing past C's row end is read or written.
  alignas(64) float tile[R * NV * kL];
  HWY_UNROLL(16)
  for (int r = 0; r < R; ++r) {
    HWY_UNROLL(4)
    for (int v = 0; v < NV; ++v) hn::Store(acc[r][v], d, tile + (r * NV + v) * kL);
  }
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
    const float* tr = tile + r * NV * kL;
    if (ep.beta == 0.0f) {
      for (int64_t j = 0; j < cols; ++j) cr[j] = ep.alpha * tr[j];
    } else if (ep.bias != nullptr) {
      for (int64_t j = 0; j < cols; ++j) cr[j] = ep.alpha * tr[j] + ep.beta * ep.bias[j];
    } else {
      for (int64_t j = 0; j < cols; ++j) cr[j] = ep.alpha * tr[j] + ep.beta * cr[j];
    }
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t,
                        int64_t, Epilogue);
using TileTable = std::array<TileFn, kMR>;  // [R - 1]

template <int NV, ALayout kLayout, size_t... R>
constexpr TileTable MakeTiles(std::index_sequence<R...>) {
  return {&Tile<static_cast<int>(R) + 1, NV, kLayout>...};
}
template <int NV, ALayout kLayout>
constexpr TileTable kTiles = MakeTiles<NV, kLayout>(std::make_index_sequence<kMR>());

// The tiles for A in `layout` and a panel `width` columns wide.
const TileTable& Tiles(ALayout layout, int64_t width) {
  if (layout == ALayout::kColMajor) {
    return width == kNR ? kTiles<kNV, ALayout::kColMajor> : kTiles<1, ALayout::kColMajor>;
  }
  return width == kNR ? kTiles<kNV, ALayout::kRowMajor> : kTiles<1, ALayout::kRowMajor>;
}

// ---------------------------------------------------------------------------
// Packing

// Panels [0, panels) of op(B) rows [p0, p0 + kc), columns from j0 (a
// multiple of kNR), into dst (panel q at dst + q * kc * kNR), zero-padded
// past column n.
void PackBPanels(bool trans_b, const float* b, int64_t ldb, int64_t n, int64_t p0, int64_t kc,
                 int64_t j0, int64_t panels, float* HWY_RESTRICT dst,
                 const float* const* b_rows = nullptr) {
  const DF d;
  const int64_t full = std::min(panels, (n - j0) / kNR);  // panels with kNR columns of B
  if (!trans_b) {
    // Row by row: B is read sequentially (walking down a panel instead
    // would touch a new page, and often the same cache set, every row).
    for (int64_t p = 0; p < kc; ++p) {
      const float* row = (b_rows != nullptr ? b_rows[p0 + p] : b + (p0 + p) * ldb) + j0;
      for (int64_t q = 0; q < full; ++q) {
        float* out = dst + q * kc * kNR + p * kNR;
        HWY_UNROLL(4)
        for (int v = 0; v < kNV; ++v) hn::Store(hn::LoadU(d, row + q * kNR + v * kL), d, out + v * kL);
      }
      if (full < panels) {
        const int64_t cols = n - j0 - full * kNR, width = PanelWidth(cols);
        float* out = dst + full * kc * kNR + p * width;
        std::memcpy(out, row + full * kNR, sizeof(float) * cols);
        std::fill(out + cols, out + width, 0.0f);
      }
    }
    return;
  }
  // B is n x k: column j of op(B) is row j of B, read contiguously.
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t jq = j0 + q * kNR;
    const int64_t cols = std::min<int64_t>(kNR, n - jq);
    const int64_t width = PanelWidth(n - jq);
    float* out = dst + q * kc * kNR;
    for (int64_t jj = 0; jj < cols; ++jj) {
      const float* src = b + (jq + jj) * ldb + p0;
      for (int64_t p = 0; p < kc; ++p) out[p * width + jj] = src[p];
    }
    if (cols < width) {
      for (int64_t p = 0; p < kc; ++p) std::fill(out + p * width + cols, out + (p + 1) * width, 0.0f);
    }
  }
}

// Rows [i0, i0 + mc) of op(A), columns [p0, p0 + kc), as slivers of kMR rows
// (the last one narrower) at dst + s * kMR * kc, each column-major.
void PackASlivers(bool trans_a, const float* a, int64_t lda, int64_t i0, int64_t mc, int64_t p0,
                  int64_t kc, float* HWY_RESTRICT dst) {
  for (int64_t s = 0; s * kMR < mc; ++s) {
    const int64_t r0 = i0 + s * kMR;
    const int64_t rows = std::min<int64_t>(kMR, i0 + mc - r0);
    float* out = dst + s * kMR * kc;
    if (trans_a) {
      // A is k x m: column p of the sliver is contiguous in row p of A.
      for (int64_t p = 0; p < kc; ++p) {
        std::memcpy(out + p * rows, a + (p0 + p) * lda + r0, sizeof(float) * rows);
      }
    } else {
      for (int64_t r = 0; r < rows; ++r) {
        const float* src = a + (r0 + r) * lda + p0;
        for (int64_t p = 0; p < kc; ++p) out[p * rows + r] = src[p];
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Drivers

// Runs fn(lo, hi) over [0, units) on ctx's threads when the product is big
// enough to pay for it.
template <typename F>
void ForUnits(const Problem& pr, int64_t units, F&& fn) {
  const int64_t macs = pr.m * pr.n * pr.k;
  if (pr.ctx == nullptr || units <= 1 || macs < 2 * kParallelMacs) {
    fn(int64_t{0}, units);
    return;
  }
  const int64_t grain = std::max<int64_t>(1, kParallelMacs * units / macs);
  pr.ctx->ParallelFor(0, units, grain, fn);
}

// B can be used by the direct driver without packing all of it.
bool BInPlace(const Problem& pr) {
  return pr.b_rows == nullptr && !pr.trans_b && pr.k * pr.ldb <= kInPlaceFloats;
}

// One pass over k for every tile: A where it lies (row-major, transposed or
// prepacked); B prepacked, in place (only its last, partial panel packed) or
// packed here whole (when `pack_b`).
// REQUIRES: pr.packed_b, BInPlace(pr) or pack_b.
void DirectDriver(const Problem& pr, bool pack_b) {
  const int64_t m = pr.m, n = pr.n, k = pr.k;
  const int64_t panels = (n + kNR - 1) / kNR;
  std::optional<ScratchBuffer<float>> b_scratch;
  const float* b_panels = nullptr;  // all of op(B) in panels, or null: in place
  const float* tail = nullptr;      // the last panel of an in-place B, when partial
  if (pr.packed_b != nullptr) {
    b_panels = pr.packed_b->data();
  } else if (pack_b) {
    b_scratch.emplace(panels * k * kNR);
    PackBPanels(pr.trans_b, pr.b, pr.ldb, n, 0, k, 0, panels, b_scratch->data(), pr.b_rows);
    b_panels = b_scratch->data();
  } else if (n % kNR != 0) {
    b_scratch.emplace(k * kNR);
    PackBPanels(false, pr.b, pr.ldb, n, 0, k, (panels - 1) * kNR, 1, b_scratch->data());
    tail = b_scratch->data();
  }
  const ALayout layout =
      pr.packed_a != nullptr || pr.trans_a ? ALayout::kColMajor : ALayout::kRowMajor;
  // Work units: (row block, panel) pairs, row blocks of up to 8 slivers.
  constexpr int64_t kRowBlock = kMR * 8;
  const int64_t row_blocks = (m + kRowBlock - 1) / kRowBlock;
  ForUnits(pr, row_blocks * panels, [&](int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; ++u) {
      const int64_t q = u % panels, rb = u / panels;
      const int64_t j0 = q * kNR, cols = std::min<int64_t>(kNR, n - j0);
      const int64_t width = PanelWidth(n - j0);
      const float* bq;
      int64_t ldb;
      if (b_panels != nullptr) {
        bq = b_panels + q * k * kNR;
        ldb = width;
      } else if (cols < kNR) {
        bq = tail;
        ldb = width;
      } else {
        bq = pr.b + j0;
        ldb = pr.ldb;
      }
      const TileTable& tiles = Tiles(layout, width);
      const Epilogue ep{pr.alpha, pr.beta, pr.row_bias ? pr.row_bias + j0 : nullptr};
      const int64_t i_end = std::min(m, (rb + 1) * kRowBlock);
      for (int64_t i0 = rb * kRowBlock; i0 < i_end; i0 += kMR) {
        const int64_t rows = std::min<int64_t>(kMR, i_end - i0);
        const float* ap;
        int64_t a_stride;
        if (pr.packed_a != nullptr) {
          ap = pr.packed_a->data() + i0 * k;  // sliver i0 / kMR
          a_stride = rows;
        } else {
          ap = pr.trans_a ? pr.a + i0 : pr.a + i0 * pr.lda;
          a_stride = pr.lda;
        }
        tiles[rows - 1](k, ap, a_stride, bq, ldb, pr.c + i0 * pr.ldc + j0, pr.ldc, cols, ep);
      }
    }
  });
}

// C rows [0, R) over columns [j0, j1), B read row by row where it lies:
// for a few rows against a large row-major B that is not packed, where
// packing B would cost more than the product and walking down panels of it
// would miss the caches. Sums for a chunk of columns stay in an L1 buffer
// (not in C: rows of C, like rows of B, are often 4 KiB apart, and loads
// that alias a pending store 4 KiB away stall) while the rows of B stream
// past; every B vector feeds R FMAs.
constexpr int64_t kStreamChunk = 512;
// Rows of B at least this long stream better than tiles over B in place
// (whose panels walk down B one short row piece per cache line set).
constexpr int64_t kStreamMinCols = 256;

template <int R>
void RowStream(const Problem& pr, int64_t j0, int64_t j1) {
  const DF d;
  constexpr int64_t kChunk = kStreamChunk * 4 / R / 64 * 64;  // 8 KiB of sums
  constexpr int64_t kStride = kChunk + 16;  // rows 64-byte aligned, not 4 KiB apart
  alignas(64) float sums[R * kStride];
  auto a_at = [&](int r, int64_t p) {
    return pr.alpha * (pr.trans_a ? pr.a[p * pr.lda + r] : pr.a[r * pr.lda + p]);
  };
  for (int64_t jc = j0; jc < j1; jc += kChunk) {
    const int64_t w = std::min(kChunk, j1 - jc);
    std::fill(sums, sums + R * kStride, 0.0f);
    for (int64_t p = 0; p < pr.k; ++p) {
      const float* brow = (pr.b_rows != nullptr ? pr.b_rows[p] : pr.b + p * pr.ldb) + jc;
      VF av[R];
      float as[R];
      HWY_UNROLL(4)
      for (int r = 0; r < R; ++r) {
        as[r] = a_at(r, p);
        av[r] = hn::Set(d, as[r]);
      }
      int64_t j = 0;
      for (; j + kL <= w; j += kL) {
        const VF bv = hn::LoadU(d, brow + j);
        HWY_UNROLL(4)
        for (int r = 0; r < R; ++r) {
          float* sp = sums + r * kStride + j;
          hn::Store(hn::MulAdd(av[r], bv, hn::Load(d, sp)), d, sp);
        }
      }
      for (; j < w; ++j) {
        for (int r = 0; r < R; ++r) sums[r * kStride + j] += as[r] * brow[j];
      }
    }
    for (int r = 0; r < R; ++r) {
      float* row = pr.c + r * pr.ldc + jc;
      const float* sr = sums + r * kStride;
      for (int64_t j = 0; j < w; ++j) {
        if (pr.beta == 0.0f) row[j] = sr[j];
        else if (pr.row_bias != nullptr) row[j] = sr[j] + pr.beta * pr.row_bias[jc + j];
        else row[j] = sr[j] + pr.beta * row[j];
      }
    }
  }
}

void RowStreamDriver(const Problem& pr) {
  const int64_t chunks = (pr.n + kStreamChunk - 1) / kStreamChunk;
  ForUnits(pr, chunks, [&](int64_t lo, int64_t hi) {
    const int64_t j0 = lo * kStreamChunk, j1 = std::min(pr.n, hi * kStreamChunk);
    for (int64_t i0 = 0; i0 < pr.m; i0 += 4) {
      Problem rows = pr;
      rows.a = pr.trans_a ? pr.a + i0 : pr.a + i0 * pr.lda;
      rows.c = pr.c + i0 * pr.ldc;
      switch (std::min<int64_t>(4, pr.m - i0)) {
        case 1: RowStream<1>(rows, j0, j1); break;
        case 2: RowStream<2>(rows, j0, j1); break;
        case 3: RowStream<3>(rows, j0, j1); break;
        default: RowStream<4>(rows, j0, j1); break;
      }
    }
  });
}

// MC x NC blocks of C are the units threads take, column block by column
// block; per KC slice of k, a thread packs the slice of its column block's B
// once (unless prepacked) and then, for each of its row blocks, packs the A
// block and sweeps it sliver by sliver over the B panels.
void BlockedDriver(const Problem& pr) {
  const int64_t m = pr.m, n = pr.n, k = pr.k;
  // Row blocks of equal height (at most kMC, a multiple of kMR so that every
  // row meets the tile it meets in any other split): at m = 256, two blocks
  // of 132 and 124 rows rather than 192 and 64, which kept one of two
  // threads busy for 75% of the product.
  const int64_t blocks = (m + kMC - 1) / kMC;
  const int64_t mc_rows = std::min(kMC, ((m + blocks - 1) / blocks + kMR - 1) / kMR * kMR);
  const int64_t mb = (m + mc_rows - 1) / mc_rows, nb = (n + kNC - 1) / kNC;
  // A in slivers over all of k (PackedA's layout): prepacked, or packed here
  // once when several column blocks would each pack it again (packing A is
  // a transposition, dearer than copying rows of B).
  const float* a_slivers = pr.packed_a != nullptr ? pr.packed_a->data() : nullptr;
  std::optional<ScratchBuffer<float>> whole_a;
  if (a_slivers == nullptr && nb > 1 && m * k <= kWholeAFloats) {
    whole_a.emplace(m * k);
    const int64_t slivers = (m + kMR - 1) / kMR;
    float* dst = whole_a->data();
    auto pack = [&](int64_t lo, int64_t hi) {
      for (int64_t s = lo; s < hi; ++s) {
        PackASlivers(pr.trans_a, pr.a, pr.lda, s * kMR, std::min<int64_t>(kMR, m - s * kMR), 0, k,
                     dst + s * kMR * k);
      }
    };
    if (pr.ctx != nullptr) {
      pr.ctx->ParallelFor(0, slivers, std::max<int64_t>(1, (int64_t{1} << 16) / (kMR * k)), pack);
    } else {
      pack(0, slivers);
    }
    a_slivers = dst;
  }
  ForUnits(pr, mb * nb, [&](int64_t lo, int64_t hi) {
    std::optional<ScratchBuffer<float>> a_buf, b_buf;
    if (a_slivers == nullptr) a_buf.emplace(kMC * kKC);
    if (pr.packed_b == nullptr) b_buf.emplace(kNC * kKC);
    // Units u = jb * mb + ib: [lo, hi) is runs of row blocks per column block.
    for (int64_t u0 = lo; u0 < hi;) {
      const int64_t jb = u0 / mb, u1 = std::min(hi, (jb + 1) * mb);
      const int64_t j0 = jb * kNC, nc = std::min(kNC, n - j0);
      const int64_t panels = (nc + kNR - 1) / kNR;
      for (int64_t p0 = 0; p0 < k; p0 += kKC) {
        const int64_t kc = std::min(kKC, k - p0);
        // The first slice applies beta (to C or the bias), the others add.
        const Epilogue ep = p0 == 0 ? Epilogue{pr.alpha, pr.beta, pr.row_bias}
                                    : Epilogue{pr.alpha, 1.0f, nullptr};
        if (b_buf) PackBPanels(pr.trans_b, pr.b, pr.ldb, n, p0, kc, j0, panels, b_buf->data(), pr.b_rows);
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t i0 = (u % mb) * mc_rows, mc = std::min(mc_rows, m - i0);
          const int64_t slivers = (mc + kMR - 1) / kMR;
          if (a_buf) PackASlivers(pr.trans_a, pr.a, pr.lda, i0, mc, p0, kc, a_buf->data());
          for (int64_t s = 0; s < slivers; ++s) {
            const int64_t r0 = i0 + s * kMR, rows = std::min<int64_t>(kMR, m - r0);
            const float* as = a_buf ? a_buf->data() + s * kMR * kc : a_slivers + r0 * k + p0 * rows;
            for (int64_t q = 0; q < panels; ++q) {
              const int64_t jq = j0 + q * kNR, cols = std::min<int64_t>(kNR, n - jq);
              const int64_t width = PanelWidth(n - jq);
              const float* bq = b_buf ? b_buf->data() + q * kc * kNR
                                      : pr.packed_b->data() + jq * k + p0 * width;
              Epilogue tile_ep = ep;
              if (tile_ep.bias != nullptr) tile_ep.bias += jq;
              Tiles(ALayout::kColMajor, width)[rows - 1](kc, as, rows, bq, width,
                                                         pr.c + r0 * pr.ldc + jq, pr.ldc, cols,
                                                         tile_ep);
            }
          }
        }
      }
      u0 = u1;
    }
  });
}

}  // namespace

GemmKernelShape KernelShape() { return {kMR, kNR, hwy::TargetName(HWY_TARGET), ExactRows()}; }

void PackB(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst) {
  PackBPanels(trans_b, b, ldb, n, 0, k, 0, (n + kNR - 1) / kNR, dst);
}

void PackA(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda, float* dst) {
  PackASlivers(trans_a, a, lda, 0, m, 0, k, dst);
}

void Relu(const float* x, float* y, int64_t n) {
  const DF d;
  const VF zero = hn::Zero(d);
  int64_t i = 0;
  for (; i + kL <= n; i += kL) {
    const VF v = hn::LoadU(d, x + i);
    hn::StoreU(hn::IfThenElseZero(hn::Gt(v, zero), v), d, y + i);
  }
  for (; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void BiasRelu(const float* x, int64_t x_stride, float* y, int64_t y_stride, int64_t rows, int64_t n,
              float bias, bool relu) {
  const DF d;
  const VF b = hn::Set(d, bias), zero = hn::Zero(d);
  for (int64_t r = 0; r < rows; ++r, x += x_stride, y += y_stride) {
    int64_t i = 0;
    for (; i + kL <= n; i += kL) {
      VF v = hn::Add(hn::LoadU(d, x + i), b);
      if (relu) v = hn::IfThenElseZero(hn::Gt(v, zero), v);
      hn::StoreU(v, d, y + i);
    }
    for (; i < n; ++i) {
      const float v = x[i] + bias;
      y[i] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
  }
}

void Gemm(const Problem& pr) {
  // A few rows against an unpacked row-major B that is large or wide:
  // stream B's rows. Otherwise the direct driver reads A where it lies; it
  // wins when packing A would cost about as much as using it: few rows (A
  // is read once per panel of B anyway), few panels of B (A is not reused),
  // or a small product. B must then be prepacked, small enough to read in
  // place, or (few rows only) worth packing whole once. The rest runs
  // cache-blocked with packing.
  const int64_t panels = (pr.n + kNR - 1) / kNR;
  const bool b_ready = pr.packed_b != nullptr || BInPlace(pr);
  if (pr.m <= 4 && pr.packed_b == nullptr && !pr.trans_b && pr.packed_a == nullptr &&
      (!b_ready || pr.n >= kStreamMinCols)) {
    RowStreamDriver(pr);
  } else if (pr.m <= 2 * kMR && (b_ready || pr.k * panels * kNR <= kWholeBFloats)) {
    DirectDriver(pr, /*pack_b=*/!b_ready);
  } else if (b_ready && (panels <= 4 || (pr.k <= kSmallK && pr.m * pr.n * pr.k <= kSmallMacs))) {
    DirectDriver(pr, /*pack_b=*/false);
  } else {
    BlockedDriver(pr);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace hepml::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hepml::ops {

HWY_EXPORT(KernelShape);
HWY_EXPORT(PackB);
HWY_EXPORT(PackA);
HWY_EXPORT(Gemm);
HWY_EXPORT(Relu);
HWY_EXPORT(BiasRelu);

GemmKernelShape GemmF32KernelShape() { return HWY_DYNAMIC_DISPATCH(KernelShape)(); }

void ReluF32(const float* x, float* y, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(Relu)(x, y, n);
}

void BiasReluF32(const float* x, float* y, float bias, bool relu, int64_t n) {
  if (n > 0) HWY_DYNAMIC_DISPATCH(BiasRelu)(x, n, y, n, 1, n, bias, relu);
}

void BiasReluRowsF32(const float* x, int64_t x_stride, float* y, int64_t y_stride, int64_t rows,
                     int64_t n, float bias, bool relu) {
  if (rows > 0 && n > 0) HWY_DYNAMIC_DISPATCH(BiasRelu)(x, x_stride, y, y_stride, rows, n, bias, relu);
}

AlignedFloats::AlignedFloats(int64_t n)
    : data_(static_cast<float*>(hwy::AllocateAlignedBytes(
          static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float), nullptr, nullptr))),
      size_(n) {}

void AlignedFloats::Free::operator()(float* p) const { hwy::FreeAlignedBytes(p, nullptr, nullptr); }

PackedB PackedB::Pack(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb) {
  PackedB out;
  const GemmKernelShape shape = GemmF32KernelShape();
  out.k_ = k;
  out.n_ = n;
  out.nr_ = shape.nr;
  out.data_ = AlignedFloats(k * ((n + shape.nr - 1) / shape.nr) * shape.nr);
  HWY_DYNAMIC_DISPATCH(PackB)(trans_b, k, n, b, ldb, out.data_.data());
  return out;
}

PackedA PackedA::Pack(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda) {
  PackedA out;
  const GemmKernelShape shape = GemmF32KernelShape();
  out.m_ = m;
  out.k_ = k;
  out.mr_ = shape.mr;
  out.data_ = AlignedFloats(m * k);
  HWY_DYNAMIC_DISPATCH(PackA)(trans_a, m, k, a, lda, out.data_.data());
  return out;
}

void GemmF32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const PackedA* packed_a, const float* b, int64_t ldb,
             const PackedB* packed_b, float beta, float* c, int64_t ldc,
             const KernelContext* ctx, const float* row_bias) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    // No products: C = beta * C or beta * bias (beta == 0 writes zeros
    // without reading C).
    for (int64_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      if (beta == 0.0f) {
        std::fill(row, row + n, 0.0f);
      } else if (row_bias != nullptr) {
        for (int64_t j = 0; j < n; ++j) row[j] = beta * row_bias[j];
      } else if (beta != 1.0f) {
        for (int64_t j = 0; j < n; ++j) row[j] *= beta;
      }
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(Gemm)(gemm_internal::Problem{trans_a, trans_b, m, n, k, alpha, a, lda, packed_a, b, ldb, packed_b,
                              beta, c, ldc, ctx, row_bias});
}

void GemmF32Rows(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                 const PackedA* packed_a, const float* const* b_rows, float beta, float* c,
                 int64_t ldc, const KernelContext* ctx) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    GemmF32(false, false, m, n, 0, 1.0f, a, lda, packed_a, nullptr, n, nullptr, beta, c, ldc, ctx);
    return;
  }
  gemm_internal::Problem pr{false, false, m, n, k, 1.0f, a, lda, packed_a, nullptr, n, nullptr,
                            beta, c, ldc, ctx, nullptr};
  pr.b_rows = b_rows;
  HWY_DYNAMIC_DISPATCH(Gemm)(pr);
}

}  // namespace hepml::ops
#endif  // HWY_ONCE
