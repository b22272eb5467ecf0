// Convolution of the emitted code: im2col into a planned scratch buffer, then
// one GEMM per image and group (weights [C_out, C_in/group * kernel] are the
// GEMM's A). Spatial rank 1 to 3; pads, strides, dilations, groups.
#pragma once

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
