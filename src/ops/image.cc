// Image operators: Resize (10, 11, 13, 18, 19), Upsample (7, 9), GridSample
// (16, 20), RoiAlign (10, 16), AffineGrid (20).
//
// Resize is separable: every resized axis gets a table of taps (input index,
// weight) per output index, built in double precision following the ONNX
// reference semantics; the data is then filtered one axis at a time, the last
// axis first (the order of the reference implementation). Nearest-neighbour
// resizing is a pure gather in the input's own type (exact for every dtype).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "hepml/status.h"
#include "ops/kernel_util.h"
#include "ops/resize_plan.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

// ---- Resize / Upsample ---------------------------------------------------------

enum class CoordMode {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNN,
  kTfCropAndResize
};
enum class InterpMode { kNearest, kLinear, kCubic };
enum class NearestMode {
  kRoundPreferFloor,
  kRoundPreferCeil,
  kFloor,
  kCeil,
  kSimple  // Resize-10 / Upsample: floor when upsampling, ceil when downsampling
};

struct ResizeConfig {
  InterpMode mode = InterpMode::kNearest;
  CoordMode coord = CoordMode::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
  double extrapolation = 0.0;
};

// One axis of a resize: lengths, the scale used by the coordinate transform,
// the "resized length" as the reference computes it (scale * in_len, or the
// requested size), and the roi (tf_crop_and_resize only).
struct AxisSpec {
  int64_t in_len = 1, out_len = 1;
  double scale = 1.0;
  double out_f = 1.0;
  double roi_start = 0.0, roi_end = 1.0;
};

// Taps of one axis: output index j reads index[j * taps + t] with weight
// weight[j * taps + t]; outside[j] means "extrapolation_value".
struct AxisMap {
  int64_t in_len = 1, out_len = 1;
  int64_t taps = 1;
  std::vector<int64_t> index;
  std::vector<double> weight;
  std::vector<uint8_t> outside;
  bool identity = false;
};

absl::StatusOr<CoordMode> ParseCoordMode(const std::string& s, int opset) {
  if (s == "half_pixel") return CoordMode::kHalfPixel;
  if (s == "half_pixel_symmetric" && opset >= 19) return CoordMode::kHalfPixelSymmetric;
  if (s == "pytorch_half_pixel") return CoordMode::kPytorchHalfPixel;
  if (s == "align_corners") return CoordMode::kAlignCorners;
  if (s == "asymmetric") return CoordMode::kAsymmetric;
  if (s == "tf_half_pixel_for_nn") return CoordMode::kTfHalfPixelForNN;
  if (s == "tf_crop_and_resize") return CoordMode::kTfCropAndResize;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown coordinate_transformation_mode '", s, "' at opset ", opset));
}

// Maps output coordinate j of an axis to the input coordinate.
double OriginalCoord(const ResizeConfig& c, const AxisSpec& a, int64_t j, bool* outside) {
  const double x = static_cast<double>(j);
  const double in = static_cast<double>(a.in_len);
  *outside = false;
  switch (c.coord) {
    case CoordMode::kHalfPixel:
      return (x + 0.5) / a.scale - 0.5;
    case CoordMode::kHalfPixelSymmetric: {
      const double adjustment = static_cast<double>(a.out_len) / a.out_f;
      const double center = in / 2.0;
      const double offset = center * (1.0 - adjustment);
      return offset + (x + 0.5) / a.scale - 0.5;
    }
    case CoordMode::kPytorchHalfPixel:
      return a.out_len > 1 ? (x + 0.5) / a.scale - 0.5 : 0.0;
    case CoordMode::kAlignCorners:
      return a.out_f == 1.0 ? 0.0 : x * (in - 1.0) / (a.out_f - 1.0);
    case CoordMode::kAsymmetric:
      return x / a.scale;
    case CoordMode::kTfHalfPixelForNN:
      return (x + 0.5) / a.scale;
    case CoordMode::kTfCropAndResize: {
      double r;
      if (a.out_f == 1.0) {
        r = (a.roi_end - a.roi_start) * (in - 1.0) / 2.0;
      } else {
        r = x * (a.roi_end - a.roi_start) * (in - 1.0) / (a.out_f - 1.0);
      }
      r += a.roi_start * (in - 1.0);
      if (!(r >= 0.0 && r <= in - 1.0)) *outside = true;
      return r;
    }
  }
  return x;
}

int64_t NearestIndex(NearestMode mode, double x, double scale) {
  const double f = std::floor(x);
  const double r = x - f;
  double v;
  switch (mode) {
    case NearestMode::kRoundPreferFloor: v = r <= 0.5 ? f : f + 1.0; break;
    case NearestMode::kRoundPreferCeil: v = r < 0.5 ? f : f + 1.0; break;
    case NearestMode::kFloor: v = f; break;
    case NearestMode::kCeil: v = std::ceil(x); break;
    case NearestMode::kSimple: v = scale < 1.0 ? std::ceil(x) : std::trunc(x); break;
    default: v = f;
  }
  if (!(v >= -1.0)) return -1;  // far below (or NaN): clamped by the caller
  if (v > 9.0e15) return std::numeric_limits<int64_t>::max() / 2;
  return static_cast<int64_t>(v);
}

// Keys' cubic convolution kernel with parameter A at distance |x|.
double CubicKernel(double x, double A) {
  x = std::abs(x);
  if (x <= 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
  if (x < 2.0) return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
  return 0.0;
}

absl::StatusOr<AxisMap> BuildAxisMap(const ResizeConfig& c, const AxisSpec& a) {
  AxisMap m;
  m.in_len = a.in_len;
  m.out_len = a.out_len;
  // Number of taps and, for antialiasing, the first tap's offset from `base`.
  int64_t first = 0;
  double support_scale = 1.0;
  if (c.mode == InterpMode::kNearest) {
    m.taps = 1;
  } else if (c.antialias) {
    support_scale = std::min(a.scale, 1.0);
    const double reach = c.mode == InterpMode::kLinear ? 1.0 : 2.0;
    const double f = std::floor(-reach / support_scale) + 1.0;
    if (!(f > -(1 << 22))) {
      return absl::InvalidArgumentError("scale too small for an antialiasing filter");
    }
    first = static_cast<int64_t>(f);
    m.taps = 2 - 2 * first;
  } else {
    m.taps = c.mode == InterpMode::kLinear ? 2 : 4;
    first = c.mode == InterpMode::kLinear ? 0 : -1;
  }
  const size_t n = static_cast<size_t>(a.out_len * m.taps);
  m.index.assign(n, 0);
  m.weight.assign(n, 0.0);
  m.outside.assign(static_cast<size_t>(a.out_len), 0);
  std::vector<int64_t> raw(static_cast<size_t>(m.taps));
  bool identity = a.in_len == a.out_len;
  for (int64_t j = 0; j < a.out_len; ++j) {
    bool out = false;
    const double x = OriginalCoord(c, a, j, &out);
    int64_t* idx = m.index.data() + j * m.taps;
    double* w = m.weight.data() + j * m.taps;
    if (out || std::isnan(x)) {
      m.outside[j] = 1;
      identity = false;
      continue;
    }
    if (c.mode == InterpMode::kNearest) {
      idx[0] = std::clamp<int64_t>(NearestIndex(c.nearest, x, a.scale), 0, a.in_len - 1);
      w[0] = 1.0;
    } else {
      // The reference's convention: ratio in (0, 1], base = the sample at or
      // left of x (x itself minus one when x is integral).
      const double xf = std::clamp(x, -1.0e15, 1.0e15);
      double base = std::floor(xf);
      double ratio = xf - base;
      if (ratio == 0.0) {
        ratio = 1.0;
        base -= 1.0;
      }
      const int64_t b = static_cast<int64_t>(base);
      double sum = 0.0;
      for (int64_t t = 0; t < m.taps; ++t) {
        const int64_t off = first + t;
        raw[t] = b + off;
        double wt;
        if (c.antialias) {
          const double arg = (static_cast<double>(off) - ratio) * support_scale;
          wt = c.mode == InterpMode::kLinear ? std::max(0.0, 1.0 - std::abs(arg))
                                             : CubicKernel(arg, c.cubic_a);
        } else if (c.mode == InterpMode::kLinear) {
          wt = off == 0 ? 1.0 - ratio : ratio;
        } else {
          wt = CubicKernel(static_cast<double>(off) - ratio, c.cubic_a);
        }
        w[t] = wt;
        sum += wt;
      }
      if (c.antialias && sum != 0.0) {
        for (int64_t t = 0; t < m.taps; ++t) w[t] /= sum;
      }
      if (c.exclude_outside) {
        sum = 0.0;
        for (int64_t t = 0; t < m.taps; ++t) {
          if (raw[t] < 0 || raw[t] >= a.in_len) w[t] = 0.0;
          sum += w[t];
        }
        if (sum != 0.0) {
          for (int64_t t = 0; t < m.taps; ++t) w[t] /= sum;
        }
      }
      for (int64_t t = 0; t < m.taps; ++t) idx[t] = std::clamp<int64_t>(raw[t], 0, a.in_len - 1);
    }
    if (identity) {
      bool hit = false;
      for (int64_t t = 0; t < m.taps; ++t) {
        if (w[t] == 0.0) continue;
        if (w[t] == 1.0 && idx[t] == j && !hit) {
          hit = true;
        } else {
          identity = false;
        }
      }
      if (!hit) identity = false;
    }
  }
  m.identity = identity;
  return m;
}

// Converts an accumulated value back to T: floats round to T; integers are
// saturated to T's range and truncated toward zero (like numpy's astype).
template <typename T, typename Acc>
inline T FromAcc(Acc v) {
  if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
    const double d = static_cast<double>(v);
    if (d <= lo) return std::numeric_limits<T>::lowest();
    if (d >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(d);
  } else {
    return static_cast<T>(v);
  }
}

// Nearest resize: a gather in T; outside samples take the extrapolation value.
template <typename T>
void ResizeGather(const KernelContext& ctx, const T* in, const Shape& in_shape,
                  const std::vector<AxisMap>& maps, const Shape& out_shape, T extrap, T* out) {
  const size_t rank = in_shape.size();
  const Shape in_strides = Strides(in_shape);
  // Per axis: input offset of each output index, or -1 if outside.
  std::vector<std::vector<int64_t>> offs(rank);
  for (size_t d = 0; d < rank; ++d) {
    offs[d].resize(static_cast<size_t>(out_shape[d]));
    for (int64_t j = 0; j < out_shape[d]; ++j) {
      offs[d][j] = maps[d].outside[j] ? -1 : maps[d].index[j] * in_strides[d];
    }
  }
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t last = out_shape[rank - 1];
  const int64_t rows = NumElements(out_shape) / std::max<int64_t>(last, 1);
  ctx.ParallelFor(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(last, 1)),
                  [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> coord(rank, 0);
    for (int64_t r = lo; r < hi; ++r) {
      int64_t rem = r, base = 0;
      bool outside = false;
      for (size_t d = rank - 1; d-- > 0;) {
        const int64_t cj = rem % out_shape[d];
        rem /= out_shape[d];
        const int64_t o = offs[d][cj];
        if (o < 0) outside = true;
        base += o;
      }
      T* dst = out + r * last;
      const std::vector<int64_t>& lo_offs = offs[rank - 1];
      for (int64_t j = 0; j < last; ++j) {
        dst[j] = (outside || lo_offs[j] < 0) ? extrap : in[base + lo_offs[j]];
      }
    }
  });
}

// Linear / cubic resize: separable passes in Acc, last axis first.
template <typename T, typename Acc>
void ResizeFilter(const KernelContext& ctx, const T* in, const Shape& in_shape,
                  const std::vector<AxisMap>& maps, const Shape& out_shape, Acc extrap, T* out) {
  const size_t rank = in_shape.size();
  std::vector<Acc> cur(static_cast<size_t>(NumElements(in_shape)));
  for (size_t i = 0; i < cur.size(); ++i) cur[i] = static_cast<Acc>(static_cast<ComputeT<T>>(in[i]));
  Shape cur_shape = in_shape;
  std::vector<Acc> next;
  for (size_t d = rank; d-- > 0;) {
    const AxisMap& m = maps[d];
    if (m.identity) continue;
    int64_t outer = 1, inner = 1;
    for (size_t k = 0; k < d; ++k) outer *= cur_shape[k];
    for (size_t k = d + 1; k < rank; ++k) inner *= cur_shape[k];
    const int64_t lin = cur_shape[d], lout = m.out_len;
    next.assign(static_cast<size_t>(outer * lout * inner), Acc(0));
    std::vector<Acc> wts(m.weight.begin(), m.weight.end());
    ctx.ParallelFor(0, outer * lout, std::max<int64_t>(1, 4096 / std::max<int64_t>(inner * m.taps, 1)),
                    [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t o = r / lout, j = r % lout;
        Acc* dst = next.data() + r * inner;
        if (m.outside[j]) {
          std::fill(dst, dst + inner, extrap);
          continue;
        }
        for (int64_t t = 0; t < m.taps; ++t) {
          const Acc w = wts[j * m.taps + t];
          if (w == Acc(0)) continue;
          const Acc* src = cur.data() + (o * lin + m.index[j * m.taps + t]) * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
        }
      }
    });
    cur.swap(next);
    cur_shape[d] = lout;
  }
  const int64_t n = NumElements(out_shape);
  for (int64_t i = 0; i < n; ++i) out[i] = FromAcc<T>(cur[i]);
}

// Resizes ctx.Input(0) to out_shape with one AxisSpec per axis.
absl::Status RunResize(KernelContext& ctx, const ResizeConfig& cfg, const std::vector<AxisSpec>& specs) {
  const Tensor& x = ctx.Input(0);
  Shape out_shape;
  for (const AxisSpec& s : specs) out_shape.push_back(s.out_len);
  for (size_t d = 0; d < specs.size(); ++d) {
    if (specs[d].in_len == 0 && specs[d].out_len > 0 && NumElements(out_shape) > 0) {
      return ctx.Error("cannot resize axis ", d, " of length 0 to length ", specs[d].out_len);
    }
  }
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  if (NumElements(out_shape) == 0) return absl::OkStatus();
  std::vector<AxisMap> maps;
  for (size_t d = 0; d < specs.size(); ++d) {
    auto m = BuildAxisMap(cfg, specs[d]);
    if (!m.ok()) return ctx.Error(m.status().message());
    maps.push_back(std::move(*m));
  }
  if (cfg.mode == InterpMode::kNearest) {
    return VisitNumericOrBool(x.dtype(), [&](auto tag) -> absl::Status {
      using T = typename decltype(tag)::type;
      T extrap;
      if constexpr (std::is_same_v<T, bool>) {
        extrap = cfg.extrapolation != 0.0;
      } else {
        extrap = FromAcc<T>(cfg.extrapolation);
      }
      ResizeGather<T>(ctx, x.data<T>(), x.shape(), maps, out_shape, extrap, y->mutable_data<T>());
      return absl::OkStatus();
    });
  }
  return VisitNumeric(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using Acc = std::conditional_t<std::is_same_v<ComputeT<T>, float>, float, double>;
    ResizeFilter<T, Acc>(ctx, x.data<T>(), x.shape(), maps, out_shape, static_cast<Acc>(cfg.extrapolation),
                         y->mutable_data<T>());
    return absl::OkStatus();
  }, "Resize (linear/cubic)");
}

template <typename... Args>
absl::Status PlanError(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

absl::StatusOr<std::vector<double>> ReadScales(const Tensor& t) {
  if (!IsFloatingPoint(t.dtype())) {
    return PlanError("scales must be a float tensor, got ", DTypeName(t.dtype()));
  }
  auto v = ReadDoubles(t);
  if (!v.ok()) return PlanError(v.status().message());
  for (double s : *v) {
    if (!(s > 0.0) || !std::isfinite(s)) return PlanError("scales must be positive and finite, got ", s);
  }
  return *v;
}

// Upsample (7: scales attribute, 9: scales input) and Resize-10: asymmetric
// coordinates, nearest picks floor (ceil when downsampling).
absl::Status SpecsWithScales(const Node& node, const Shape& x, const std::vector<double>& scales, bool upsample,
                             ResizeConfig* cfg, std::vector<AxisSpec>* out) {
  if (scales.size() != x.size()) {
    return PlanError("scales has ", scales.size(), " values for input rank ", x.size());
  }
  const std::string mode = node.GetString("mode", "nearest");
  if (mode == "nearest") {
    cfg->mode = InterpMode::kNearest;
  } else if (mode == "linear" || (upsample && mode == "bilinear")) {
    cfg->mode = InterpMode::kLinear;
  } else {
    return PlanError("unknown mode '", mode, "' (nearest or linear)");
  }
  cfg->coord = CoordMode::kAsymmetric;
  cfg->nearest = NearestMode::kSimple;
  std::vector<AxisSpec> specs(scales.size());
  for (size_t d = 0; d < scales.size(); ++d) {
    if (upsample && scales[d] < 1.0) return PlanError("Upsample scales must be >= 1, got ", scales[d]);
    AxisSpec& s = specs[d];
    s.in_len = x[d];
    s.scale = scales[d];
    const double o = std::floor(static_cast<double>(s.in_len) * scales[d]);
    if (o > 9.0e15) return PlanError("output size overflows");
    s.out_len = static_cast<int64_t>(o);
    s.out_f = s.scale * static_cast<double>(s.in_len);
  }
  *out = std::move(specs);
  return absl::OkStatus();
}

// The configuration and per-axis specs of an Upsample or Resize node for an
// input of shape x and its constant roi / scales / sizes (null when absent).
absl::Status ResizeSpecs(const Node& node, int opset, const Shape& x, const Tensor* roi_t, const Tensor* scales_t,
                         const Tensor* sizes_t, ResizeConfig* cfg_out, std::vector<AxisSpec>* specs_out) {
  ResizeConfig cfg;
  if (node.op_type == "Upsample") {
    std::vector<double> scales;
    if (opset < 9) {
      const Attribute* a = node.FindAttribute("scales");
      if (a == nullptr) return PlanError("attribute 'scales' is required");
      for (float f : a->floats) {
        if (!(f > 0.0f) || !std::isfinite(f)) return PlanError("scales must be positive and finite, got ", f);
        scales.push_back(f);
      }
    } else {
      if (scales_t == nullptr) return PlanError("input 'scales' is required");
      HEPML_ASSIGN_OR_RETURN(scales, ReadScales(*scales_t));
    }
    *cfg_out = cfg;
    return SpecsWithScales(node, x, scales, /*upsample=*/true, cfg_out, specs_out);
  }
  if (opset < 11) {
    if (scales_t == nullptr) return PlanError("input 'scales' is required");
    HEPML_ASSIGN_OR_RETURN(std::vector<double> scales, ReadScales(*scales_t));
    *cfg_out = cfg;
    return SpecsWithScales(node, x, scales, /*upsample=*/false, cfg_out, specs_out);
  }
  const int64_t rank = static_cast<int64_t>(x.size());
  const std::string mode = node.GetString("mode", "nearest");
  if (mode == "nearest") cfg.mode = InterpMode::kNearest;
  else if (mode == "linear") cfg.mode = InterpMode::kLinear;
  else if (mode == "cubic") cfg.mode = InterpMode::kCubic;
  else return PlanError("unknown mode '", mode, "' (nearest, linear or cubic)");
  auto coord = ParseCoordMode(node.GetString("coordinate_transformation_mode", "half_pixel"), opset);
  if (!coord.ok()) return PlanError(coord.status().message());
  cfg.coord = *coord;
  const std::string nearest = node.GetString("nearest_mode", "round_prefer_floor");
  if (nearest == "round_prefer_floor") cfg.nearest = NearestMode::kRoundPreferFloor;
  else if (nearest == "round_prefer_ceil") cfg.nearest = NearestMode::kRoundPreferCeil;
  else if (nearest == "floor") cfg.nearest = NearestMode::kFloor;
  else if (nearest == "ceil") cfg.nearest = NearestMode::kCeil;
  else return PlanError("unknown nearest_mode '", nearest, "'");
  cfg.cubic_a = node.GetFloat("cubic_coeff_a", -0.75f);
  cfg.exclude_outside = node.GetInt("exclude_outside", 0) != 0;
  cfg.extrapolation = node.GetFloat("extrapolation_value", 0.0f);
  std::string policy = "stretch";
  std::vector<int64_t> axes;
  if (opset >= 18) {
    cfg.antialias = node.GetInt("antialias", 0) != 0 && cfg.mode != InterpMode::kNearest;
    policy = node.GetString("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller") {
      return PlanError("unknown keep_aspect_ratio_policy '", policy, "'");
    }
    if (node.HasAttribute("axes")) {
      auto a = NormalizeAxes(node.GetInts("axes"), rank);
      if (!a.ok()) return PlanError("axes: ", a.status().message());
      axes = *a;
    }
  }
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  const size_t na = axes.size();

  // Inputs: roi (1), scales (2), sizes (3); empty tensors count as absent.
  const bool has_scales = scales_t != nullptr && scales_t->size() > 0;
  const bool has_sizes = sizes_t != nullptr && sizes_t->size() > 0;
  if (has_scales == has_sizes) {
    return PlanError(has_scales ? "only one of 'scales' and 'sizes' may be given"
                                : "one of 'scales' and 'sizes' is required");
  }
  std::vector<AxisSpec> specs(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) {
    specs[d].in_len = specs[d].out_len = x[d];
    specs[d].out_f = static_cast<double>(specs[d].in_len);
  }
  if (cfg.coord == CoordMode::kTfCropAndResize) {
    if (roi_t == nullptr || roi_t->size() == 0) return PlanError("tf_crop_and_resize needs a 'roi' input");
    if (!IsFloatingPoint(roi_t->dtype())) return PlanError("roi must be a float tensor");
    auto roi = ReadDoubles(*roi_t);
    if (!roi.ok()) return PlanError(roi.status().message());
    if (roi->size() != 2 * na) {
      return PlanError("roi has ", roi->size(), " values; expected ", 2 * na);
    }
    for (size_t i = 0; i < na; ++i) {
      specs[axes[i]].roi_start = (*roi)[i];
      specs[axes[i]].roi_end = (*roi)[na + i];
    }
  }
  if (has_scales) {
    auto scales = ReadScales(*scales_t);
    if (!scales.ok()) return scales.status();
    if (scales->size() != na) {
      return PlanError("scales has ", scales->size(), " values; expected ", na);
    }
    for (size_t i = 0; i < na; ++i) {
      AxisSpec& s = specs[axes[i]];
      s.scale = (*scales)[i];
      double len = static_cast<double>(s.in_len) * s.scale;
      s.out_f = len;
      if (cfg.coord == CoordMode::kTfCropAndResize) len *= (s.roi_end - s.roi_start);
      len = std::floor(len);
      if (!(len >= 0.0) || len > 9.0e15) return PlanError("invalid output size ", len, " for axis ", axes[i]);
      s.out_len = static_cast<int64_t>(len);
    }
  } else {
    auto sizes = ReadInt64s(*sizes_t);
    if (!sizes.ok()) return PlanError("sizes: ", sizes.status().message());
    if (sizes->size() != na) {
      return PlanError("sizes has ", sizes->size(), " values; expected ", na);
    }
    for (int64_t v : *sizes) {
      if (v < 0) return PlanError("sizes must be non-negative, got ", v);
    }
    if (policy == "stretch") {
      for (size_t i = 0; i < na; ++i) {
        AxisSpec& s = specs[axes[i]];
        s.out_len = (*sizes)[i];
        s.out_f = static_cast<double>(s.out_len);
        s.scale = s.in_len == 0 ? 1.0 : s.out_f / static_cast<double>(s.in_len);
      }
    } else {
      double scale = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
      for (size_t i = 0; i < na; ++i) {
        const AxisSpec& s = specs[axes[i]];
        if (s.in_len == 0) return PlanError("keep_aspect_ratio_policy needs non-empty axes");
        const double r = static_cast<double>((*sizes)[i]) / static_cast<double>(s.in_len);
        scale = policy == "not_larger" ? std::min(scale, r) : std::max(scale, r);
      }
      for (size_t i = 0; i < na; ++i) {
        AxisSpec& s = specs[axes[i]];
        s.scale = scale;
        s.out_f = scale * static_cast<double>(s.in_len);
        s.out_len = static_cast<int64_t>(std::floor(s.out_f + 0.5));
      }
    }
    for (size_t i = 0; i < na; ++i) {
      if (!(specs[axes[i]].scale > 0.0) && specs[axes[i]].out_len > 0) {
        return PlanError("invalid size for axis ", axes[i]);
      }
    }
  }
  *cfg_out = cfg;
  *specs_out = std::move(specs);
  return absl::OkStatus();
}

const Tensor* OptionalInput(const KernelContext& ctx, size_t i) {
  return ctx.HasInput(i) ? &ctx.Input(i) : nullptr;
}

absl::Status ComputeResizeOrUpsample(KernelContext& ctx) {
  ResizeConfig cfg;
  std::vector<AxisSpec> specs;
  const bool upsample = ctx.node().op_type == "Upsample";
  const bool roi_input = !upsample && ctx.opset() >= 11;
  absl::Status st = ResizeSpecs(ctx.node(), ctx.opset(), ctx.Input(0).shape(),
                                roi_input ? OptionalInput(ctx, 1) : nullptr,
                                OptionalInput(ctx, roi_input ? 2 : 1), roi_input ? OptionalInput(ctx, 3) : nullptr,
                                &cfg, &specs);
  if (!st.ok()) return ctx.Error(st.message());
  return RunResize(ctx, cfg, specs);
}

absl::Status ComputeUpsample(KernelContext& ctx) { return ComputeResizeOrUpsample(ctx); }
absl::Status ComputeResize(KernelContext& ctx) { return ComputeResizeOrUpsample(ctx); }

}  // namespace

absl::StatusOr<ResizePlan> PlanResize(const Node& node, int opset, const Shape& x, const Tensor* roi,
                                      const Tensor* scales, const Tensor* sizes) {
  ResizeConfig cfg;
  std::vector<AxisSpec> specs;
  HEPML_RETURN_IF_ERROR(ResizeSpecs(node, opset, x, roi, scales, sizes, &cfg, &specs));
  ResizePlan plan;
  plan.nearest = cfg.mode == InterpMode::kNearest;
  plan.extrapolation = cfg.extrapolation;
  for (const AxisSpec& s : specs) {
    HEPML_ASSIGN_OR_RETURN(AxisMap m, BuildAxisMap(cfg, s));
    ResizePlan::Axis a;
    a.in_len = m.in_len;
    a.out_len = m.out_len;
    a.taps = m.taps;
    a.index = std::move(m.index);
    a.weight = std::move(m.weight);
    a.outside = std::move(m.outside);
    a.identity = m.identity;
    plan.axes.push_back(std::move(a));
  }
  return plan;
}

namespace {

absl::Status InferSameRank(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.empty() || ctx.input_types[0].kind != TypeInfo::Kind::kTensor) {
    return absl::OkStatus();
  }
  const TypeInfo& in = ctx.input_types[0];
  if (!in.has_shape) {
    outputs[0] = TypeInfo::Tensor(in.dtype);
  } else {
    outputs[0] = TypeInfo::Tensor(in.dtype, std::vector<Dim>(in.shape.size()));
  }
  return absl::OkStatus();
}

// ---- GridSample ---------------------------------------------------------------

enum class Padding { kZeros, kBorder, kReflection };

// Reflects x into [lo, hi] (PyTorch's reflect_coordinates semantics).
double Reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (!(range > 0.0)) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const double n = std::floor(dx / range);
    const double r = dx - n * range;
    return std::fmod(n, 2.0) == 0.0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const double n = std::floor(dx / range);
    const double r = dx - n * range;
    return std::fmod(n, 2.0) == 0.0 ? hi - r : lo + r;
  }
  return x;
}

absl::Status ComputeGridSample(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& grid = ctx.Input(1);
  const Node& node = ctx.node();
  const int64_t r = x.rank() - 2;
  if (r < 1) return ctx.Error("X must have rank >= 3, got ", x.rank());
  if (ctx.opset() < 20 && r != 2) return ctx.Error("X must be 4-D before opset 20, got rank ", x.rank());
  if (grid.rank() != r + 2 || grid.dim(static_cast<int>(r + 1)) != r || grid.dim(0) != x.dim(0)) {
    return ctx.Error("grid shape ", ShapeToString(grid.shape()), " does not fit X shape ",
                     ShapeToString(x.shape()), " (expected [N, ...", r, " dims..., ", r, "])");
  }
  if (!IsFloatingPoint(grid.dtype())) return ctx.Error("grid must be a float tensor");
  const std::string mode_s = node.GetString("mode", ctx.opset() >= 20 ? "linear" : "bilinear");
  InterpMode mode;
  if (mode_s == "bilinear" || mode_s == "linear") mode = InterpMode::kLinear;
  else if (mode_s == "nearest") mode = InterpMode::kNearest;
  else if (mode_s == "bicubic" || mode_s == "cubic") mode = InterpMode::kCubic;
  else return ctx.Error("unknown mode '", mode_s, "'");
  const std::string pad_s = node.GetString("padding_mode", "zeros");
  Padding pad;
  if (pad_s == "zeros") pad = Padding::kZeros;
  else if (pad_s == "border") pad = Padding::kBorder;
  else if (pad_s == "reflection") pad = Padding::kReflection;
  else return ctx.Error("unknown padding_mode '", pad_s, "'");
  const bool align = node.GetInt("align_corners", 0) != 0;

  const int64_t N = x.dim(0), C = x.dim(1);
  Shape in_sp(x.shape().begin() + 2, x.shape().end());
  Shape out_sp(grid.shape().begin() + 1, grid.shape().end() - 1);
  Shape out_shape = {N, C};
  out_shape.insert(out_shape.end(), out_sp.begin(), out_sp.end());
  Tensor* y = ctx.Output(0, x.dtype(), out_shape);
  const int64_t n_out = NumElements(out_sp), n_in = NumElements(in_sp);
  if (NumElements(out_shape) == 0) return absl::OkStatus();
  if (n_in == 0) return ctx.Error("X has an empty spatial dimension");
  auto g = ReadDoubles(grid);
  if (!g.ok()) return ctx.Error(g.status().message());
  const Shape in_strides = Strides(in_sp);
  const int64_t taps1 = mode == InterpMode::kNearest ? 1 : mode == InterpMode::kLinear ? 2 : 4;

  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ctx.ParallelFor(0, N * n_out, 64, [&](int64_t lo, int64_t hi) {
      // Per spatial axis: taps1 (index or -1 for a zero, weight) pairs.
      std::vector<int64_t> tidx(static_cast<size_t>(r * taps1));
      std::vector<double> tw(static_cast<size_t>(r * taps1));
      std::vector<int64_t> combo(static_cast<size_t>(r));
      std::vector<double> acc(static_cast<size_t>(C));
      for (int64_t q = lo; q < hi; ++q) {
        const int64_t n = q / n_out, p = q % n_out;
        const double* gp = g->data() + q * r;
        for (int64_t d = 0; d < r; ++d) {
          const double L = static_cast<double>(in_sp[d]);
          const double v = gp[r - 1 - d];  // grid's last axis lists x (the last dim) first
          double c = align ? (v + 1.0) / 2.0 * (L - 1.0) : ((v + 1.0) * L - 1.0) / 2.0;
          const double lo_b = align ? 0.0 : -0.5, hi_b = align ? L - 1.0 : L - 0.5;
          if (std::isnan(c)) c = pad == Padding::kZeros ? -(L + 8.0) : 0.0;
          if (mode == InterpMode::kNearest) c = r == 3 ? std::round(c) : std::nearbyint(c);
          if (c < lo_b || c > hi_b) {
            // Border padding clamps the coordinate for nearest and linear. Cubic
            // keeps it and clamps each of its four taps instead, i.e. interpolates
            // the border-extended image (as PyTorch's grid_sample and ONNX Runtime;
            // onnx's reference op_grid_sample.py clamps both, which loses the
            // cubic overshoot next to the border). For reflection the two are
            // equal: the reflected extension is symmetric about both bounds.
            if (pad == Padding::kBorder && mode != InterpMode::kCubic) c = std::clamp(c, 0.0, L - 1.0);
            else if (pad == Padding::kReflection) c = Reflect(c, lo_b, hi_b);
          }
          c = std::clamp(c, -(L + 8.0), L + 8.0);  // beyond this every tap is padding
          int64_t* ti = tidx.data() + d * taps1;
          double* w = tw.data() + d * taps1;
          int64_t first;
          if (mode == InterpMode::kNearest) {
            first = static_cast<int64_t>(c);  // truncation, as the reference
            w[0] = 1.0;
          } else {
            const double f = std::floor(c);
            const double t = c - f;
            first = static_cast<int64_t>(f) - (mode == InterpMode::kCubic ? 1 : 0);
            if (mode == InterpMode::kLinear) {
              w[0] = 1.0 - t;
              w[1] = t;
            } else {
              for (int64_t k = 0; k < 4; ++k) w[k] = CubicKernel(static_cast<double>(k - 1) - t, -0.75);
            }
          }
          const int64_t len = in_sp[d];
          for (int64_t k = 0; k < taps1; ++k) {
            int64_t i = first + k;
            if (i < 0 || i >= len) {
              if (pad == Padding::kZeros) i = -1;
              else if (pad == Padding::kBorder) i = std::clamp<int64_t>(i, 0, len - 1);
              else i = std::clamp<int64_t>(static_cast<int64_t>(Reflect(static_cast<double>(i), lo_b, hi_b)), 0, len - 1);
            }
            ti[k] = i;
          }
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        std::fill(combo.begin(), combo.end(), 0);
        const T* xn = px + n * C * n_in;
        while (true) {
          double w = 1.0;
          int64_t off = 0;
          bool zero = false;
          for (int64_t d = 0; d < r; ++d) {
            const int64_t i = tidx[d * taps1 + combo[d]];
            w *= tw[d * taps1 + combo[d]];
            if (i < 0) zero = true;
            off += i * in_strides[d];
          }
          if (!zero && w != 0.0) {
            for (int64_t ch = 0; ch < C; ++ch) {
              acc[ch] += w * static_cast<double>(static_cast<ComputeT<T>>(xn[ch * n_in + off]));
            }
          }
          int64_t d = r - 1;
          for (; d >= 0; --d) {
            if (++combo[d] < taps1) break;
            combo[d] = 0;
          }
          if (d < 0) break;
        }
        T* yn = py + n * C * n_out + p;
        for (int64_t ch = 0; ch < C; ++ch) yn[ch * n_out] = static_cast<T>(static_cast<ComputeT<T>>(acc[ch]));
      }
    });
    return absl::OkStatus();
  });
}

absl::Status InferGridSample(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2) return absl::OkStatus();
  const TypeInfo& xt = ctx.input_types[0];
  const TypeInfo& gt = ctx.input_types[1];
  if (xt.kind != TypeInfo::Kind::kTensor) return absl::OkStatus();
  if (!xt.has_shape || !gt.has_shape || xt.shape.size() < 3 || gt.shape.size() != xt.shape.size()) {
    outputs[0] = TypeInfo::Tensor(xt.dtype);
    return absl::OkStatus();
  }
  std::vector<Dim> dims = {xt.shape[0], xt.shape[1]};
  dims.insert(dims.end(), gt.shape.begin() + 1, gt.shape.end() - 1);
  outputs[0] = TypeInfo::Tensor(xt.dtype, std::move(dims));
  return absl::OkStatus();
}

// ---- RoiAlign -------------------------------------------------------------------

absl::Status ComputeRoiAlign(KernelContext& ctx) {
  const Tensor& x = ctx.Input(0);
  const Tensor& rois = ctx.Input(1);
  const Tensor& bidx_t = ctx.Input(2);
  const Node& node = ctx.node();
  if (x.rank() != 4) return ctx.Error("X must be 4-D (N, C, H, W), got ", ShapeToString(x.shape()));
  if (rois.rank() != 2 || rois.dim(1) != 4) {
    return ctx.Error("rois must have shape [num_rois, 4], got ", ShapeToString(rois.shape()));
  }
  if (rois.dtype() != x.dtype()) return ctx.Error("rois type differs from X type");
  if (bidx_t.rank() != 1 || bidx_t.dim(0) != rois.dim(0)) {
    return ctx.Error("batch_indices must have shape [", rois.dim(0), "], got ", ShapeToString(bidx_t.shape()));
  }
  auto bidx = ReadInt64s(bidx_t);
  if (!bidx.ok()) return ctx.Error("batch_indices: ", bidx.status().message());
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  for (int64_t b : *bidx) {
    if (b < 0 || b >= N) return ctx.Error("batch index ", b, " is out of range [0, ", N, ")");
  }
  const std::string mode = node.GetString("mode", "avg");
  if (mode != "avg" && mode != "max") return ctx.Error("unknown mode '", mode, "' (avg or max)");
  const bool is_max = mode == "max";
  const int64_t oh = node.GetInt("output_height", 1), ow = node.GetInt("output_width", 1);
  if (oh <= 0 || ow <= 0) return ctx.Error("output_height and output_width must be positive");
  const int64_t sampling = node.GetInt("sampling_ratio", 0);
  if (sampling < 0) return ctx.Error("sampling_ratio must be >= 0, got ", sampling);
  const double spatial_scale = node.GetFloat("spatial_scale", 1.0f);
  bool half_pixel = false;
  if (ctx.opset() >= 16) {
    const std::string ctm = node.GetString("coordinate_transformation_mode", "half_pixel");
    if (ctm == "half_pixel") half_pixel = true;
    else if (ctm != "output_half_pixel") return ctx.Error("unknown coordinate_transformation_mode '", ctm, "'");
  }
  const int64_t R = rois.dim(0);
  Tensor* y = ctx.Output(0, x.dtype(), {R, C, oh, ow});
  if (R == 0 || C == 0) return absl::OkStatus();
  if (H == 0 || W == 0) return ctx.Error("X has an empty spatial dimension");
  auto roi_v = ReadDoubles(rois);
  if (!roi_v.ok()) return ctx.Error(roi_v.status().message());

  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y->mutable_data<T>();
    ctx.ParallelFor(0, R, 1, [&](int64_t lo, int64_t hi) {
      struct Sample {
        int64_t pos[4];
        double w[4];
      };
      std::vector<Sample> samples;
      for (int64_t n = lo; n < hi; ++n) {
        const double* rv = roi_v->data() + n * 4;
        const double offset = half_pixel ? 0.5 : 0.0;
        const double start_w = rv[0] * spatial_scale - offset;
        const double start_h = rv[1] * spatial_scale - offset;
        const double end_w = rv[2] * spatial_scale - offset;
        const double end_h = rv[3] * spatial_scale - offset;
        double roi_w = end_w - start_w, roi_h = end_h - start_h;
        if (!half_pixel) {
          roi_w = std::max(roi_w, 1.0);
          roi_h = std::max(roi_h, 1.0);
        }
        const double bin_h = roi_h / static_cast<double>(oh);
        const double bin_w = roi_w / static_cast<double>(ow);
        auto grid_count = [&](double v) -> int64_t {
          if (sampling > 0) return sampling;
          const double c = std::ceil(v);
          if (!(c > 0.0)) return 0;
          return static_cast<int64_t>(std::min(c, 1.0e6));
        };
        const int64_t gh = grid_count(roi_h / static_cast<double>(oh));
        const int64_t gw = grid_count(roi_w / static_cast<double>(ow));
        const double count = static_cast<double>(std::max<int64_t>(gh * gw, 1));
        samples.assign(static_cast<size_t>(oh * ow * gh * gw), Sample{});
        size_t si = 0;
        for (int64_t ph = 0; ph < oh; ++ph) {
          for (int64_t pw = 0; pw < ow; ++pw) {
            for (int64_t iy = 0; iy < gh; ++iy) {
              const double yy = start_h + ph * bin_h + (iy + 0.5) * bin_h / static_cast<double>(gh);
              for (int64_t ix = 0; ix < gw; ++ix, ++si) {
                double xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / static_cast<double>(gw);
                double yv = yy;
                Sample& s = samples[si];
                if (!(yv >= -1.0 && yv <= static_cast<double>(H) && xx >= -1.0 && xx <= static_cast<double>(W))) {
                  continue;  // outside the feature map: contributes 0
                }
                yv = std::max(yv, 0.0);
                xx = std::max(xx, 0.0);
                int64_t y_lo = static_cast<int64_t>(yv), x_lo = static_cast<int64_t>(xx), y_hi, x_hi;
                if (y_lo >= H - 1) {
                  y_hi = y_lo = H - 1;
                  yv = static_cast<double>(y_lo);
                } else {
                  y_hi = y_lo + 1;
                }
                if (x_lo >= W - 1) {
                  x_hi = x_lo = W - 1;
                  xx = static_cast<double>(x_lo);
                } else {
                  x_hi = x_lo + 1;
                }
                const double ly = yv - y_lo, lx = xx - x_lo, hy = 1.0 - ly, hx = 1.0 - lx;
                s.pos[0] = y_lo * W + x_lo;
                s.pos[1] = y_lo * W + x_hi;
                s.pos[2] = y_hi * W + x_lo;
                s.pos[3] = y_hi * W + x_hi;
                s.w[0] = hy * hx;
                s.w[1] = hy * lx;
                s.w[2] = ly * hx;
                s.w[3] = ly * lx;
              }
            }
          }
        }
        const int64_t per_bin = gh * gw;
        for (int64_t c = 0; c < C; ++c) {
          const T* xc = px + ((*bidx)[n] * C + c) * H * W;
          T* yc = py + (n * C + c) * oh * ow;
          for (int64_t b = 0; b < oh * ow; ++b) {
            const Sample* sb = samples.data() + b * per_bin;
            double out = 0.0;
            for (int64_t k = 0; k < per_bin; ++k) {
              const Sample& s = sb[k];
              double v[4];
              for (int q = 0; q < 4; ++q) v[q] = s.w[q] * static_cast<double>(static_cast<ComputeT<T>>(xc[s.pos[q]]));
              if (is_max) {
                // As ONNX Runtime and the reference: the max of the weighted
                // corner values, not of the interpolated value.
                const double m = std::max(std::max(v[0], v[1]), std::max(v[2], v[3]));
                out = k == 0 ? m : std::max(out, m);
              } else {
                out += v[0] + v[1] + v[2] + v[3];
              }
            }
            if (!is_max) out /= count;
            yc[b] = static_cast<T>(static_cast<ComputeT<T>>(out));
          }
        }
      }
    });
    return absl::OkStatus();
  });
}

absl::Status InferRoiAlign(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (ctx.input_types.size() < 2 || ctx.input_types[0].kind != TypeInfo::Kind::kTensor) {
    return absl::OkStatus();
  }
  const TypeInfo& xt = ctx.input_types[0];
  const TypeInfo& rt = ctx.input_types[1];
  Dim r = rt.has_shape && !rt.shape.empty() ? rt.shape[0] : Dim{};
  Dim c = xt.has_shape && xt.shape.size() == 4 ? xt.shape[1] : Dim{};
  outputs[0] = TypeInfo::Tensor(xt.dtype, {r, c, Dim{ctx.node.GetInt("output_height", 1), ""},
                                           Dim{ctx.node.GetInt("output_width", 1), ""}});
  return absl::OkStatus();
}

// ---- AffineGrid -----------------------------------------------------------------

// Output 0 has input 0's dtype; its shape depends on input values.
absl::Status InferDTypeOnly(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (!ctx.input_types.empty() && ctx.input_types[0].kind == TypeInfo::Kind::kTensor) {
    outputs[0] = TypeInfo::Tensor(ctx.input_types[0].dtype);
  }
  return absl::OkStatus();
}

absl::Status ComputeAffineGrid(KernelContext& ctx) {
  const Tensor& theta = ctx.Input(0);
  const Tensor& size_t_ = ctx.Input(1);
  const bool align = ctx.node().GetInt("align_corners", 0) != 0;
  auto size = ReadInt64s(size_t_);
  if (!size.ok()) return ctx.Error("size: ", size.status().message());
  if (size_t_.rank() != 1 || (size->size() != 4 && size->size() != 5)) {
    return ctx.Error("size must be 1-D with 4 (N, C, H, W) or 5 (N, C, D, H, W) values");
  }
  const int64_t nsp = static_cast<int64_t>(size->size()) - 2;  // 2 or 3
  const int64_t N = (*size)[0];
  if (theta.rank() != 3 || theta.dim(0) != N || theta.dim(1) != nsp || theta.dim(2) != nsp + 1) {
    return ctx.Error("theta must have shape [", N, ", ", nsp, ", ", nsp + 1, "], got ",
                     ShapeToString(theta.shape()));
  }
  Shape sp(size->begin() + 2, size->end());
  for (int64_t v : sp) {
    if (v < 0) return ctx.Error("size values must be non-negative");
  }
  Shape out_shape = {N};
  out_shape.insert(out_shape.end(), sp.begin(), sp.end());
  out_shape.push_back(nsp);
  Tensor* y = ctx.Output(0, theta.dtype(), out_shape);
  if (NumElements(out_shape) == 0) return absl::OkStatus();
  // Normalised base coordinates per spatial axis (D, H, W order).
  std::vector<std::vector<double>> base(static_cast<size_t>(nsp));
  for (int64_t d = 0; d < nsp; ++d) {
    const int64_t L = sp[d];
    for (int64_t i = 0; i < L; ++i) {
      double v;
      if (align) {
        v = L == 1 ? -1.0 : -1.0 + static_cast<double>(i) * (2.0 / static_cast<double>(L - 1));
      } else {
        const double step = 2.0 / static_cast<double>(L);
        v = -1.0 + step / 2.0 + static_cast<double>(i) * step;
      }
      base[d].push_back(v);
    }
  }
  auto th = ReadDoubles(theta);
  if (!th.ok()) return ctx.Error(th.status().message());
  const int64_t points = NumElements(sp);
  return VisitFloat(theta.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* py = y->mutable_data<T>();
    std::vector<double> h(static_cast<size_t>(nsp + 1), 1.0);  // homogeneous (x, y[, z], 1)
    for (int64_t n = 0; n < N; ++n) {
      const double* t = th->data() + n * nsp * (nsp + 1);
      for (int64_t p = 0; p < points; ++p) {
        int64_t rem = p;
        for (int64_t d = nsp - 1; d >= 0; --d) {
          // Spatial axis d (D/H/W order) is homogeneous component nsp-1-d.
          h[nsp - 1 - d] = base[d][rem % sp[d]];
          rem /= sp[d];
        }
        T* out = py + (n * points + p) * nsp;
        for (int64_t k = 0; k < nsp; ++k) {
          double v = 0.0;
          for (int64_t j = 0; j <= nsp; ++j) v += t[k * (nsp + 1) + j] * h[j];
          out[k] = static_cast<T>(static_cast<ComputeT<T>>(v));
        }
      }
    }
    return absl::OkStatus();
  });
}

constexpr DTypeSet kResizeTypes = kNumericTypes | Bit(DType::kBool);
constexpr DTypeSet kRoiAlignTypes = Bit(DType::kFloat32) | Bit(DType::kFloat64) | Bit(DType::kFloat16);

const OpTableRegistration kImageOps({
    // 10: scales input, nearest/linear; 11/13: roi, sizes, coordinate modes,
    // cubic; 18: antialias, axes, keep_aspect_ratio_policy; 19: half_pixel_symmetric.
    {.name = "Resize", .since = 10, .types = kResizeTypes, .infer = InferSameRank, .compute = ComputeResize},
    // Deprecated at opset 10 (replaced by Resize).
    {.name = "Upsample", .since = 7, .until = 9, .types = kResizeTypes, .infer = InferSameRank,
     .compute = ComputeUpsample},
    // 16: 4-D, bilinear/nearest/bicubic; 20: N-D, linear/nearest/cubic.
    {.name = "GridSample", .since = 16, .types = kFloatTypes, .infer = InferGridSample,
     .compute = ComputeGridSample},
    // 16 adds coordinate_transformation_mode (default half_pixel).
    {.name = "RoiAlign", .since = 10, .types = kRoiAlignTypes, .infer = InferRoiAlign,
     .compute = ComputeRoiAlign},
    {.name = "AffineGrid", .since = 20, .types = kFloatTypes, .infer = InferDTypeOnly,
     .compute = ComputeAffineGrid},
});

}  // namespace
}  // namespace hepml::ops
