// Convolution of the emitted code: im2col into a planned scratch buffer, then
// one GEMM per image and group (weights [C_out, C_in/group * kernel] are the
// GEMM's A). Spatial rank 1 to 3; pads, strides, dilations, groups.
//
// 2-D 3x3 convolutions with stride 1, pads 1, no dilation and one group (the
// image CNNs' "same" convolutions) have two kernels of their own: Winograd
// F(2x2, 3x3) on weights transformed when the package is compiled
// (Conv3x3Winograd, 8 or more input channels) and a direct kernel over a
// padded copy of the input (Conv3x3Direct, fewer channels), both with the
// bias and the activation applied as the output is stored.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codegen/emitted/common.h"
#include "codegen/emitted/gemm.h"

namespace hepml_emitted {

struct ConvGeometry {
  int spatial = 1;          // 1..3
  int64_t in[3] = {1, 1, 1};    // input spatial dims
  int64_t out[3] = {1, 1, 1};   // output spatial dims
  int64_t kernel[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t dilation[3] = {1, 1, 1};
  int64_t pad_begin[3] = {0, 0, 0};
};

// `g` over exactly 3 spatial dims: its own dims last, leading dims of size 1
// (no stride, dilation or padding), so kernels loop over 3 dims always.
inline ConvGeometry As3d(const ConvGeometry& g) {
  ConvGeometry r;
  r.spatial = 3;
  const int lead = 3 - g.spatial;
  for (int i = lead; i < 3; ++i) {
    r.in[i] = g.in[i - lead];
    r.out[i] = g.out[i - lead];
    r.kernel[i] = g.kernel[i - lead];
    r.stride[i] = g.stride[i - lead];
    r.dilation[i] = g.dilation[i - lead];
    r.pad_begin[i] = g.pad_begin[i - lead];
  }
  return r;
}

inline int64_t ConvCount(const int64_t* d, int spatial) {
  int64_t n = 1;
  for (int i = 0; i < spatial; ++i) n *= d[i];
  return n;
}

// True when the column matrix is the input itself (1x1 kernel, stride 1, no pad).
inline bool ConvIsPointwise(const ConvGeometry& g) {
  for (int i = 0; i < g.spatial; ++i)
    if (g.kernel[i] != 1 || g.stride[i] != 1 || g.pad_begin[i] != 0 || g.in[i] != g.out[i]) return false;
  return true;
}

// col[(c * K + k) * P + p] for c < channels, k over the kernel, p over the output.
inline void Im2Col(const ConvGeometry& g, int64_t channels, const float* x, float* col) {
  // Pad the geometry to 3 spatial dims (leading dims of 1).
  const ConvGeometry g3 = As3d(g);
  const int64_t *in = g3.in, *out = g3.out, *ker = g3.kernel, *str = g3.stride, *dil = g3.dilation,
                *pad = g3.pad_begin;
  const int64_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2];
  for (int64_t c = 0; c < channels; ++c) {
    const float* xc = x + c * in_size;
    for (int64_t k0 = 0; k0 < ker[0]; ++k0)
      for (int64_t k1 = 0; k1 < ker[1]; ++k1)
        for (int64_t k2 = 0; k2 < ker[2]; ++k2) {
          float* row = col + (((c * ker[0] + k0) * ker[1] + k1) * ker[2] + k2) * out_size;
          for (int64_t o0 = 0; o0 < out[0]; ++o0) {
            const int64_t i0 = o0 * str[0] - pad[0] + k0 * dil[0];
            for (int64_t o1 = 0; o1 < out[1]; ++o1) {
              const int64_t i1 = o1 * str[1] - pad[1] + k1 * dil[1];
              float* r = row + (o0 * out[1] + o1) * out[2];
              if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1]) {
                for (int64_t o2 = 0; o2 < out[2]; ++o2) r[o2] = 0.f;
                continue;
              }
              const float* xr = xc + (i0 * in[1] + i1) * in[2];
              for (int64_t o2 = 0; o2 < out[2]; ++o2) {
                const int64_t i2 = o2 * str[2] - pad[2] + k2 * dil[2];
                r[o2] = (i2 >= 0 && i2 < in[2]) ? xr[i2] : 0.f;
              }
            }
          }
        }
  }
}

// Y[N, C_out, out...] = act(conv(X[N, C_in, in...], W) + B). `col` holds
// (C_in / group) * kernel * out floats (unused for pointwise convolutions).
inline void Conv(const ConvGeometry& g, int64_t batch, int64_t c_in, int64_t c_out, int64_t group, const float* x,
                 const float* w, const float* bias, Act act, float act_alpha, float act_beta, float* col, float* y) {
  const int64_t in_size = ConvCount(g.in, g.spatial), out_size = ConvCount(g.out, g.spatial);
  const int64_t cin_g = c_in / group, cout_g = c_out / group;
  const int64_t k = cin_g * ConvCount(g.kernel, g.spatial);
  const bool pointwise = ConvIsPointwise(g);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      const float* xg = x + (n * c_in + gi * cin_g) * in_size;
      float* yg = y + (n * c_out + gi * cout_g) * out_size;
      const float* b = xg;
      if (!pointwise) {
        Im2Col(g, cin_g, xg, col);
        b = col;
      }
      GemmNN(cout_g, out_size, k, w + gi * cout_g * k, k, b, out_size, yg, out_size, false);
      if (bias != nullptr)
        for (int64_t c = 0; c < cout_g; ++c) {
          const float bv = bias[gi * cout_g + c];
          float* yc = yg + c * out_size;
          for (int64_t p = 0; p < out_size; ++p) yc[p] += bv;
        }
    }
  }
  ActInPlace(act, y, batch * c_out * out_size, act_alpha, act_beta);
}

// ---- Pointwise (1x1, stride 1, no pads, one group) with constant weights:
// Y[m, P] = act(W[m, c] X[c, P] + bias) per image, W packed at compile time
// into blocks of kPointwiseRows output channels, [block][c][kPointwiseRows]
// (zeros past m), so a register tile reads its weights in sequence and the
// bias and activation are applied as the tile is stored.
inline constexpr int64_t kPointwiseRows = 4;

inline int64_t PointwisePackedFloats(int64_t m, int64_t c) {
  return (m + kPointwiseRows - 1) / kPointwiseRows * kPointwiseRows * c;
}

inline void PackPointwiseWeights(int64_t m, int64_t c, const float* w, float* wp) {
  for (int64_t i = 0; i < PointwisePackedFloats(m, c); ++i) wp[i] = 0.f;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t k = 0; k < c; ++k)
      wp[(r / kPointwiseRows * c + k) * kPointwiseRows + r % kPointwiseRows] = w[r * c + k];
}

// t[i][0..kPointwiseCols) = sum over k < c of a[k][i] x[k][0..kPointwiseCols)
// for the kPointwiseRows rows i of one packed block (x rows `ldx` apart).
#if defined(HEPML_EMITTED_GEMM_VECTOR)
// Two vectors of columns (four at the x86-64 baseline's 4-float vectors, as
// gemm.h's main tile: enough independent accumulators to hide the latency).
inline constexpr int64_t kPointwiseCols = kGemmNR;
static_assert(kPointwiseCols == 2 * kGemmVW || kPointwiseCols == 4 * kGemmVW, "two or four vectors per row");
inline void PointwiseTile(int64_t c, const float* a, const float* x, int64_t ldx, float* t) {
  constexpr int64_t vw = kGemmVW;
  for (int64_t h = 0; h < kPointwiseCols; h += 2 * vw) {
    GemmVec s00 = {}, s01 = {}, s10 = {}, s11 = {}, s20 = {}, s21 = {}, s30 = {}, s31 = {}, b0, b1;
    const float* ak = a;
    const float* xk = x + h;
    for (int64_t k = 0; k < c; ++k, ak += kPointwiseRows, xk += ldx) {
      std::memcpy(&b0, xk, sizeof(GemmVec));
      std::memcpy(&b1, xk + vw, sizeof(GemmVec));
      s00 += ak[0] * b0;
      s01 += ak[0] * b1;
      s10 += ak[1] * b0;
      s11 += ak[1] * b1;
      s20 += ak[2] * b0;
      s21 += ak[2] * b1;
      s30 += ak[3] * b0;
      s31 += ak[3] * b1;
    }
    float* th = t + h;
    std::memcpy(th, &s00, sizeof(GemmVec));
    std::memcpy(th + vw, &s01, sizeof(GemmVec));
    std::memcpy(th + kPointwiseCols, &s10, sizeof(GemmVec));
    std::memcpy(th + kPointwiseCols + vw, &s11, sizeof(GemmVec));
    std::memcpy(th + 2 * kPointwiseCols, &s20, sizeof(GemmVec));
    std::memcpy(th + 2 * kPointwiseCols + vw, &s21, sizeof(GemmVec));
    std::memcpy(th + 3 * kPointwiseCols, &s30, sizeof(GemmVec));
    std::memcpy(th + 3 * kPointwiseCols + vw, &s31, sizeof(GemmVec));
  }
}
#else
inline constexpr int64_t kPointwiseCols = 16;
inline void PointwiseTile(int64_t c, const float* a, const float* x, int64_t ldx, float* t) {
  for (int64_t i = 0; i < kPointwiseRows * kPointwiseCols; ++i) t[i] = 0.f;
  for (int64_t k = 0; k < c; ++k)
    for (int64_t i = 0; i < kPointwiseRows; ++i)
      for (int64_t j = 0; j < kPointwiseCols; ++j) t[i * kPointwiseCols + j] += a[k * kPointwiseRows + i] * x[k * ldx + j];
}
#endif

// Floats of scratch ConvPointwise needs: one panel of c input rows of a
// tile's columns (at most 32 on any target).
inline constexpr int64_t kPointwiseMaxCols = 32;
static_assert(kPointwiseCols <= kPointwiseMaxCols, "a pointwise tile fits the scratch panel");
inline int64_t ConvPointwiseScratchFloats(int64_t c) { return c * kPointwiseMaxCols; }

// y[n][m][P] = act(w x[n][c][P] + bias) for batch images of P positions; wp
// from PackPointwiseWeights, bias [m] or null. Each tile's columns of x are
// first copied to a contiguous panel in `scratch` that every block of output
// channels then reads: rows of x P floats apart (P often a power of two)
// would fall in few cache sets.
inline void ConvPointwise(int64_t batch, int64_t c, int64_t m, int64_t p, const float* x, const float* wp,
                          const float* bias, Act act, float act_alpha, float act_beta, float* scratch, float* y) {
  constexpr int64_t kR = kPointwiseRows, kC = kPointwiseCols;
  float t[kR * kC];
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * c * p;
    float* yn = y + n * m * p;
    for (int64_t j = 0; j < p; j += kC) {
      // The tile's columns of x (zeros past p: their results are not stored).
      const int64_t cols = p - j < kC ? p - j : kC;
      for (int64_t k = 0; k < c; ++k) {
        std::memcpy(scratch + k * kC, xn + k * p + j, sizeof(float) * static_cast<size_t>(cols));
        for (int64_t q = cols; q < kC; ++q) scratch[k * kC + q] = 0.f;
      }
      for (int64_t r0 = 0; r0 < m; r0 += kR) {
        const int64_t rows = m - r0 < kR ? m - r0 : kR;
        PointwiseTile(c, wp + r0 * c, scratch, kC, t);
        for (int64_t i = 0; i < rows; ++i) {
          float* ti = t + i * kC;
          const float bv = bias != nullptr ? bias[r0 + i] : 0.f;
          for (int64_t x2 = 0; x2 < kC; ++x2) ti[x2] += bv;
          ActInPlace(act, ti, cols, act_alpha, act_beta);
          std::memcpy(yn + (r0 + i) * p + j, ti, sizeof(float) * static_cast<size_t>(cols));
        }
      }
    }
  }
}

// ---- 3x3, stride 1, pads 1 (one group, no dilation).

// Winograd F(2x2, 3x3): each 2x2 block of outputs (a tile) comes from the
// 4x4 input patch d around it, with 16 products per (input, output) channel
// pair instead of 36:
//   V = B^T d B (per tile and input channel), U = G g G^T (per channel pair,
//   at compile time), M[xi] = V[xi] U[xi] for the 16 positions xi of a 4x4
//   tile (one GEMM each: [tiles, c] x [c, m]), Y = A^T M A.
// Rounding differs from the direct sum by a few ulps of the inputs' scale
// (the transforms add and subtract before the products), as in the runtime's
// Winograd kernel.

// Channel counts are padded to a multiple of kWinogradPad in the layouts
// below (zeros in the padding), so that the transforms run on whole vectors
// of any target up to 16 floats; the weights are padded when compiled.
inline constexpr int64_t kWinogradPad = 16;
inline int64_t WinogradPadded(int64_t c) { return (c + kWinogradPad - 1) / kWinogradPad * kWinogradPad; }

// u[xi][c][mp] = (G g G^T)[xi] for w[m][c][3][3], mp = WinogradPadded(m)
// (columns past m zero): the weights as Conv3x3Winograd reads them, 16 * c *
// mp floats. Sums in double.
inline void WinogradTransformWeights(int64_t m, int64_t c, const float* w, float* u) {
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  const int64_t mp = WinogradPadded(m);
  for (int64_t i = 0; i < 16 * c * mp; ++i) u[i] = 0.f;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* g = w + (r * c + ch) * 9;
      double gg[4][3];  // G g
      for (int a = 0; a < 4; ++a)
        for (int j = 0; j < 3; ++j)
          gg[a][j] = kG[a][0] * g[0 * 3 + j] + kG[a][1] * g[1 * 3 + j] + kG[a][2] * g[2 * 3 + j];
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) {
          const double v = gg[a][0] * kG[b][0] + gg[a][1] * kG[b][1] + gg[a][2] * kG[b][2];
          u[((a * 4 + b) * c + ch) * mp + r] = static_cast<float>(v);
        }
    }
}

// Tiles of one image, rounded up to the product's 4-tile row blocks.
inline int64_t WinogradTiles(int64_t h, int64_t w) { return ((h + 1) / 2 * ((w + 1) / 2) + 3) / 4 * 4; }

// Floats of scratch Conv3x3Winograd needs for one image of c x h x w.
inline int64_t WinogradScratchFloats(int64_t c, int64_t m, int64_t h, int64_t w) {
  const int64_t cp = WinogradPadded(c), mp = WinogradPadded(m), tiles = WinogradTiles(h, w);
  return ((h + 1) / 2 * 2 + 2) * ((w + 1) / 2 * 2 + 2) * cp + 16 * tiles * (cp + mp) + 4 * mp;
}

// The three steps of Conv3x3Winograd over `lanes` channels at a time (a
// vector of the target, or 1 in the portable code). d: the 4x4 patch's
// rows, `cs` floats between columns; v: V[0] of this tile, `xs` floats
// between V[xi] and V[xi + 1].
#if defined(HEPML_EMITTED_GEMM_VECTOR)
#define HEPML_WG_LDV(v, p) std::memcpy(&(v), (p), sizeof(GemmVec))
#define HEPML_WG_STV(p, v) std::memcpy((p), &(v), sizeof(GemmVec))
inline constexpr int64_t kWinogradLanes = kGemmVW;
#endif

inline void WinogradInputTile(int64_t cp, const float* d0, int64_t pitch, int64_t cs, float* v, int64_t xs) {
#if defined(HEPML_EMITTED_GEMM_VECTOR)
  for (int64_t ch = 0; ch < cp; ch += kWinogradLanes) {
    GemmVec b[4][4], e0, e1, e2, e3;
    for (int j = 0; j < 4; ++j) {
      const float* p = d0 + j * cs + ch;
      HEPML_WG_LDV(e0, p);
      HEPML_WG_LDV(e1, p + pitch);
      HEPML_WG_LDV(e2, p + 2 * pitch);
      HEPML_WG_LDV(e3, p + 3 * pitch);
      b[0][j] = e0 - e2;  // B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
      b[1][j] = e1 + e2;
      b[2][j] = e2 - e1;
      b[3][j] = e1 - e3;
    }
    for (int a = 0; a < 4; ++a) {  // (B^T d) B: the same along the columns
      const GemmVec o0 = b[a][0] - b[a][2], o1 = b[a][1] + b[a][2], o2 = b[a][2] - b[a][1], o3 = b[a][1] - b[a][3];
      HEPML_WG_STV(v + (4 * a + 0) * xs + ch, o0);
      HEPML_WG_STV(v + (4 * a + 1) * xs + ch, o1);
      HEPML_WG_STV(v + (4 * a + 2) * xs + ch, o2);
      HEPML_WG_STV(v + (4 * a + 3) * xs + ch, o3);
    }
  }
#else
  for (int64_t ch = 0; ch < cp; ++ch) {
    float b[4][4];
    for (int j = 0; j < 4; ++j) {
      const float* p = d0 + j * cs + ch;
      const float e0 = p[0], e1 = p[pitch], e2 = p[2 * pitch], e3 = p[3 * pitch];
      b[0][j] = e0 - e2;
      b[1][j] = e1 + e2;
      b[2][j] = e2 - e1;
      b[3][j] = e1 - e3;
    }
    for (int a = 0; a < 4; ++a) {
      v[(4 * a + 0) * xs + ch] = b[a][0] - b[a][2];
      v[(4 * a + 1) * xs + ch] = b[a][1] + b[a][2];
      v[(4 * a + 2) * xs + ch] = b[a][2] - b[a][1];
      v[(4 * a + 3) * xs + ch] = b[a][1] - b[a][3];
    }
  }
#endif
}

// mm[t][0..mp) = v[t][0..c) x u[c][mp] for t < tiles (a multiple of 4).
inline void WinogradProduct(int64_t tiles, int64_t c, int64_t cp, int64_t mp, const float* v, const float* u,
                            float* mm) {
#if defined(HEPML_EMITTED_GEMM_VECTOR)
  constexpr int64_t vw = kWinogradLanes;
  int64_t t0 = 0;
#if defined(__AVX512F__)
  // 32 vector registers: blocks of 8 tiles x 2 vectors (sixteen
  // accumulators), each k's two weight vectors loaded once for 16
  // multiply-adds. The 4x2 tile below reloads them as a memory operand of
  // each FMA, and at one 512-bit load per cycle the loads, not the FMAs,
  // bound it (calo_cnn 12% faster at batch 1). Same sums in the same order.
  for (; t0 + 8 <= tiles && mp % (2 * vw) == 0; t0 += 8) {
    const float* a = v + t0 * cp;
    float* c0 = mm + t0 * mp;
    for (int64_t r = 0; r < mp; r += 2 * vw) {
      GemmVec s[8][2] = {}, b0, b1;
      for (int64_t k = 0; k < c; ++k) {
        HEPML_WG_LDV(b0, u + k * mp + r);
        HEPML_WG_LDV(b1, u + k * mp + r + vw);
        for (int i = 0; i < 8; ++i) {
          const float av = a[i * cp + k];
          s[i][0] += av * b0;
          s[i][1] += av * b1;
        }
      }
      for (int i = 0; i < 8; ++i) {
        HEPML_WG_STV(c0 + i * mp + r, s[i][0]);
        HEPML_WG_STV(c0 + i * mp + r + vw, s[i][1]);
      }
    }
  }
#endif
  for (int64_t t = t0; t < tiles; t += 4) {
    const float *a0 = v + t * cp, *a1 = a0 + cp, *a2 = a1 + cp, *a3 = a2 + cp;
    float* c0 = mm + t * mp;
    int64_t r = 0;
    for (; r + 2 * vw <= mp; r += 2 * vw) {
      GemmVec s00 = {}, s01 = {}, s10 = {}, s11 = {}, s20 = {}, s21 = {}, s30 = {}, s31 = {}, b0, b1;
      for (int64_t k = 0; k < c; ++k) {
        HEPML_WG_LDV(b0, u + k * mp + r);
        HEPML_WG_LDV(b1, u + k * mp + r + vw);
        s00 += a0[k] * b0;
        s01 += a0[k] * b1;
        s10 += a1[k] * b0;
        s11 += a1[k] * b1;
        s20 += a2[k] * b0;
        s21 += a2[k] * b1;
        s30 += a3[k] * b0;
        s31 += a3[k] * b1;
      }
      HEPML_WG_STV(c0 + r, s00);
      HEPML_WG_STV(c0 + r + vw, s01);
      HEPML_WG_STV(c0 + mp + r, s10);
      HEPML_WG_STV(c0 + mp + r + vw, s11);
      HEPML_WG_STV(c0 + 2 * mp + r, s20);
      HEPML_WG_STV(c0 + 2 * mp + r + vw, s21);
      HEPML_WG_STV(c0 + 3 * mp + r, s30);
      HEPML_WG_STV(c0 + 3 * mp + r + vw, s31);
    }
    for (; r < mp; r += vw) {
      GemmVec s0 = {}, s1 = {}, s2 = {}, s3 = {}, b0;
      for (int64_t k = 0; k < c; ++k) {
        HEPML_WG_LDV(b0, u + k * mp + r);
        s0 += a0[k] * b0;
        s1 += a1[k] * b0;
        s2 += a2[k] * b0;
        s3 += a3[k] * b0;
      }
      HEPML_WG_STV(c0 + r, s0);
      HEPML_WG_STV(c0 + mp + r, s1);
      HEPML_WG_STV(c0 + 2 * mp + r, s2);
      HEPML_WG_STV(c0 + 3 * mp + r, s3);
    }
  }
#else
  for (int64_t t = 0; t < tiles; ++t)
    for (int64_t r = 0; r < mp; r += kWinogradPad) {
      float s[kWinogradPad] = {};
      for (int64_t k = 0; k < c; ++k)
        for (int64_t x = 0; x < kWinogradPad; ++x) s[x] += v[t * cp + k] * u[k * mp + r + x];
      for (int64_t x = 0; x < kWinogradPad; ++x) mm[t * mp + r + x] = s[x];
    }
#endif
}

// o[i][0..mp) for the tile's outputs i = 2 * row + column: A^T M A.
inline void WinogradOutputTile(int64_t mp, const float* mt, int64_t ms, float* o) {
#if defined(HEPML_EMITTED_GEMM_VECTOR)
  for (int64_t r = 0; r < mp; r += kWinogradLanes) {
    GemmVec s0[4], s1[4], m0, m1, m2, m3;
    for (int j = 0; j < 4; ++j) {
      HEPML_WG_LDV(m0, mt + j * ms + r);
      HEPML_WG_LDV(m1, mt + (4 + j) * ms + r);
      HEPML_WG_LDV(m2, mt + (8 + j) * ms + r);
      HEPML_WG_LDV(m3, mt + (12 + j) * ms + r);
      s0[j] = m0 + m1 + m2;
      s1[j] = m1 - m2 - m3;
    }
    const GemmVec y00 = s0[0] + s0[1] + s0[2], y01 = s0[1] - s0[2] - s0[3], y10 = s1[0] + s1[1] + s1[2],
                  y11 = s1[1] - s1[2] - s1[3];
    HEPML_WG_STV(o + r, y00);
    HEPML_WG_STV(o + mp + r, y01);
    HEPML_WG_STV(o + 2 * mp + r, y10);
    HEPML_WG_STV(o + 3 * mp + r, y11);
  }
#else
  for (int64_t r = 0; r < mp; ++r) {
    float s0[4], s1[4];
    for (int j = 0; j < 4; ++j) {
      const float m0 = mt[j * ms + r], m1 = mt[(4 + j) * ms + r], m2 = mt[(8 + j) * ms + r], m3 = mt[(12 + j) * ms + r];
      s0[j] = m0 + m1 + m2;
      s1[j] = m1 - m2 - m3;
    }
    o[r] = s0[0] + s0[1] + s0[2];
    o[mp + r] = s0[1] - s0[2] - s0[3];
    o[2 * mp + r] = s1[0] + s1[1] + s1[2];
    o[3 * mp + r] = s1[1] - s1[2] - s1[3];
  }
#endif
}
#if defined(HEPML_EMITTED_GEMM_VECTOR)
#undef HEPML_WG_LDV
#undef HEPML_WG_STV
#endif

// y[n][m][h][w] = act(conv3x3(x[n][c][h][w]) + bias) with pads 1 and stride
// 1; u from WinogradTransformWeights, bias [m] or null, scratch
// WinogradScratchFloats(c, m, h, w) floats (reused image by image). With
// `pool`, y is MaxPool 2x2 / 2 of that, [n][m][h / 2][w / 2]: the pooling
// windows are the tiles, so the full-size output is never stored.
inline void Conv3x3Winograd(int64_t batch, int64_t c, int64_t m, int64_t h, int64_t w, const float* x,
                            const float* u, const float* bias, Act act, float act_alpha, float act_beta, bool pool,
                            float* scratch, float* y) {
  const int64_t ty_n = (h + 1) / 2, tx_n = (w + 1) / 2, tiles = WinogradTiles(h, w);
  const int64_t cp = WinogradPadded(c), mp = WinogradPadded(m);
  const int64_t ph = 2 * ty_n + 2, pw = 2 * tx_n + 2;  // the padded input, rounded up to whole tiles
  float* pad = scratch;                                // [ph][pw][cp]: channels innermost
  float* v = pad + ph * pw * cp;                       // [16][tiles][cp]
  float* mm = v + 16 * tiles * cp;                     // [16][tiles][mp]
  float* o = mm + 16 * tiles * mp;                     // [4][mp]: one tile's outputs
  const int64_t in_size = h * w, oh = pool ? h / 2 : h, ow = pool ? w / 2 : w, out_size = oh * ow;
  // Rows of V past the last tile (the product's last row block) stay zero;
  // the input transform writes all the others.
  const int64_t real_tiles = ty_n * tx_n;
  if (real_tiles < tiles)
    for (int xi = 0; xi < 16; ++xi)
      std::memset(v + (xi * tiles + real_tiles) * cp, 0, sizeof(float) * static_cast<size_t>((tiles - real_tiles) * cp));
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * c * in_size;
    float* yn = y + n * m * out_size;
    if (c == cp) {
      // Only the border is zero: the copy below writes every inner position.
      std::memset(pad, 0, sizeof(float) * static_cast<size_t>(pw * cp));
      for (int64_t r = 1; r <= h; ++r) {
        std::memset(pad + r * pw * cp, 0, sizeof(float) * static_cast<size_t>(cp));
        std::memset(pad + (r * pw + w + 1) * cp, 0, sizeof(float) * static_cast<size_t>((pw - w - 1) * cp));
      }
      std::memset(pad + (h + 1) * pw * cp, 0, sizeof(float) * static_cast<size_t>((ph - h - 1) * pw * cp));
    } else {
      std::memset(pad, 0, sizeof(float) * static_cast<size_t>(ph * pw * cp));
    }
    // Channels innermost, each position's channels stored contiguously.
    for (int64_t r = 0; r < h; ++r) {
      float* dst = pad + ((r + 1) * pw + 1) * cp;
      for (int64_t s = 0; s < w; ++s) {
        const float* src = xn + r * w + s;
        for (int64_t ch = 0; ch < c; ++ch) dst[s * cp + ch] = src[ch * in_size];
      }
    }
    for (int64_t ty = 0; ty < ty_n; ++ty)
      for (int64_t tx = 0; tx < tx_n; ++tx)
        WinogradInputTile(cp, pad + (2 * ty * pw + 2 * tx) * cp, pw * cp, cp, v + (ty * tx_n + tx) * cp,
                          tiles * cp);
    for (int xi = 0; xi < 16; ++xi)
      WinogradProduct(tiles, c, cp, mp, v + xi * tiles * cp, u + xi * c * mp, mm + xi * tiles * mp);
    for (int64_t ty = 0; ty < ty_n; ++ty)
      for (int64_t tx = 0; tx < tx_n; ++tx) {
        if (pool && (ty >= oh || tx >= ow)) continue;  // a partial tile: no pooling window
        WinogradOutputTile(mp, mm + (ty * tx_n + tx) * mp, tiles * mp, o);
        if (pool) {
          // Pool's comparisons in Pool's order: the window row by row.
          float* yt = yn + ty * ow + tx;
          for (int64_t r = 0; r < m; ++r) {
            const float bv = bias != nullptr ? bias[r] : 0.f;
            float best = -INFINITY;
            for (int i = 0; i < 4; ++i) {
              const float v = ApplyAct(act, o[i * mp + r] + bv, act_alpha, act_beta);
              best = v > best ? v : best;
            }
            yt[r * out_size] = best;
          }
          continue;
        }
        const int64_t oy = 2 * ty, ox = 2 * tx;
        const int64_t rows = oy + 1 < h ? 2 : 1, cols = ox + 1 < w ? 2 : 1;
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) {
            const float* oi = o + (2 * i + j) * mp;
            float* yi = yn + (oy + i) * w + ox + j;
            if (act == Act::kRelu) {
              for (int64_t r = 0; r < m; ++r) {
                const float s = oi[r] + (bias != nullptr ? bias[r] : 0.f);
                yi[r * in_size] = s > 0.f ? s : 0.f;
              }
            } else {
              for (int64_t r = 0; r < m; ++r)
                yi[r * in_size] = ApplyAct(act, oi[r] + (bias != nullptr ? bias[r] : 0.f), act_alpha, act_beta);
            }
          }
      }
  }
}

// Output columns per step of the direct kernel (and the padding of its rows).
inline constexpr int64_t kConvDirectBlock = 32;

// Floats of scratch Conv3x3Direct needs: one image's channels padded.
inline int64_t ConvDirectScratchFloats(int64_t c, int64_t h, int64_t w) {
  const int64_t pw = (w + kConvDirectBlock - 1) / kConvDirectBlock * kConvDirectBlock + 2;
  return c * (h + 2) * pw + 8 * kConvDirectBlock;
}

// acc[i][0..kConvDirectBlock) = sum over c channels and the 9 taps of
// a_i[ch * 9 + tap] * p[ch * plane + ky * pw + kx + 0..kConvDirectBlock), for
// the `rows` (1 or 4) output channels a_i = a + i * lda.
inline void ConvDirectTile(int rows, int64_t c, const float* a, int64_t lda, const float* p, int64_t plane,
                           int64_t pw, float* acc) {
#if defined(HEPML_EMITTED_GEMM_VECTOR)
  constexpr int64_t vw = kGemmVW;
  static_assert(kConvDirectBlock % (2 * vw) == 0, "a block is whole vector pairs");
  for (int64_t x = 0; x < kConvDirectBlock; x += 2 * vw) {
    if (rows == 4) {
      GemmVec s00 = {}, s01 = {}, s10 = {}, s11 = {}, s20 = {}, s21 = {}, s30 = {}, s31 = {}, b0, b1;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t ky = 0; ky < 3; ++ky)
          for (int64_t kx = 0; kx < 3; ++kx) {
            const float* b = p + ch * plane + ky * pw + kx + x;
            const int64_t k = ch * 9 + ky * 3 + kx;
            std::memcpy(&b0, b, sizeof(GemmVec));
            std::memcpy(&b1, b + vw, sizeof(GemmVec));
            s00 += a[k] * b0;
            s01 += a[k] * b1;
            s10 += a[lda + k] * b0;
            s11 += a[lda + k] * b1;
            s20 += a[2 * lda + k] * b0;
            s21 += a[2 * lda + k] * b1;
            s30 += a[3 * lda + k] * b0;
            s31 += a[3 * lda + k] * b1;
          }
      std::memcpy(acc + x, &s00, sizeof(GemmVec));
      std::memcpy(acc + x + vw, &s01, sizeof(GemmVec));
      std::memcpy(acc + kConvDirectBlock + x, &s10, sizeof(GemmVec));
      std::memcpy(acc + kConvDirectBlock + x + vw, &s11, sizeof(GemmVec));
      std::memcpy(acc + 2 * kConvDirectBlock + x, &s20, sizeof(GemmVec));
      std::memcpy(acc + 2 * kConvDirectBlock + x + vw, &s21, sizeof(GemmVec));
      std::memcpy(acc + 3 * kConvDirectBlock + x, &s30, sizeof(GemmVec));
      std::memcpy(acc + 3 * kConvDirectBlock + x + vw, &s31, sizeof(GemmVec));
    } else {
      GemmVec s0 = {}, s1 = {}, b0, b1;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t ky = 0; ky < 3; ++ky)
          for (int64_t kx = 0; kx < 3; ++kx) {
            const float* b = p + ch * plane + ky * pw + kx + x;
            const float av = a[ch * 9 + ky * 3 + kx];
            std::memcpy(&b0, b, sizeof(GemmVec));
            std::memcpy(&b1, b + vw, sizeof(GemmVec));
            s0 += av * b0;
            s1 += av * b1;
          }
      std::memcpy(acc + x, &s0, sizeof(GemmVec));
      std::memcpy(acc + x + vw, &s1, sizeof(GemmVec));
    }
  }
#else
  for (int i = 0; i < rows; ++i) {
    float* ai = acc + i * kConvDirectBlock;
    for (int64_t x = 0; x < kConvDirectBlock; ++x) ai[x] = 0.f;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t ky = 0; ky < 3; ++ky)
        for (int64_t kx = 0; kx < 3; ++kx) {
          const float* b = p + ch * plane + ky * pw + kx;
          const float av = a[i * lda + ch * 9 + ky * 3 + kx];
          for (int64_t x = 0; x < kConvDirectBlock; ++x) ai[x] += av * b[x];
        }
  }
#endif
}

// The same convolution as Conv3x3Winograd summed directly (w[m][c][3][3] as
// the model stores it), pooled the same way with `pool`: for few input
// channels, where Winograd's transforms cost more than the products they
// save. Register tiles of 4 output channels x kConvDirectBlock columns of an
// output row read the padded input at the 9 taps' offsets (no column matrix).
inline void Conv3x3Direct(int64_t batch, int64_t c, int64_t m, int64_t h, int64_t w, const float* x,
                          const float* wt, const float* bias, Act act, float act_alpha, float act_beta, bool pool,
                          float* scratch, float* y) {
  constexpr int64_t kB = kConvDirectBlock;
  const int64_t pw = (w + kB - 1) / kB * kB + 2, plane = (h + 2) * pw;
  const int64_t in_size = h * w, oh = pool ? h / 2 : h, ow = pool ? w / 2 : w, out_size = oh * ow;
  float* acc = scratch + c * plane;  // [2][4][kB]: one or two output rows
  for (int64_t n = 0; n < batch; ++n) {
    std::memset(scratch, 0, sizeof(float) * static_cast<size_t>(c * plane));
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t r = 0; r < h; ++r)
        std::memcpy(scratch + ch * plane + (r + 1) * pw + 1, x + (n * c + ch) * in_size + r * w,
                    sizeof(float) * static_cast<size_t>(w));
    // Output channels 4 at a time, those past the last multiple of 4 one by one.
    for (int64_t r = 0; r < m;) {
      const int rows = m - r >= 4 ? 4 : 1;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < w; ox += kB) {
          const int64_t cols = w - ox < kB ? w - ox : kB;
          const int64_t iy = pool ? 2 * oy : oy;
          for (int64_t dy = 0; dy < (pool ? 2 : 1); ++dy) {
            float* a = acc + dy * 4 * kB;
            ConvDirectTile(rows, c, wt + r * c * 9, c * 9, scratch + (iy + dy) * pw + ox, plane, pw, a);
            for (int i = 0; i < rows; ++i) {
              float* ai = a + i * kB;
              const float bv = bias != nullptr ? bias[r + i] : 0.f;
              for (int64_t j = 0; j < cols; ++j) ai[j] += bv;
              ActInPlace(act, ai, cols, act_alpha, act_beta);
            }
          }
          for (int i = 0; i < rows; ++i) {
            const float* a0 = acc + i * kB;
            float* yr = y + (n * m + r + i) * out_size + oy * ow;
            if (!pool) {
              std::memcpy(yr + ox, a0, sizeof(float) * static_cast<size_t>(cols));
              continue;
            }
            // Pool's comparisons in Pool's order: the window row by row.
            const float* a1 = a0 + 4 * kB;
            for (int64_t j = 0; 2 * j + 1 < cols; ++j) {
              float best = -INFINITY;
              best = a0[2 * j] > best ? a0[2 * j] : best;
              best = a0[2 * j + 1] > best ? a0[2 * j + 1] : best;
              best = a1[2 * j] > best ? a1[2 * j] : best;
              best = a1[2 * j + 1] > best ? a1[2 * j + 1] : best;
              yr[ox / 2 + j] = best;
            }
          }
        }
      r += rows;
    }
  }
}

// ConvTranspose over up to 3 spatial dims (missing dims are 1): each input
// pixel scatters w[c_in, c_out / group, kernel...] into the output.
inline void ConvTranspose(const ConvGeometry& g, int64_t batch, int64_t c_in, int64_t c_out, int64_t group,
                          const float* x, const float* w, const float* bias, float* y) {
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, st[3] = {1, 1, 1}, dl[3] = {1, 1, 1},
          pb[3] = {0, 0, 0};
  for (int d = 0; d < g.spatial; ++d) {
    const int at = 3 - g.spatial + d;
    in[at] = g.in[d];
    out[at] = g.out[d];
    k[at] = g.kernel[d];
    st[at] = g.stride[d];
    dl[at] = g.dilation[d];
    pb[at] = g.pad_begin[d];
  }
  const int64_t in_size = in[0] * in[1] * in[2], out_size = out[0] * out[1] * out[2], ksize = k[0] * k[1] * k[2];
  const int64_t cg = c_in / group, mg = c_out / group;
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t c = 0; c < c_out; ++c) {
      float* py = y + (n * c_out + c) * out_size;
      const float b = bias ? bias[c] : 0.f;
      for (int64_t i = 0; i < out_size; ++i) py[i] = b;
    }
    for (int64_t gi = 0; gi < group; ++gi)
      for (int64_t ic = 0; ic < cg; ++ic) {
        const float* px = x + (n * c_in + gi * cg + ic) * in_size;
        for (int64_t oc = 0; oc < mg; ++oc) {
          const float* pw = w + ((gi * cg + ic) * mg + oc) * ksize;
          float* py = y + (n * c_out + gi * mg + oc) * out_size;
          for (int64_t i0 = 0; i0 < in[0]; ++i0)
            for (int64_t i1 = 0; i1 < in[1]; ++i1)
              for (int64_t i2 = 0; i2 < in[2]; ++i2) {
                const float v = px[(i0 * in[1] + i1) * in[2] + i2];
                for (int64_t k0 = 0; k0 < k[0]; ++k0) {
                  const int64_t o0 = i0 * st[0] - pb[0] + k0 * dl[0];
                  if (o0 < 0 || o0 >= out[0]) continue;
                  for (int64_t k1 = 0; k1 < k[1]; ++k1) {
                    const int64_t o1 = i1 * st[1] - pb[1] + k1 * dl[1];
                    if (o1 < 0 || o1 >= out[1]) continue;
                    for (int64_t k2 = 0; k2 < k[2]; ++k2) {
                      const int64_t o2 = i2 * st[2] - pb[2] + k2 * dl[2];
                      if (o2 < 0 || o2 >= out[2]) continue;
                      py[(o0 * out[1] + o1) * out[2] + o2] += v * pw[(k0 * k[1] + k1) * k[2] + k2];
                    }
                  }
                }
              }
        }
      }
  }
}

}  // namespace hepml_emitted
