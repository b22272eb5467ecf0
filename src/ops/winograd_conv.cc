// Winograd F(2x2, 3x3) convolution (see winograd_conv.h). The transforms are
// compiled once per Highway target (foreach_target.h re-includes this file);
// the products run on the direct kernel (direct_conv.cc).
#include "ops/winograd_conv.h"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS \
  (HWY_SSSE3 | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128 | HWY_RVV)
#endif

#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/winograd_conv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

// Compiled once, not per target.
#ifndef HEPML_OPS_WINOGRAD_LAYOUT_ONCE_
#define HEPML_OPS_WINOGRAD_LAYOUT_ONCE_
namespace hepml::ops {
namespace winograd_internal {

// Layout of one task's tiles. Tile (ty, tx) of image i covers output rows
// 2ty, 2ty + 1 and columns 2tx, 2tx + 1. The input transform runs over
// positions g = ty * q + tx of an image's parity planes, q = tx_n + 1 (the
// last column of each tile row wraps around), and stores only the tiles,
// compacted: V and M hold tile (ty, tx) of image i at i * tiles + ty * tx_n + tx.
struct Layout {
  int64_t ty_n, tx_n, q, qs;  // tile rows, tile columns, plane row pitch, plane positions
  int64_t tiles;              // ty_n * tx_n: V and M positions per image
  int64_t ps;                 // floats of one parity plane (with its slack)
  int64_t nt, ntp;            // positions of the task, and the row pitch of V and M
  int64_t mrows;              // rows of each M (out_ch rounded up to the kernel's tile)
};

// Vector slack past the positions: every transform step reads and writes
// whole vectors of the widest target.
constexpr int64_t kSlack = 16;

inline Layout MakeLayout(int64_t m, int64_t images, int64_t h, int64_t w, int mr) {
  Layout l;
  l.ty_n = (h + 1) / 2;
  l.tx_n = (w + 1) / 2;
  l.q = l.tx_n + 1;
  l.qs = l.ty_n * l.q;
  l.tiles = l.ty_n * l.tx_n;
  l.ps = (l.ty_n + 1) * l.q + 1 + kSlack;
  l.nt = images * l.tiles;
  l.ntp = (l.nt + kSlack + 15) / 16 * 16;
  l.mrows = (m + mr - 1) / mr * mr;
  return l;
}

}  // namespace winograd_internal
}  // namespace hepml::ops
#endif  // HEPML_OPS_WINOGRAD_LAYOUT_ONCE_

HWY_BEFORE_NAMESPACE();
namespace hepml::ops {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
using winograd_internal::Layout;

// V[xi][c][pos0 + t] for the l.tiles tiles t of one image (and up to a
// vector past them: the next image, or the slack, overwrites those) from the
// parity planes `ph` of one channel: ph[2 * rp + cp][y * q + x] = the padded
// input at (2y + rp, 2x + cp). keep[g] is 1 for the positions g that are
// tiles (x < tx_n), 0 for the wrap-around column: those are compressed out.
void InputTransform(const Layout& l, const float* HWY_RESTRICT ph, const float* HWY_RESTRICT keep,
                    float* HWY_RESTRICT v, int64_t xi_stride) {
  const DF d;
  const int64_t n = hn::Lanes(d);
  const int64_t q = l.q;
  const float* p00 = ph;
  const float* p01 = ph + l.ps;
  const float* p10 = ph + 2 * l.ps;
  const float* p11 = ph + 3 * l.ps;
  int64_t o = 0;  // tiles stored so far
  for (int64_t g = 0; g < l.qs; g += n) {
    const auto mask = hn::Gt(hn::LoadU(d, keep + g), hn::Zero(d));
    // d[i][j] = padded (2ty + i, 2tx + j) = plane (i % 2, j % 2) at g + (i / 2) q + j / 2.
    VF dd[4][4];
    for (int i = 0; i < 4; ++i) {
      const float* pe = (i % 2 == 0 ? p00 : p10) + g + (i / 2) * q;
      const float* po = (i % 2 == 0 ? p01 : p11) + g + (i / 2) * q;
      dd[i][0] = hn::LoadU(d, pe);
      dd[i][1] = hn::LoadU(d, po);
      dd[i][2] = hn::LoadU(d, pe + 1);
      dd[i][3] = hn::LoadU(d, po + 1);
    }
    // B^T d: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
    VF t[4][4];
    for (int j = 0; j < 4; ++j) {
      t[0][j] = hn::Sub(dd[0][j], dd[2][j]);
      t[1][j] = hn::Add(dd[1][j], dd[2][j]);
      t[2][j] = hn::Sub(dd[2][j], dd[1][j]);
      t[3][j] = hn::Sub(dd[1][j], dd[3][j]);
    }
    // (B^T d) B: the same along the columns.
    for (int a = 0; a < 4; ++a) {
      float* va = v + (4 * a) * xi_stride + o;
      hn::StoreU(hn::Compress(hn::Sub(t[a][0], t[a][2]), mask), d, va);
      hn::StoreU(hn::Compress(hn::Add(t[a][1], t[a][2]), mask), d, va + xi_stride);
      hn::StoreU(hn::Compress(hn::Sub(t[a][2], t[a][1]), mask), d, va + 2 * xi_stride);
      hn::StoreU(hn::Compress(hn::Sub(t[a][1], t[a][3]), mask), d, va + 3 * xi_stride);
    }
    o += static_cast<int64_t>(hn::CountTrue(d, mask));
  }
}

// One output channel over every position: Y = A^T M A, plus the bias, Relu,
// and either the 2 x 2 blocks interleaved into z0 (even output rows) and z1
// (odd) at 2g, 2g + 1, or their maximum into z0[g].
void OutputTransform(int64_t nt, const float* HWY_RESTRICT m, int64_t xi_stride, float bias,
                     bool relu, bool pool, float* HWY_RESTRICT z0, float* HWY_RESTRICT z1) {
  const DF d;
  const int64_t n = hn::Lanes(d);
  const VF b = hn::Set(d, bias), zero = hn::Zero(d);
  for (int64_t g = 0; g < nt; g += n) {
    VF s[2][4];
    for (int j = 0; j < 4; ++j) {
      const VF m0 = hn::LoadU(d, m + (0 + j) * xi_stride + g);
      const VF m1 = hn::LoadU(d, m + (4 + j) * xi_stride + g);
      const VF m2 = hn::LoadU(d, m + (8 + j) * xi_stride + g);
      const VF m3 = hn::LoadU(d, m + (12 + j) * xi_stride + g);
      s[0][j] = hn::Add(hn::Add(m0, m1), m2);
      s[1][j] = hn::Sub(hn::Sub(m1, m2), m3);
    }
    VF y[2][2];
    for (int i = 0; i < 2; ++i) {
      y[i][0] = hn::Add(hn::Add(hn::Add(s[i][0], s[i][1]), s[i][2]), b);
      y[i][1] = hn::Add(hn::Sub(hn::Sub(s[i][1], s[i][2]), s[i][3]), b);
      if (relu) {
        y[i][0] = hn::IfThenElseZero(hn::Gt(y[i][0], zero), y[i][0]);
        y[i][1] = hn::IfThenElseZero(hn::Gt(y[i][1], zero), y[i][1]);
      }
    }
    if (pool) {
      // MaxPool's order: the window's first element, then each later one
      // that compares greater.
      VF best = y[0][0];
      best = hn::IfThenElse(hn::Gt(y[0][1], best), y[0][1], best);
      best = hn::IfThenElse(hn::Gt(y[1][0], best), y[1][0], best);
      best = hn::IfThenElse(hn::Gt(y[1][1], best), y[1][1], best);
      hn::StoreU(best, d, z0 + g);
    } else {
      hn::StoreInterleaved2(y[0][0], y[0][1], d, z0 + 2 * g);
      hn::StoreInterleaved2(y[1][0], y[1][1], d, z1 + 2 * g);
    }
  }
}

}  // namespace

void InputTransformImpl(const Layout& l, const float* ph, const float* keep, float* v, int64_t xi_stride) {
  InputTransform(l, ph, keep, v, xi_stride);
}

void OutputTransformImpl(int64_t nt, const float* m, int64_t xi_stride, float bias, bool relu,
                         bool pool, float* z0, float* z1) {
  OutputTransform(nt, m, xi_stride, bias, relu, pool, z0, z1);
}

}  // namespace HWY_NAMESPACE
}  // namespace hepml::ops
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace hepml::ops {

HWY_EXPORT(InputTransformImpl);
HWY_EXPORT(OutputTransformImpl);

using winograd_internal::kSlack;
using winograd_internal::Layout;
using winograd_internal::MakeLayout;

WinogradWeights WinogradWeights::Pack(int64_t m, int64_t c, const float* w) {
  WinogradWeights out;
  out.m_ = m;
  out.c_ = c;
  // U = G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double.
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  std::vector<float> u(16 * m * c);  // [xi][m][c]
  for (int64_t r = 0; r < m; ++r)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* g = w + (r * c + ch) * 9;
      double gg[4][3];  // G g
      for (int a = 0; a < 4; ++a)
        for (int j = 0; j < 3; ++j)
          gg[a][j] = kG[a][0] * g[0 * 3 + j] + kG[a][1] * g[1 * 3 + j] + kG[a][2] * g[2 * 3 + j];
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const double s = gg[a][0] * kG[b][0] + gg[a][1] * kG[b][1] + gg[a][2] * kG[b][2];
          u[((a * 4 + b) * m + r) * c + ch] = static_cast<float>(s);
        }
    }
  for (int xi = 0; xi < 16; ++xi) out.u_.push_back(DirectConvWeights::Pack(m, c, u.data() + xi * m * c, c));
  return out;
}

namespace {

struct ScratchParts {
  float* keep;    // 1 / 0 per plane position: a tile or not
  float* planes;  // 4 parity planes of one channel
  float* v;       // [16][c][ntp] (+ the kernel's slack)
  float* m;       // [16][mrows][ntp]
  float* z;       // 2 x (2 ntp): one output channel's blocks
};

int64_t PartsFloats(const Layout& l, int64_t c, int64_t* offsets) {
  int64_t at = 0;
  offsets[0] = at;
  at += l.qs + 2 * kSlack;
  offsets[1] = at;
  at += 4 * l.ps;
  offsets[2] = at;
  at += 16 * c * l.ntp + kDirectConvSlack;
  offsets[3] = at;
  at += 16 * l.mrows * l.ntp;
  offsets[4] = at;
  at += 4 * l.ntp + 2 * kSlack;
  return at;
}

}  // namespace

int64_t WinogradScratchFloats(const WinogradWeights& w, int64_t images, int64_t h, int64_t w_in) {
  const Layout l = MakeLayout(w.m(), images, h, w_in, w.at(0).mr());
  int64_t offs[5];
  return PartsFloats(l, w.c(), offs);
}

int64_t WinogradImagesPerTask(const WinogradWeights& w, int64_t h, int64_t w_in) {
  // Up to 1 MiB of V and M (the core's L2), and of those counts the one
  // whose tiles fill the kernel's strips of positions best: 64 tiles per
  // 16 x 16 image fill 3 images' 192 exactly (4 strips of 48 on AVX-512).
  const Layout one = MakeLayout(w.m(), 1, h, w_in, w.at(0).mr());
  const int64_t per_image = 16 * (w.c() + one.mrows) * one.tiles * 4;
  const int64_t most = std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(per_image, 1), 1, 16);
  const int64_t strip = std::max(1, DirectConvKernelShape().strip);
  int64_t best = 1;
  double best_fill = 0;
  for (int64_t nb = 1; nb <= most; ++nb) {
    const int64_t nt = nb * one.tiles;
    const double fill = static_cast<double>(nt) / ((nt + strip - 1) / strip * strip);
    if (fill >= best_fill - 1e-9) {  // ties: more images per task
      best = nb;
      best_fill = fill;
    }
  }
  return best;
}

void WinogradConv3x3F32(const WinogradWeights& w, const float* x, int64_t images, int64_t h,
                        int64_t w_in, const WinogradOutput& out, float* y, float* scratch,
                        const KernelContext* ctx) {
  const int64_t c = w.c(), m = w.m();
  if (images <= 0 || h <= 0 || w_in <= 0 || m <= 0) return;
  const Layout l = MakeLayout(m, images, h, w_in, w.at(0).mr());
  int64_t offs[5];
  PartsFloats(l, c, offs);
  ScratchParts s{scratch + offs[0], scratch + offs[1], scratch + offs[2], scratch + offs[3], scratch + offs[4]};
  for (int64_t g = 0; g < l.qs + 2 * kSlack; ++g) s.keep[g] = g < l.qs && g % l.q < l.tx_n ? 1.0f : 0.0f;
  const int64_t in_size = h * w_in;

  // 1. Input transform, image by image and channel by channel. The parity
  // planes hold the input padded by 1 (and by one more row / column of
  // zeros when h / w is odd).
  std::fill(s.planes, s.planes + 4 * l.ps, 0.0f);
  const int64_t v_xi = c * l.ntp;  // floats between V[xi] and V[xi + 1]
  for (int64_t i = 0; i < images; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* img = x + (i * c + ch) * in_size;
      // padded (r, s) = img(r - 1, s - 1): plane (r % 2, s % 2) at (r / 2) q + s / 2.
      for (int64_t r = 0; r < h; ++r) {
        const int64_t pr = r + 1;
        float* pe = s.planes + (2 * (pr % 2)) * l.ps + (pr / 2) * l.q;  // even padded columns
        float* po = pe + l.ps;                                          // odd padded columns
        const float* src = img + r * w_in;
        // Input column s0 = 2x (padded 2x + 1, odd plane x); s0 = 2x + 1
        // (padded 2x + 2, even plane x + 1).
        int64_t x2 = 0;
        for (; 2 * x2 + 1 < w_in; ++x2) {
          po[x2] = src[2 * x2];
          pe[x2 + 1] = src[2 * x2 + 1];
        }
        if (2 * x2 < w_in) po[x2] = src[2 * x2];
      }
      HWY_DYNAMIC_DISPATCH(InputTransformImpl)(l, s.planes, s.keep, s.v + ch * l.ntp + i * l.tiles, v_xi);
    }
  }
  // Positions past the last image's are computed by the products but never
  // read back: keep them finite.
  for (int xi = 0; xi < 16; ++xi)
    for (int64_t ch = 0; ch < c; ++ch) {
      float* row = s.v + xi * v_xi + ch * l.ntp;
      std::fill(row + l.nt, row + l.ntp, 0.0f);
    }
  std::fill(s.v + 16 * v_xi, s.v + 16 * v_xi + kDirectConvSlack, 0.0f);

  // 2. The 16 products M[xi] = U[xi] V[xi] (rows of V at ch * ntp).
  std::vector<int64_t> row_offs(c);
  for (int64_t ch = 0; ch < c; ++ch) row_offs[ch] = ch * l.ntp;
  const int64_t m_xi = l.mrows * l.ntp;
  for (int xi = 0; xi < 16; ++xi) {
    DirectConvF32(w.at(xi), row_offs.data(), s.v + xi * v_xi, l.nt, s.m + xi * m_xi, l.ntp, ctx);
  }

  // 3. Output transform per channel, then its rows into y.
  const int64_t oh = out.pool ? h / 2 : h, ow = out.pool ? w_in / 2 : w_in;
  const int64_t out_size = oh * ow;
  float* z0 = s.z;
  float* z1 = s.z + 2 * l.ntp + kSlack;
  for (int64_t r = 0; r < m; ++r) {
    const float b = out.bias != nullptr ? out.bias[r] : 0.0f;
    HWY_DYNAMIC_DISPATCH(OutputTransformImpl)(l.nt, s.m + r * l.ntp, m_xi, b, out.relu, out.pool, z0, z1);
    for (int64_t i = 0; i < images; ++i) {
      float* dst = y + (i * m + r) * out_size;
      if (out.pool) {
        for (int64_t ty = 0; ty < oh; ++ty)
          std::memcpy(dst + ty * ow, z0 + i * l.tiles + ty * l.tx_n, sizeof(float) * ow);
        continue;
      }
      for (int64_t ty = 0; ty < l.ty_n; ++ty) {
        const int64_t g = i * l.tiles + ty * l.tx_n;
        std::memcpy(dst + 2 * ty * ow, z0 + 2 * g, sizeof(float) * ow);
        if (2 * ty + 1 < oh) std::memcpy(dst + (2 * ty + 1) * ow, z1 + 2 * g, sizeof(float) * ow);
      }
    }
  }
}

}  // namespace hepml::ops
#endif  // HWY_ONCE
