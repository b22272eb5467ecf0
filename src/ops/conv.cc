// Convolution operators: Conv, ConvTranspose, Col2Im and DeformConv, all as
// patch gathering (im2col) or scattering (col2im) around the shared GEMM
// routine of linalg.h. Also defines the window geometry of conv.h.
#include "ops/conv.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "ops/direct_conv.h"
#include "ops/gemm.h"
#include "ops/kernel_util.h"
#include "ops/linalg.h"
#include "ops/op_registry.h"
#include "ops/scratch.h"
#include "ops/winograd_conv.h"
#include "tensor/dispatch.h"

namespace hepml::ops {

namespace {

// Error unless inputs [0, n) are all present.
absl::Status RequireInputs(const KernelContext& ctx, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!ctx.HasInput(i)) return ctx.Error("input ", i, " is required");
  }
  return absl::OkStatus();
}


int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// An ints attribute with one value per spatial dim, or `fill` repeated.
absl::StatusOr<Shape> PerDimAttr(const Node& node, std::string_view name, int count, int64_t fill,
                                 int64_t min_value) {
  std::vector<int64_t> v = node.GetInts(name);
  if (v.empty()) return Shape(count, fill);
  if (static_cast<int>(v.size()) != count) {
    return absl::InvalidArgumentError(absl::StrCat("attribute '", std::string(name), "' has ", v.size(),
                                                   " values, expected ", count));
  }
  for (int64_t x : v) {
    if (x < min_value) {
      return absl::InvalidArgumentError(absl::StrCat("attribute '", std::string(name), "' has value ", x,
                                                     ", expected >= ", min_value));
    }
  }
  return Shape(v.begin(), v.end());
}

}  // namespace

absl::StatusOr<WindowGeometry> ComputeWindowGeometry(const Node& node,
                                                     absl::Span<const int64_t> in,
                                                     absl::Span<const int64_t> kernel,
                                                     const WindowOptions& options) {
  WindowGeometry g;
  g.nd = static_cast<int>(in.size());
  const int nd = g.nd;
  g.in.assign(in.begin(), in.end());
  g.kernel.assign(kernel.begin(), kernel.end());
  if (static_cast<int>(kernel.size()) != nd) {
    return absl::InvalidArgumentError(absl::StrCat("kernel has ", kernel.size(),
                                                   " dims for ", nd, " spatial dims"));
  }
  for (int64_t k : kernel) {
    if (k < 1) return absl::InvalidArgumentError(absl::StrCat("kernel size ", k, " is not positive"));
  }
  auto strides = PerDimAttr(node, "strides", nd, 1, 1);
  if (!strides.ok()) return strides.status();
  g.strides = *strides;
  if (!options.allow_dilations && node.HasAttribute("dilations")) {
    auto d = PerDimAttr(node, "dilations", nd, 1, 1);
    if (!d.ok()) return d.status();
    for (int64_t x : *d)
      if (x != 1) return absl::InvalidArgumentError("attribute 'dilations' is not supported in this opset");
  }
  auto dilations = PerDimAttr(node, "dilations", nd, 1, 1);
  if (!dilations.ok()) return dilations.status();
  g.dilations = *dilations;
  g.pads_begin.assign(nd, 0);
  g.pads_end.assign(nd, 0);
  g.out.assign(nd, 0);
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (int d = 0; d < nd; ++d) {
      g.out[d] = CeilDiv(in[d], g.strides[d]);
      const int64_t total =
          std::max<int64_t>(0, (g.out[d] - 1) * g.strides[d] + g.Extent(d) - in[d]);
      const int64_t small = total / 2, big = total - small;
      g.pads_begin[d] = auto_pad == "SAME_UPPER" ? small : big;
      g.pads_end[d] = auto_pad == "SAME_UPPER" ? big : small;
    }
    return g;
  }
  if (auto_pad == "VALID") {
    for (int d = 0; d < nd; ++d) {
      g.out[d] = in[d] >= g.Extent(d) ? (in[d] - g.Extent(d)) / g.strides[d] + 1 : 0;
      if (g.out[d] == 0 && in[d] > 0) {
        return absl::InvalidArgumentError(absl::StrCat("window of extent ", g.Extent(d),
                                                       " is larger than input dim ", in[d]));
      }
    }
    return g;
  }
  if (auto_pad != "NOTSET" && !auto_pad.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown auto_pad '", auto_pad, "'"));
  }
  std::vector<int64_t> pads = node.GetInts("pads");
  if (!pads.empty()) {
    if (static_cast<int>(pads.size()) != 2 * nd) {
      return absl::InvalidArgumentError(absl::StrCat("attribute 'pads' has ", pads.size(),
                                                     " values, expected ", 2 * nd));
    }
    for (int d = 0; d < nd; ++d) {
      g.pads_begin[d] = pads[d];
      g.pads_end[d] = pads[d + nd];
      if (pads[d] < 0 || pads[d + nd] < 0) {
        return absl::InvalidArgumentError("attribute 'pads' has a negative value");
      }
    }
  }
  for (int d = 0; d < nd; ++d) {
    const int64_t span = in[d] + g.pads_begin[d] + g.pads_end[d] - g.Extent(d);
    if (span < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("window of extent ", g.Extent(d), " is larger than the padded input dim ",
                       in[d] + g.pads_begin[d] + g.pads_end[d]));
    }
    if (options.ceil_mode) {
      g.out[d] = CeilDiv(span, g.strides[d]) + 1;
      // The last window must start inside the input or its begin padding.
      if ((g.out[d] - 1) * g.strides[d] >= in[d] + g.pads_begin[d]) --g.out[d];
    } else {
      g.out[d] = span / g.strides[d] + 1;
    }
  }
  return g;
}

namespace {

// Where the patches of a convolution sit: patch position p (a point of the
// `grid`) with kernel offset q reads image point p * stride - pad + q * dilation.
struct PatchGeometry {
  Shape image;  // spatial dims of the image
  Shape grid;   // spatial dims of the patch positions
  Shape kernel, strides, dilations, pads_begin;
};

// Gathers (kScatter = false: col = patches of img, zero outside) or scatters
// (kScatter = true: img += col at the patch points inside the image) the
// patches of `channels` channels. col is [channels * kernel_size, grid_size].
template <bool kScatter, typename C>
void PatchTransfer(const PatchGeometry& g, int64_t channels, C* img, C* col) {
  const int nd = static_cast<int>(g.image.size());
  const int64_t image_size = NumElements(g.image);
  const int64_t grid_size = NumElements(g.grid);
  const int64_t ksize = NumElements(g.kernel);
  if (grid_size == 0 || ksize == 0) return;
  const Shape img_strides = Strides(g.image);
  const int64_t inner = g.grid[nd - 1];
  const int64_t outer = grid_size / inner;
  const int64_t s_last = g.strides[nd - 1];
  std::vector<int64_t> kpos(nd), opos(nd);
  for (int64_t c = 0; c < channels; ++c) {
    C* plane = img + c * image_size;
    for (int64_t kidx = 0; kidx < ksize; ++kidx) {
      int64_t rest = kidx;
      for (int d = nd; d-- > 0;) {
        kpos[d] = rest % g.kernel[d];
        rest /= g.kernel[d];
      }
      C* row = col + (c * ksize + kidx) * grid_size;
      const int64_t off_last = kpos[nd - 1] * g.dilations[nd - 1] - g.pads_begin[nd - 1];
      // Range of the last grid dim whose image point is inside [0, image).
      const int64_t w = g.image[nd - 1];
      const int64_t lo = std::clamp<int64_t>(CeilDiv(-off_last, s_last), 0, inner);
      const int64_t hi = std::clamp<int64_t>(FloorDiv(w - 1 - off_last, s_last) + 1, lo, inner);
      std::fill(opos.begin(), opos.end(), 0);
      for (int64_t o = 0; o < outer; ++o) {
        C* run = row + o * inner;
        int64_t base = 0;
        bool inside = true;
        for (int d = 0; d + 1 < nd; ++d) {
          const int64_t p = opos[d] * g.strides[d] - g.pads_begin[d] + kpos[d] * g.dilations[d];
          if (p < 0 || p >= g.image[d]) {
            inside = false;
            break;
          }
          base += p * img_strides[d];
        }
        if constexpr (kScatter) {
          if (inside) {
            const int64_t first = base + off_last;  // image index of grid point 0
            for (int64_t x = lo; x < hi; ++x) plane[first + x * s_last] += run[x];
          }
        } else {
          if (!inside) {
            std::fill(run, run + inner, C(0));
          } else {
            const int64_t first = base + off_last;
            std::fill(run, run + lo, C(0));
            if (s_last == 1 && lo < hi) {
              std::copy(plane + first + lo, plane + first + hi, run + lo);
            } else {
              for (int64_t x = lo; x < hi; ++x) run[x] = plane[first + x * s_last];
            }
            std::fill(run + hi, run + inner, C(0));
          }
        }
        for (int d = nd - 1; d-- > 0;) {
          if (++opos[d] < g.grid[d]) break;
          opos[d] = 0;
        }
      }
    }
  }
}

// The largest padded input (floats, all channels of a group) the direct
// convolution kernel reads from: every tile of output channels passes over
// all of it, so it has to stay in the core's L2.
constexpr int64_t kDirectConvMaxInput = int64_t{1} << 16;

// Work (multiply-adds) under which one (batch, group) GEMM is too small to
// split: such convolutions run batch-groups in parallel instead.
constexpr int64_t kSmallGemm = int64_t{1} << 22;

// Runs body(task, col, gemm_ctx) for every task in [0, tasks): in parallel
// over tasks when each is small (each chunk with its own col scratch of
// col_size elements), else one task at a time with the GEMM parallel inside.
// The col scratch is the thread's reusable buffer: no allocation per call
// once warm.
template <typename C, typename F>
void ForEachConvTask(KernelContext& ctx, int64_t tasks, int64_t work_per_task, int64_t col_size,
                     F&& body) {
  if (tasks > 1 && work_per_task < kSmallGemm) {
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(work_per_task, 1));
    ctx.ParallelFor(0, tasks, grain, [&](int64_t lo, int64_t hi) {
      ScratchBuffer<C> col(col_size);
      for (int64_t t = lo; t < hi; ++t) body(t, col.data(), nullptr);
    });
  } else {
    ScratchBuffer<C> col(col_size);
    for (int64_t t = 0; t < tasks; ++t) body(t, col.data(), &ctx);
  }
}

// Input channels from which a 3x3 "same" convolution runs as Winograd
// F(2x2, 3x3): with fewer, the transforms cost more than the products they
// save (calo_cnn's 1 -> 16 first layer stays on the direct kernel).
constexpr int64_t kWinogradMinChannels = 8;

// Prepared state of Conv and ConvTranspose with constant fp32 weights: each
// group's weight matrix, packed once as the GEMM's left operand, and, for a
// 2-D Conv with a window larger than one point, once more in the blocks of
// the direct kernel (direct_conv.h).
struct PackedConvWeights final : KernelState {
  std::vector<PackedA> groups;
  std::vector<DirectConvWeights> direct;
  // 3x3 filters of one group over enough channels: the transformed filters
  // of the Winograd kernel (winograd_conv.h).
  std::optional<WinogradWeights> winograd;
};

// The packed weights of group `gi` when they fit an m x k operand, or null.
const PackedA* PackedGroup(const KernelContext& ctx, int64_t gi, int64_t m, int64_t k) {
  if (ctx.state() == nullptr) return nullptr;
  const auto& groups = ctx.state_as<PackedConvWeights>().groups;
  if (gi >= static_cast<int64_t>(groups.size())) return nullptr;
  const PackedA& p = groups[gi];
  return p.m() == m && p.k() == k ? &p : nullptr;
}

// The direct-kernel weights of group `gi` when they fit m x k, or null.
const DirectConvWeights* DirectGroup(const KernelContext& ctx, int64_t gi, int64_t m, int64_t k) {
  if (ctx.state() == nullptr) return nullptr;
  const auto& groups = ctx.state_as<PackedConvWeights>().direct;
  if (gi >= static_cast<int64_t>(groups.size())) return nullptr;
  const DirectConvWeights& p = groups[gi];
  return p.m() == m && p.k() == k ? &p : nullptr;
}

// C (+)= op(A) * B for one convolution GEMM; op(A) from the packed weights
// when there are any (fp32), else from a.
template <typename C>
void ConvGemm(const PackedA* packed, bool trans_a, int64_t m, int64_t n, int64_t k, const C* a,
              int64_t lda, const C* b, C beta, C* c, const KernelContext* gemm_ctx) {
  if constexpr (std::is_same_v<C, float>) {
    if (packed != nullptr) {
      GemmF32(trans_a, false, m, n, k, 1.0f, nullptr, lda, packed, b, n, nullptr, beta, c, n,
              gemm_ctx);
      return;
    }
  }
  GemmRowMajor<C>(trans_a, false, m, n, k, C(1), a, lda, b, n, beta, c, n, gemm_ctx);
}

// Packs W (input 1) per group when it is a constant fp32 tensor. For Conv,
// group g's A is W[g*M/G : (g+1)*M/G] as an (M/G) x (C/G * kernel) matrix;
// for ConvTranspose (kTranspose) it is the transpose of W[g*C/G : ...] viewed
// as (C/G) x (M/G * kernel).
template <bool kTranspose>
absl::StatusOr<std::unique_ptr<KernelState>> PrepareConvWeights(const PrepareContext& ctx) {
  std::unique_ptr<KernelState> none;
  if (ctx.constant_inputs.size() < 2 || ctx.constant_inputs[1] == nullptr) return none;
  const Tensor& w = *ctx.constant_inputs[1];
  const int64_t group = ctx.node.GetInt("group", 1);
  if (w.dtype() != DType::kFloat32 || w.rank() < 3 || w.size() == 0 || group < 1 ||
      w.dim(0) % group != 0) {
    return none;  // the kernel reports what is wrong
  }
  const int64_t per_group = w.dim(0) / group, row = w.size() / w.dim(0);
  auto state = std::make_unique<PackedConvWeights>();
  for (int64_t gi = 0; gi < group; ++gi) {
    const float* wg = w.data<float>() + gi * per_group * row;
    state->groups.push_back(kTranspose ? PackedA::Pack(true, row, per_group, wg, row)
                                       : PackedA::Pack(false, per_group, row, wg, row));
  }
  if (!kTranspose && w.rank() == 4) {
    for (int64_t gi = 0; gi < group; ++gi) {
      state->direct.push_back(
          DirectConvWeights::Pack(per_group, row, w.data<float>() + gi * per_group * row, row));
    }
    if (group == 1 && w.dim(2) == 3 && w.dim(3) == 3 && w.dim(1) >= kWinogradMinChannels) {
      state->winograd = WinogradWeights::Pack(w.dim(0), w.dim(1), w.data<float>());
    }
  }
  return state;
}

absl::Status CheckSameType(KernelContext& ctx, size_t i) {
  if (ctx.HasInput(i) && ctx.Input(i).dtype() != ctx.Input(0).dtype()) {
    return ctx.Error("input ", i, " has type ", DTypeName(ctx.Input(i).dtype()), ", X has ",
                     DTypeName(ctx.Input(0).dtype()));
  }
  return absl::OkStatus();
}

// Checks the optional bias input (index i) has `channels` elements.
absl::Status CheckBias(KernelContext& ctx, size_t i, int64_t channels) {
  if (!ctx.HasInput(i)) return absl::OkStatus();
  const Tensor& b = ctx.Input(i);
  if (b.rank() != 1 || b.dim(0) != channels) {
    return ctx.Error("bias must have shape [", channels, "], got ", ShapeToString(b.shape()));
  }
  return CheckSameType(ctx, i);
}

// Fills each of `channels` planes of `plane_size` in y with the bias value
// of its channel, or zero without a bias.
template <typename C>
void FillBias(C* y, const C* bias, int64_t batches, int64_t channels, int64_t plane_size) {
  for (int64_t n = 0; n < batches; ++n)
    for (int64_t m = 0; m < channels; ++m) {
      C* p = y + (n * channels + m) * plane_size;
      std::fill(p, p + plane_size, bias ? bias[m] : C(0));
    }
}

// Reads the kernel_shape attribute (when present) and checks it against W.
absl::StatusOr<Shape> KernelShape(const Node& node, const Tensor& w) {
  Shape from_w(w.shape().begin() + 2, w.shape().end());
  std::vector<int64_t> attr = node.GetInts("kernel_shape");
  if (!attr.empty() && Shape(attr.begin(), attr.end()) != from_w) {
    return absl::InvalidArgumentError(absl::StrCat("kernel_shape ", ShapeToString(attr),
                                                   " does not match W of shape ",
                                                   ShapeToString(w.shape())));
  }
  return from_w;
}

// ---------------------------------------------------------------------------
// Conv
// ---------------------------------------------------------------------------

// Output dims: N from X, M from W, and each spatial dim computed when known;
// a symbolic spatial dim is kept where the window preserves the size
// (stride 1, pads summing to the extent - 1, e.g. 1x1 or padded 3x3).
absl::Status InferConv(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2 || outputs.empty()) return absl::OkStatus();
  const TypeInfo& x = ctx.input_types[0];
  const TypeInfo& w = ctx.input_types[1];
  outputs[0] = TypeInfo::Tensor(x.dtype);
  auto ws = KnownShape(w);
  if (!x.has_shape || !ws || x.shape.size() < 3 || ws->size() != x.shape.size()) return absl::OkStatus();
  // Unknown spatial dims stand in as a large size; their outputs are kept
  // only where they do not depend on it.
  constexpr int64_t kStandIn = int64_t{1} << 30;
  Shape in;
  for (size_t d = 2; d < x.shape.size(); ++d) in.push_back(x.shape[d].known() ? x.shape[d].value : kStandIn);
  auto g = ComputeWindowGeometry(ctx.node, in, Shape(ws->begin() + 2, ws->end()));
  if (!g.ok()) return g.status();
  std::vector<Dim> out = {x.shape[0], Dim{(*ws)[0], ""}};
  for (int d = 0; d < g->nd; ++d) {
    const Dim& xd = x.shape[d + 2];
    if (xd.known()) out.push_back(Dim{g->out[d], ""});
    else if (g->strides[d] == 1 && g->pads_begin[d] + g->pads_end[d] == g->Extent(d) - 1) out.push_back(xd);
    else out.push_back(Dim{});
  }
  outputs[0] = TypeInfo::Tensor(x.dtype, std::move(out));
  return absl::OkStatus();
}

// A stride-1 2-D fp32 convolution as an implicit GEMM, without im2col. The
// input planes of a group are copied once into a zero-padded buffer of Hp x
// Wp per channel; then row (c, kh, kw) of the patch matrix is the padded
// buffer itself, shifted by c * Hp * Wp + kh * dh * Wp + kw * dw, read over
// N' = (OH - 1) * Wp + OW points: output pixel (oh, ow) sits at oh * Wp + ow,
// and the Wp - OW points at the end of each row are windows that wrap into
// the next row, computed and dropped. The GEMM engine packs those rows
// straight from the buffer (contiguous runs, no per-pixel bounds checks),
// which costs Wp / OW more columns and saves the im2col pass. The epilogue
// then writes each output row with bias and activation.
//
// With `pool`, py is the MaxPool 2x2/2 of that output ([oh / 2, ow / 2] per
// channel): each channel's rows go to a small staging plane, which is pooled
// into py, so the full-resolution output never reaches memory.
void ShiftedViewConv(KernelContext& ctx, const WindowGeometry& g, int64_t group,
                     const ActivationSpec& act, const float* px, const float* pw,
                     const float* bias, float* py, int64_t batches, int64_t in_ch,
                     int64_t out_ch, bool pool) {
  const int64_t cg = in_ch / group, mg = out_ch / group;
  const int64_t h = g.in[0], w = g.in[1], oh_n = g.out[0], ow_n = g.out[1];
  const int64_t kh_n = g.kernel[0], kw_n = g.kernel[1], dh = g.dilations[0], dw = g.dilations[1];
  const int64_t pt = g.pads_begin[0], pl = g.pads_begin[1];
  const int64_t hp = oh_n + dh * (kh_n - 1), wp_full = ow_n + dw * (kw_n - 1);
  const int64_t kc = cg * kh_n * kw_n;
  // The direct kernel (direct_conv.h) when its weights are prepared and a
  // group's padded input stays cache-resident while every tile reads it;
  // it always reads from the padded copy, which has the slack it needs.
  const DirectConvShape dshape = DirectConvKernelShape();
  const bool use_direct = DirectGroup(ctx, 0, mg, kc) != nullptr && cg * hp * wp_full <= kDirectConvMaxInput;
  // Row pitch of the padded planes. The direct kernel lets the right
  // padding of a row share the zeros of the next row's left padding: a
  // window reading past column wp lands in the next row's first
  // min(pl, pr) columns, all zero (or in the next plane's, or the slack).
  // That is fewer wrapped positions to compute (calo_cnn's 16 x 16 layer:
  // 271 instead of 286). The GEMM path keeps whole padded rows.
  const int64_t pr = wp_full - pl - w;
  const int64_t wp = use_direct ? std::max(w + std::max(pl, pr), ow_n) : wp_full;
  const int64_t in_size = h * w, out_size = oh_n * ow_n, plane = hp * wp;
  const int64_t np = (oh_n - 1) * wp + ow_n;  // GEMM columns
  const int64_t d_ldc = (np + dshape.lanes - 1) / dshape.lanes * dshape.lanes;
  const int64_t d_rows = (mg + dshape.mr - 1) / dshape.mr * dshape.mr;
  // The padded buffer is needed unless the window never leaves the input
  // (no pads, or pads the windows never reach); C' unless rows are dense.
  const bool copy = use_direct || !(pt == 0 && pl == 0 && hp == h && wp == w);
  const bool dense_rows = !use_direct && wp == ow_n && !pool;
  const int64_t pooled_size = (oh_n / 2) * (ow_n / 2);
  const int64_t padded = copy ? cg * plane + (use_direct ? kDirectConvSlack + wp_full : 0) : 0;
  const int64_t c_size = dense_rows ? 0 : use_direct ? d_rows * d_ldc : mg * np;
  const int64_t c_stride = use_direct ? d_ldc : np;  // floats per row of C'
  const int64_t scratch = padded + c_size;
  ForEachConvTask<float>(
      ctx, batches * group, mg * np * kc, scratch, [&](int64_t t, float* buf, const KernelContext* gemm_ctx) {
        const int64_t n = t / group, gi = t % group;
        const float* xg = px + (n * in_ch + gi * cg) * in_size;
        const float* src = xg;
        int64_t src_plane = in_size;
        if (copy) {
          // Rows [pt, pt + h) and columns [pl, pl + w) of the padded plane
          // hold the input; windows may also reach past its bottom/right
          // edge (pads_end), which the zeros cover.
          for (int64_t c = 0; c < cg; ++c) {
            float* dst = buf + c * plane;
            const float* in = xg + c * in_size;
            for (int64_t r = 0; r < hp; ++r) {
              float* row = dst + r * wp;
              const int64_t ir = r - pt;
              if (ir < 0 || ir >= h) {
                std::fill(row, row + wp, 0.0f);
                continue;
              }
              const int64_t c0 = std::clamp<int64_t>(pl, 0, wp), c1 = std::clamp<int64_t>(pl + w, c0, wp);
              std::fill(row, row + c0, 0.0f);
              std::copy(in + ir * w + (c0 - pl), in + ir * w + (c1 - pl), row + c0);
              std::fill(row + c1, row + wp, 0.0f);
            }
          }
          std::fill(buf + cg * plane, buf + padded, 0.0f);
          src = buf;
          src_plane = plane;
        }
        float* yg = py + (n * out_ch + gi * mg) * (pool ? pooled_size : out_size);
        float* cp = dense_rows ? yg : buf + padded;
        if (use_direct) {
          ScratchBuffer<int64_t> offs(kc);
          int64_t* op = offs.data();
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < kh_n; ++kh)
              for (int64_t kw = 0; kw < kw_n; ++kw) *op++ = c * plane + kh * dh * wp + kw * dw;
          DirectConvF32(*DirectGroup(ctx, gi, mg, kc), offs.data(), src, np, cp, d_ldc, gemm_ctx);
        } else {
          ScratchBuffer<const float*> rows(kc);
          const float** rp = rows.data();
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t kh = 0; kh < kh_n; ++kh)
              for (int64_t kw = 0; kw < kw_n; ++kw)
                *rp++ = src + c * src_plane + kh * dh * wp + kw * dw;
          GemmF32Rows(mg, np, kc, pw + gi * mg * kc, kc, PackedGroup(ctx, gi, mg, kc), rows.data(), 0.0f,
                      cp, np, gemm_ctx);
        }
        auto finish = [&](int64_t m0, int64_t m1) {
          std::optional<ScratchBuffer<float>> staging;
          if (pool) staging.emplace(out_size);
          for (int64_t m = m0; m < m1; ++m) {
            float* out = pool ? staging->data() : yg + m * out_size;
            const float b = bias ? bias[gi * mg + m] : 0.0f;
            if (dense_rows) {
              BiasActivateF32(act, b, out, out_size);
              continue;
            }
            // Drop the wrapped windows at each row's end as the bias and
            // activation are applied (one pass for Relu and none).
            const float* cm = cp + m * c_stride;
            const bool fused = act.kind == Activation::kNone || act.kind == Activation::kRelu;
            if (fused) {
              BiasReluRowsF32(cm, wp, out, ow_n, oh_n, ow_n, b, act.kind == Activation::kRelu);
            } else {
              for (int64_t r = 0; r < oh_n; ++r) std::copy(cm + r * wp, cm + r * wp + ow_n, out + r * ow_n);
              BiasActivateF32(act, b, out, out_size);
            }
            if (pool) MaxPool2x2F32(out, ow_n, yg + m * pooled_size, oh_n / 2, ow_n / 2);
          }
        };
        if (gemm_ctx != nullptr) {
          gemm_ctx->ParallelFor(0, mg, std::max<int64_t>(1, 16384 / std::max<int64_t>(out_size, 1)), finish);
        } else {
          finish(0, mg);
        }
      });
}

// A pointwise (1x1, stride 1, unpadded) fp32 convolution of a batch of
// small images as one GEMM: the per-image products (out_ch x in_ch times
// in_ch x L, with L the few positions of a particle list) are too small to
// use the GEMM engine well, so the batch is laid side by side: X as
// [in_ch, N * L] (one transposing copy), one product into [out_ch, N * L],
// and the epilogue writes each image's rows back with bias and activation.
void BatchedPointwiseConv(KernelContext& ctx, const ActivationSpec& act, const float* px,
                          const float* pw, const float* bias, float* py, int64_t batches,
                          int64_t in_ch, int64_t out_ch, int64_t len) {
  const int64_t cols = batches * len;
  ScratchBuffer<float> xt(in_ch * cols), yt(out_ch * cols);
  float* pxt = xt.data();
  float* pyt = yt.data();
  ctx.ParallelFor(0, in_ch, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n = 0; n < batches; ++n)
        std::copy(px + (n * in_ch + c) * len, px + (n * in_ch + c + 1) * len, pxt + c * cols + n * len);
  });
  GemmF32(false, false, out_ch, cols, in_ch, 1.0f, pw, in_ch, PackedGroup(ctx, 0, out_ch, in_ch), pxt, cols,
          nullptr, 0.0f, pyt, cols, &ctx);
  const bool fused = act.kind == Activation::kNone || act.kind == Activation::kRelu;
  ctx.ParallelFor(0, out_ch, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float b = bias ? bias[m] : 0.0f;
      float* out = py + m * len;  // image n's row m is at out + n * out_ch * len
      if (fused) {
        BiasReluRowsF32(pyt + m * cols, len, out, out_ch * len, batches, len, b, act.kind == Activation::kRelu);
        continue;
      }
      for (int64_t n = 0; n < batches; ++n) {
        float* row = out + n * out_ch * len;
        std::copy(pyt + m * cols + n * len, pyt + m * cols + (n + 1) * len, row);
        BiasActivateF32(act, b, row, len);
      }
    }
  });
}

// The Winograd kernel's weights when this convolution can take them: a
// 2-D 3x3 window, stride 1, no dilation, pads 1 on every side, one group,
// Relu or no activation, and weights prepared for it.
const WinogradWeights* WinogradFor(const KernelContext& ctx, const WindowGeometry& g, int64_t group,
                                   const ActivationSpec& act, int64_t in_ch, int64_t out_ch) {
  if (ctx.state() == nullptr || group != 1 || g.nd != 2) return nullptr;
  if (act.kind != Activation::kNone && act.kind != Activation::kRelu) return nullptr;
  const auto& wg = ctx.state_as<PackedConvWeights>().winograd;
  if (!wg || wg->m() != out_ch || wg->c() != in_ch) return nullptr;
  for (int d = 0; d < 2; ++d) {
    if (g.kernel[d] != 3 || g.strides[d] != 1 || g.dilations[d] != 1 || g.pads_begin[d] != 1 ||
        g.pads_end[d] != 1) {
      return nullptr;
    }
  }
  return &*wg;
}

// The whole batch through the Winograd kernel: tasks of a few images in
// parallel, or one task with the products spread over the threads.
void WinogradConv(KernelContext& ctx, const WinogradWeights& wg, const WindowGeometry& g,
                  const ActivationSpec& act, bool pool, const float* px, const float* bias,
                  float* py, int64_t batches) {
  const int64_t h = g.in[0], w = g.in[1], c = wg.c(), m = wg.m();
  const int64_t per = std::min(batches, WinogradImagesPerTask(wg, h, w));
  const int64_t tasks = (batches + per - 1) / per;
  const int64_t out_size = pool ? (h / 2) * (w / 2) : h * w;
  const WinogradOutput out{bias, act.kind == Activation::kRelu, pool};
  const int64_t scratch = WinogradScratchFloats(wg, per, h, w);
  auto run = [&](int64_t t, float* buf, const KernelContext* inner) {
    const int64_t n0 = t * per, nb = std::min(per, batches - n0);
    WinogradConv3x3F32(wg, px + n0 * c * h * w, nb, h, w, out, py + n0 * m * out_size, buf, inner);
  };
  if (tasks > 1) {
    ctx.ParallelFor(0, tasks, 1, [&](int64_t lo, int64_t hi) {
      ScratchBuffer<float> buf(scratch);
      for (int64_t t = lo; t < hi; ++t) run(t, buf.data(), nullptr);
    });
  } else {
    ScratchBuffer<float> buf(scratch);
    run(0, buf.data(), &ctx);
  }
}

// y = MaxPool 2x2/2 (floor) of each of `planes` planes of full (h x w), as
// the MaxPool operator computes it.
template <typename T>
void MaxPoolPlanes(const T* full, T* y, int64_t planes, int64_t h, int64_t w) {
  using C = ComputeT<T>;
  const int64_t oh = h / 2, ow = w / 2;
  for (int64_t p = 0; p < planes; ++p) {
    const T* in = full + p * h * w;
    T* out = y + p * oh * ow;
    if constexpr (std::is_same_v<T, float>) {
      MaxPool2x2F32(in, w, out, oh, ow);
    } else {
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const T* r0 = in + 2 * i * w + 2 * j;
          C best = static_cast<C>(r0[0]);
          for (const T v : {r0[1], r0[w], r0[w + 1]}) best = static_cast<C>(v) > best ? static_cast<C>(v) : best;
          out[i * ow + j] = static_cast<T>(best);
        }
    }
  }
}

// Conv (with `pool`: followed by MaxPool 2x2/2, see fused.cc) into output 0.
// A pointwise (1x1, stride 1, unpadded) fp32 convolution of images of many
// positions (EdgeConv's [C, particles, k] blocks) on the direct kernel, image
// by image: W (out_ch x in_ch, packed once) times the image's channel rows
// read in place (no copy, no packing of X), then the bias and activation
// from the tile buffer into y. Only the last image is copied, with the slack
// the kernel may read past its end.
void PointwiseDirectConv(KernelContext& ctx, const DirectConvWeights& dw, const ActivationSpec& act,
                         const float* px, const float* bias, float* py, int64_t batches, int64_t in_ch,
                         int64_t out_ch, int64_t len) {
  const DirectConvShape shape = DirectConvKernelShape();
  const int64_t ldc = (len + shape.lanes - 1) / shape.lanes * shape.lanes;
  const int64_t rows = (out_ch + shape.mr - 1) / shape.mr * shape.mr;
  const int64_t image = in_ch * len;
  const int64_t tail = ldc + kDirectConvSlack;  // floats the kernel may read past the last row
  const int64_t scratch = rows * ldc + image + tail;
  ScratchBuffer<int64_t> offs_buf(in_ch);
  for (int64_t c = 0; c < in_ch; ++c) offs_buf.data()[c] = c * len;
  const int64_t* offs = offs_buf.data();
  const bool fused = act.kind == Activation::kNone || act.kind == Activation::kRelu;
  ForEachConvTask<float>(ctx, batches, out_ch * len * in_ch, scratch,
                         [&](int64_t n, float* buf, const KernelContext* inner) {
    const float* src = px + n * image;
    if ((batches - 1 - n) * image < tail) {  // too near the end of X: a padded copy
      float* copy = buf + rows * ldc;
      std::copy(src, src + image, copy);
      std::fill(copy + image, copy + image + tail, 0.0f);
      src = copy;
    }
    DirectConvF32(dw, offs, src, len, buf, ldc, inner);
    float* yn = py + n * out_ch * len;
    for (int64_t m = 0; m < out_ch; ++m) {
      const float b = bias ? bias[m] : 0.0f;
      if (fused) {
        BiasReluF32(buf + m * ldc, yn + m * len, b, act.kind == Activation::kRelu, len);
      } else {
        std::copy(buf + m * ldc, buf + m * ldc + len, yn + m * len);
        BiasActivateF32(act, b, yn + m * len, len);
      }
    }
  });
}

template <typename T>
absl::StatusOr<Tensor*> ConvTyped(KernelContext& ctx, const WindowGeometry& g, int64_t group,
                                  const ActivationSpec& act, bool pool) {
  using C = ComputeT<T>;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  const int64_t batches = x.dim(0), in_ch = x.dim(1), out_ch = w.dim(0);
  const int64_t cg = in_ch / group, mg = out_ch / group;
  Shape out_shape = {batches, out_ch};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  Shape y_shape = out_shape;
  if (pool) {
    y_shape[2] /= 2;
    y_shape[3] /= 2;
  }
  Tensor* y = ctx.Output(0, x.dtype(), y_shape);
  if (y->size() == 0) return y;
  if constexpr (std::is_same_v<T, float>) {
    if (const WinogradWeights* wg = WinogradFor(ctx, g, group, act, in_ch, out_ch)) {
      const float* bias = ctx.HasInput(2) ? ctx.Input(2).data<float>() : nullptr;
      WinogradConv(ctx, *wg, g, act, pool, x.data<float>(), bias, y->mutable_data<float>(), batches);
      return y;
    }
    const bool pointwise = g.nd == 2 && g.kernel[0] == 1 && g.kernel[1] == 1 && g.pads_begin[0] == 0 &&
                           g.pads_begin[1] == 0 && g.pads_end[0] == 0 && g.pads_end[1] == 0;
    if (pool && !pointwise && g.nd == 2 && g.strides[0] == 1 && g.strides[1] == 1) {
      // Stride-1 windows: pooled as each channel is finished.
      const float* bias = ctx.HasInput(2) ? ctx.Input(2).data<float>() : nullptr;
      ShiftedViewConv(ctx, g, group, act, x.data<float>(), w.data<float>(), bias, y->mutable_data<float>(),
                      batches, in_ch, out_ch, true);
      return y;
    }
  }
  // Pooled: the convolution's full output goes to scratch first.
  std::optional<ScratchBuffer<T>> full_buf;
  Tensor full;
  if (pool) {
    full_buf.emplace(NumElements(out_shape));
    full = Tensor::Wrap(x.dtype(), out_shape, full_buf->data());
  }
  Tensor* yf = pool ? &full : y;
  auto finish_pool = [&]() -> absl::StatusOr<Tensor*> {
    if (pool) {
      MaxPoolPlanes<T>(yf->data<T>(), y->mutable_data<T>(), batches * out_ch, g.out[0], g.out[1]);
    }
    return y;
  };
  ComputeView<T> vx(x), vw(w);
  ComputeOutput<T> vy(yf);
  std::optional<ComputeView<T>> vb;
  if (ctx.HasInput(2)) vb.emplace(ctx.Input(2));
  const C* px = vx.data();
  const C* pw = vw.data();
  C* py = vy.data();
  const int64_t in_size = g.InSize(), out_size = g.OutSize(), ksize = g.KernelSize();
  const int64_t kc = cg * ksize;
  // fp32: the GEMM writes C (beta 0) and the epilogue adds the bias and
  // activates each finished block; other types: C starts as the bias.
  constexpr bool kEpilogue = std::is_same_v<C, float>;
  const C* bias = vb ? vb->data() : nullptr;
  if constexpr (!kEpilogue) FillBias<C>(py, bias, batches, out_ch, out_size);
  bool direct = true;  // a 1x1 convolution: the input is its own col matrix
  for (int d = 0; d < g.nd; ++d) {
    direct = direct && g.kernel[d] == 1 && g.strides[d] == 1 && g.pads_begin[d] == 0 &&
             g.pads_end[d] == 0;
  }
  PatchGeometry pg{g.in, g.out, g.kernel, g.strides, g.dilations, g.pads_begin};
  if constexpr (kEpilogue) {
    // Several images of a few positions each (particle lists): one GEMM.
    // Not at batch 1: the one image is also the last, copied, which costs
    // more than the GEMM engine's packing that the direct kernel saves.
    if (direct && group == 1 && g.nd == 2 && out_size >= 256 && batches > 1) {
      if (const DirectConvWeights* dw = DirectGroup(ctx, 0, out_ch, in_ch)) {
        PointwiseDirectConv(ctx, *dw, act, px, bias, py, batches, in_ch, out_ch, out_size);
        vy.Finish();
        return finish_pool();
      }
    }
    if (direct && group == 1 && batches > 1 && out_size < 256) {
      BatchedPointwiseConv(ctx, act, px, pw, bias, py, batches, in_ch, out_ch, out_size);
      vy.Finish();
      return finish_pool();
    }
    if (!direct && g.nd == 2 && g.strides[0] == 1 && g.strides[1] == 1) {
      ShiftedViewConv(ctx, g, group, act, px, pw, bias, py, batches, in_ch, out_ch, false);
      vy.Finish();
      return finish_pool();
    }
  }
  ForEachConvTask<C>(ctx, batches * group, mg * out_size * kc, direct ? 0 : kc * out_size,
                     [&](int64_t t, C* col, const KernelContext* gemm_ctx) {
                       const int64_t n = t / group, gi = t % group;
                       const C* xg = px + (n * in_ch + gi * cg) * in_size;
                       const C* b = xg;
                       if (!direct) {
                         PatchTransfer<false, C>(pg, cg, const_cast<C*>(xg), col);
                         b = col;
                       }
                       C* yg = py + (n * out_ch + gi * mg) * out_size;
                       ConvGemm<C>(PackedGroup(ctx, gi, mg, kc), false, mg, out_size, kc,
                                   pw + gi * mg * kc, kc, b, kEpilogue ? C(0) : C(1), yg, gemm_ctx);
                       if constexpr (kEpilogue) {
                         auto finish = [&](int64_t m0, int64_t m1) {
                           for (int64_t m = m0; m < m1; ++m) {
                             BiasActivateF32(act, bias ? bias[gi * mg + m] : 0.0f, yg + m * out_size, out_size);
                           }
                         };
                         if (gemm_ctx != nullptr) {
                           gemm_ctx->ParallelFor(0, mg, std::max<int64_t>(1, 16384 / std::max<int64_t>(out_size, 1)), finish);
                         } else {
                           finish(0, mg);
                         }
                       }
                     });
  vy.Finish();
  if constexpr (!kEpilogue) {
    if (auto st = ApplyActivation(ctx, act, yf); !st.ok()) return st;
  }
  return finish_pool();
}

absl::Status ComputeConv(KernelContext& ctx) { return RunConv(ctx).status(); }

}  // namespace

absl::StatusOr<std::unique_ptr<KernelState>> PrepareConv(const PrepareContext& ctx) {
  return PrepareConvWeights<false>(ctx);
}

absl::StatusOr<Tensor*> RunConv(KernelContext& ctx, const ActivationSpec& act, bool pool) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  if (x.rank() < 3) return ctx.Error("X must have rank >= 3 (N, C, spatial...), got ", ShapeToString(x.shape()));
  if (w.rank() != x.rank()) {
    return ctx.Error("W of shape ", ShapeToString(w.shape()), " does not match X of shape ",
                     ShapeToString(x.shape()));
  }
  if (auto st = CheckSameType(ctx, 1); !st.ok()) return st;
  const int64_t group = ctx.node().GetInt("group", 1);
  if (group < 1 || x.dim(1) % group != 0 || w.dim(0) % group != 0) {
    return ctx.Error("group ", group, " does not divide the ", x.dim(1), " input and ", w.dim(0),
                     " output channels");
  }
  if (w.dim(1) * group != x.dim(1)) {
    return ctx.Error("W has ", w.dim(1), " channels per group, X has ", x.dim(1) / group);
  }
  if (auto st = CheckBias(ctx, 2, w.dim(0)); !st.ok()) return st;
  auto kernel = KernelShape(ctx.node(), w);
  if (!kernel.ok()) return ctx.Error(kernel.status().message());
  auto g = ComputeWindowGeometry(ctx.node(), Shape(x.shape().begin() + 2, x.shape().end()), *kernel);
  if (!g.ok()) return ctx.Error(g.status().message());
  if (pool && g->nd != 2) return ctx.Error("pool = \"MaxPool2x2\" needs a 2-D convolution, X has shape ", ShapeToString(x.shape()));
  Tensor* result = nullptr;
  absl::Status st = VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    auto y = ConvTyped<typename decltype(tag)::type>(ctx, *g, group, act, pool);
    if (!y.ok()) return y.status();
    result = *y;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return result;
}

absl::Status InferConvOutput(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  return InferConv(ctx, outputs);
}

namespace {

// ---------------------------------------------------------------------------
// ConvTranspose
// ---------------------------------------------------------------------------

}  // namespace

// ConvTranspose's output dims and pads (they may be negative when an
// explicit output_shape asks for more than the windows cover).
absl::StatusOr<WindowGeometry> ConvTransposeGeometry(const Node& node, const Shape& in,
                                                     const Shape& kernel) {
  const int nd = static_cast<int>(in.size());
  WindowGeometry g;
  g.nd = nd;
  g.in = in;
  g.kernel = kernel;
  for (int64_t k : kernel)
    if (k < 1) return absl::InvalidArgumentError(absl::StrCat("kernel size ", k, " is not positive"));
  auto strides = PerDimAttr(node, "strides", nd, 1, 1);
  if (!strides.ok()) return strides.status();
  auto dilations = PerDimAttr(node, "dilations", nd, 1, 1);
  if (!dilations.ok()) return dilations.status();
  auto output_padding = PerDimAttr(node, "output_padding", nd, 0, 0);
  if (!output_padding.ok()) return output_padding.status();
  g.strides = *strides;
  g.dilations = *dilations;
  g.pads_begin.assign(nd, 0);
  g.pads_end.assign(nd, 0);
  g.out.assign(nd, 0);
  const std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" &&
      auto_pad != "VALID" && !auto_pad.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown auto_pad '", auto_pad, "'"));
  }
  std::vector<int64_t> output_shape = node.GetInts("output_shape");
  if (!output_shape.empty()) {
    if (static_cast<int>(output_shape.size()) == nd + 2) output_shape.erase(output_shape.begin(), output_shape.begin() + 2);
    if (static_cast<int>(output_shape.size()) != nd) {
      return absl::InvalidArgumentError(absl::StrCat("attribute 'output_shape' has ",
                                                     output_shape.size(), " values, expected ", nd));
    }
  }
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  std::vector<int64_t> pads = node.GetInts("pads");
  if (!pads.empty() && static_cast<int>(pads.size()) != 2 * nd) {
    return absl::InvalidArgumentError(absl::StrCat("attribute 'pads' has ", pads.size(),
                                                   " values, expected ", 2 * nd));
  }
  for (int d = 0; d < nd; ++d) {
    const int64_t full = g.strides[d] * (in[d] - 1) + (*output_padding)[d] + g.Extent(d);
    if (!output_shape.empty() || same) {
      g.out[d] = !output_shape.empty() ? output_shape[d] : in[d] * g.strides[d];
      if (g.out[d] < 0) return absl::InvalidArgumentError("attribute 'output_shape' is negative");
      const int64_t total = full - g.out[d];
      const int64_t half = total / 2;  // rounds toward zero, as the reference does
      // The odd unit of padding goes to the end, except for SAME_LOWER.
      if (auto_pad == "SAME_LOWER") {
        g.pads_begin[d] = total - half;
        g.pads_end[d] = half;
      } else {
        g.pads_begin[d] = half;
        g.pads_end[d] = total - half;
      }
    } else {
      if (!pads.empty() && auto_pad != "VALID") {
        g.pads_begin[d] = pads[d];
        g.pads_end[d] = pads[d + nd];
        if (pads[d] < 0 || pads[d + nd] < 0) {
          return absl::InvalidArgumentError("attribute 'pads' has a negative value");
        }
      }
      g.out[d] = full - g.pads_begin[d] - g.pads_end[d];
      if (g.out[d] < 0) {
        return absl::InvalidArgumentError(absl::StrCat("pads exceed the output along dim ", d));
      }
    }
  }
  return g;
}

namespace {

template <typename T>
absl::Status ConvTransposeTyped(KernelContext& ctx, const WindowGeometry& g, int64_t group) {
  using C = ComputeT<T>;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  const int64_t batches = x.dim(0), in_ch = x.dim(1);
  const int64_t cg = in_ch / group, mg = w.dim(1), out_ch = mg * group;
  Shape out_shape = {batches, out_ch};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  if (y->size() == 0) return absl::OkStatus();
  ComputeView<T> vx(x), vw(w);
  ComputeOutput<T> vy(y);
  std::optional<ComputeView<T>> vb;
  if (ctx.HasInput(2)) vb.emplace(ctx.Input(2));
  const C* px = vx.data();
  const C* pw = vw.data();
  C* py = vy.data();
  const int64_t in_size = g.InSize(), out_size = g.OutSize(), ksize = g.KernelSize();
  const int64_t rows = mg * ksize;
  FillBias<C>(py, vb ? vb->data() : nullptr, batches, out_ch, out_size);
  // The patches live on the input grid and scatter into the output image.
  PatchGeometry pg{g.out, g.in, g.kernel, g.strides, g.dilations, g.pads_begin};
  ForEachConvTask<C>(ctx, batches * group, rows * in_size * cg, rows * in_size,
                     [&](int64_t t, C* col, const KernelContext* gemm_ctx) {
                       const int64_t n = t / group, gi = t % group;
                       // col [mg*k, in] = W_g^T [mg*k, cg] x X_g [cg, in]
                       ConvGemm<C>(PackedGroup(ctx, gi, rows, cg), true, rows, in_size, cg,
                                   pw + gi * cg * rows, rows,
                                   px + (n * in_ch + gi * cg) * in_size, C(0), col, gemm_ctx);
                       PatchTransfer<true, C>(pg, mg, py + (n * out_ch + gi * mg) * out_size, col);
                     });
  vy.Finish();
  return absl::OkStatus();
}

absl::Status ComputeConvTranspose(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  if (x.rank() < 3) return ctx.Error("X must have rank >= 3 (N, C, spatial...), got ", ShapeToString(x.shape()));
  if (w.rank() != x.rank()) {
    return ctx.Error("W of shape ", ShapeToString(w.shape()), " does not match X of shape ",
                     ShapeToString(x.shape()));
  }
  if (auto st = CheckSameType(ctx, 1); !st.ok()) return st;
  const int64_t group = ctx.node().GetInt("group", 1);
  if (group < 1 || x.dim(1) % group != 0) {
    return ctx.Error("group ", group, " does not divide the ", x.dim(1), " input channels");
  }
  if (w.dim(0) != x.dim(1)) {
    return ctx.Error("W has ", w.dim(0), " input channels, X has ", x.dim(1));
  }
  if (auto st = CheckBias(ctx, 2, w.dim(1) * group); !st.ok()) return st;
  auto kernel = KernelShape(ctx.node(), w);
  if (!kernel.ok()) return ctx.Error(kernel.status().message());
  auto g = ConvTransposeGeometry(ctx.node(), Shape(x.shape().begin() + 2, x.shape().end()), *kernel);
  if (!g.ok()) return ctx.Error(g.status().message());
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    return ConvTransposeTyped<typename decltype(tag)::type>(ctx, *g, group);
  });
}

// ---------------------------------------------------------------------------
// Col2Im
// ---------------------------------------------------------------------------

absl::Status ComputeCol2Im(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 3); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  auto image = ReadInt64s(ctx.Input(1));
  if (!image.ok()) return ctx.Error("image_shape: ", image.status().message());
  auto block = ReadInt64s(ctx.Input(2));
  if (!block.ok()) return ctx.Error("block_shape: ", block.status().message());
  const int nd = static_cast<int>(image->size());
  if (nd < 1 || static_cast<int>(block->size()) != nd) {
    return ctx.Error("image_shape and block_shape must have the same number (>= 1) of values");
  }
  if (x.rank() != 3) return ctx.Error("input must have rank 3 [N, C*prod(block), L], got ", ShapeToString(x.shape()));
  for (int d = 0; d < nd; ++d) {
    if ((*image)[d] < 0 || (*block)[d] < 1) return ctx.Error("image_shape/block_shape values out of range");
  }
  const Shape kernel(block->begin(), block->end());
  const int64_t ksize = NumElements(kernel);
  if (x.dim(1) % ksize != 0) {
    return ctx.Error("dim 1 (", x.dim(1), ") is not a multiple of the block size ", ksize);
  }
  auto g = ComputeWindowGeometry(ctx.node(), *image, kernel);
  if (!g.ok()) return ctx.Error(g.status().message());
  if (g->OutSize() != x.dim(2)) {
    return ctx.Error("input has ", x.dim(2), " blocks, image_shape and block_shape give ",
                     g->OutSize());
  }
  const int64_t batches = x.dim(0), channels = x.dim(1) / ksize;
  Shape out_shape = {batches, channels};
  out_shape.insert(out_shape.end(), image->begin(), image->end());
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  PatchGeometry pg{g->in, g->out, g->kernel, g->strides, g->dilations, g->pads_begin};
  return VisitNumeric(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    if (y->size() == 0) return absl::OkStatus();
    ComputeView<T> vx(x);
    ComputeOutput<T> vy(y);
    C* py = vy.data();
    std::fill(py, py + y->size(), C(0));
    const int64_t image_size = g->InSize(), col_size = x.dim(1) * x.dim(2);
    ctx.ParallelFor(0, batches, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        PatchTransfer<true, C>(pg, channels, py + n * channels * image_size,
                               const_cast<C*>(vx.data() + n * col_size));
      }
    });
    vy.Finish();
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// DeformConv
// ---------------------------------------------------------------------------

// value of channel plane `plane` (dims `dims`) at fractional point `pos`,
// multilinear, zero outside the plane.
template <typename C>
C Interpolate(const C* plane, const Shape& dims, const Shape& strides, const double* pos) {
  const int nd = static_cast<int>(dims.size());
  int64_t base[8];
  double frac[8];
  for (int d = 0; d < nd; ++d) {
    if (!(pos[d] > -1.0 && pos[d] < static_cast<double>(dims[d]))) return C(0);
    const double f = std::floor(pos[d]);
    base[d] = static_cast<int64_t>(f);
    frac[d] = pos[d] - f;
  }
  double sum = 0;
  for (int corner = 0; corner < (1 << nd); ++corner) {
    double weight = 1;
    int64_t offset = 0;
    bool inside = true;
    for (int d = 0; d < nd; ++d) {
      const bool up = (corner >> d) & 1;
      const int64_t p = base[d] + (up ? 1 : 0);
      if (p < 0 || p >= dims[d]) {
        inside = false;
        break;
      }
      weight *= up ? frac[d] : 1.0 - frac[d];
      offset += p * strides[d];
    }
    if (inside && weight != 0) sum += weight * static_cast<double>(plane[offset]);
  }
  return static_cast<C>(sum);
}

template <typename T>
absl::Status DeformConvTyped(KernelContext& ctx, const WindowGeometry& g, int64_t group,
                             int64_t offset_group) {
  using C = ComputeT<T>;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  const int64_t batches = x.dim(0), in_ch = x.dim(1), out_ch = w.dim(0);
  const int64_t cg = in_ch / group, mg = out_ch / group;
  const int nd = g.nd;
  Shape out_shape = {batches, out_ch};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  if (y->size() == 0) return absl::OkStatus();
  ComputeView<T> vx(x), vw(w), voff(ctx.Input(2));
  std::optional<ComputeView<T>> vb, vmask;
  if (ctx.HasInput(3)) vb.emplace(ctx.Input(3));
  if (ctx.HasInput(4)) vmask.emplace(ctx.Input(4));
  ComputeOutput<T> vy(y);
  C* py = vy.data();
  const int64_t in_size = g.InSize(), out_size = g.OutSize(), ksize = g.KernelSize();
  const int64_t kc = cg * ksize, ch_per_og = in_ch / offset_group;
  const Shape in_strides = Strides(g.in);
  FillBias<C>(py, vb ? vb->data() : nullptr, batches, out_ch, out_size);
  ForEachConvTask<C>(ctx, batches * group, mg * out_size * kc, kc * out_size,
                     [&](int64_t t, C* col, const KernelContext* gemm_ctx) {
    const int64_t n = t / group, gi = t % group;
    std::vector<int64_t> kpos(nd), opos(nd);
    double pos[8];
    for (int64_t c = 0; c < cg; ++c) {
      const int64_t ch = gi * cg + c, og = ch / ch_per_og;
      const C* plane = vx.data() + (n * in_ch + ch) * in_size;
      const C* off = voff.data() + (n * offset_group + og) * ksize * nd * out_size;
      const C* mask = vmask ? vmask->data() + (n * offset_group + og) * ksize * out_size : nullptr;
      for (int64_t kidx = 0; kidx < ksize; ++kidx) {
        int64_t rest = kidx;
        for (int d = nd; d-- > 0;) {
          kpos[d] = rest % g.kernel[d];
          rest /= g.kernel[d];
        }
        C* row = col + (c * ksize + kidx) * out_size;
        std::fill(opos.begin(), opos.end(), 0);
        for (int64_t o = 0; o < out_size; ++o) {
          for (int d = 0; d < nd; ++d) {
            pos[d] = static_cast<double>(opos[d] * g.strides[d] - g.pads_begin[d] +
                                         kpos[d] * g.dilations[d]) +
                     static_cast<double>(off[(kidx * nd + d) * out_size + o]);
          }
          C v = Interpolate<C>(plane, g.in, in_strides, pos);
          if (mask) v *= mask[kidx * out_size + o];
          row[o] = v;
          for (int d = nd; d-- > 0;) {
            if (++opos[d] < g.out[d]) break;
            opos[d] = 0;
          }
        }
      }
    }
    GemmRowMajor<C>(false, false, mg, out_size, kc, C(1), vw.data() + gi * mg * kc, kc, col,
                    out_size, C(1), py + (n * out_ch + gi * mg) * out_size, out_size, gemm_ctx);
  });
  vy.Finish();
  return absl::OkStatus();
}

absl::Status ComputeDeformConv(KernelContext& ctx) {
  if (auto st = RequireInputs(ctx, 3); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const Tensor& w = ctx.Input(1);
  const Tensor& offset = ctx.Input(2);
  if (x.rank() < 3 || x.rank() > 10) return ctx.Error("X must have rank 3 to 10, got ", ShapeToString(x.shape()));
  const int nd = x.rank() - 2;
  if (w.rank() != x.rank()) {
    return ctx.Error("W of shape ", ShapeToString(w.shape()), " does not match X of shape ",
                     ShapeToString(x.shape()));
  }
  for (size_t i : {1, 2, 4})
    if (auto st = CheckSameType(ctx, i); !st.ok()) return st;
  const int64_t group = ctx.node().GetInt("group", 1);
  const int64_t offset_group = ctx.node().GetInt("offset_group", 1);
  if (group < 1 || x.dim(1) % group != 0 || w.dim(0) % group != 0 || w.dim(1) * group != x.dim(1)) {
    return ctx.Error("group ", group, " does not fit X channels ", x.dim(1), " and W of shape ",
                     ShapeToString(w.shape()));
  }
  if (offset_group < 1 || x.dim(1) % offset_group != 0) {
    return ctx.Error("offset_group ", offset_group, " does not divide the ", x.dim(1), " channels");
  }
  if (auto st = CheckBias(ctx, 3, w.dim(0)); !st.ok()) return st;
  auto kernel = KernelShape(ctx.node(), w);
  if (!kernel.ok()) return ctx.Error(kernel.status().message());
  if (ctx.node().HasAttribute("auto_pad")) return ctx.Error("DeformConv has no auto_pad");
  auto g = ComputeWindowGeometry(ctx.node(), Shape(x.shape().begin() + 2, x.shape().end()), *kernel);
  if (!g.ok()) return ctx.Error(g.status().message());
  const int64_t ksize = g->KernelSize();
  Shape want = {x.dim(0), offset_group * ksize * nd};
  want.insert(want.end(), g->out.begin(), g->out.end());
  if (offset.shape() != want) {
    return ctx.Error("offset has shape ", ShapeToString(offset.shape()), ", expected ",
                     ShapeToString(want));
  }
  if (ctx.HasInput(4)) {
    want[1] = offset_group * ksize;
    if (ctx.Input(4).shape() != want) {
      return ctx.Error("mask has shape ", ShapeToString(ctx.Input(4).shape()), ", expected ",
                       ShapeToString(want));
    }
  }
  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    return DeformConvTyped<typename decltype(tag)::type>(ctx, *g, group, offset_group);
  });
}

const OpTableRegistration kConvOps({
    {.name = "Conv", .since = 1, .types = kFloatTypes, .infer = InferConv, .compute = ComputeConv,
     .prepare = PrepareConvWeights<false>},
    {.name = "ConvTranspose", .since = 1, .types = kFloatTypes, .compute = ComputeConvTranspose,
     .prepare = PrepareConvWeights<true>},
    {.name = "Col2Im", .since = 18, .types = kNumericTypes, .compute = ComputeCol2Im},
    {.name = "DeformConv", .since = 19, .types = kFloatTypes, .compute = ComputeDeformConv},
});

}  // namespace
}  // namespace hepml::ops
