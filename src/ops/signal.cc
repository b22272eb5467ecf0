// Signal-processing operators: DFT (17, 20), STFT (17), HannWindow,
// HammingWindow, BlackmanWindow and MelWeightMatrix (17).
//
// Transforms run in double precision whatever the tensor type: radix-2 FFT for
// power-of-two lengths, a direct O(n^2) DFT for short other lengths, and
// Bluestein's chirp-z algorithm (three power-of-two FFTs) for long ones.
// Complex values are stored as a trailing dimension of 2 (real, imaginary).
#include <cmath>
#include <complex>
#include <numbers>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "tensor/dispatch.h"

namespace hepml::ops {
namespace {

using Complex = std::complex<double>;

bool IsPowerOfTwo(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// exp(-2*pi*i*k/n), computed from the reduced angle for accuracy.
Complex Twiddle(int64_t k, int64_t n) {
  const double angle = -2.0 * std::numbers::pi * static_cast<double>(k % n) / static_cast<double>(n);
  return {std::cos(angle), std::sin(angle)};
}

// Unnormalised forward DFT (sign -1) of length n, in place. Not thread-safe:
// one instance per thread.
class Fft {
 public:
  explicit Fft(int64_t n) : n_(n) {
    if (n_ <= 1) return;
    if (IsPowerOfTwo(n_)) {
      twiddles_.resize(n_ / 2);
      for (int64_t k = 0; k < n_ / 2; ++k) twiddles_[k] = Twiddle(k, n_);
    } else if (n_ <= kDirectMax) {
      twiddles_.resize(n_);
      for (int64_t k = 0; k < n_; ++k) twiddles_[k] = Twiddle(k, n_);
      scratch_.resize(n_);
    } else {
      // Bluestein: X[k] = c[k] * sum_j (x[j] c[j]) conj(c[k - j]) with
      // c[k] = exp(-i pi k^2 / n), a circular convolution of length m.
      int64_t m = 1;
      while (m < 2 * n_ - 1) m <<= 1;
      inner_ = std::make_unique<Fft>(m);
      chirp_.resize(n_);
      for (int64_t k = 0; k < n_; ++k) {
        const int64_t k2 = (k * k) % (2 * n_);  // k^2 mod 2n keeps the angle exact
        const double angle = -std::numbers::pi * static_cast<double>(k2) / static_cast<double>(n_);
        chirp_[k] = {std::cos(angle), std::sin(angle)};
      }
      kernel_.assign(m, Complex(0, 0));
      kernel_[0] = std::conj(chirp_[0]);
      for (int64_t k = 1; k < n_; ++k) kernel_[k] = kernel_[m - k] = std::conj(chirp_[k]);
      inner_->Forward(kernel_.data());
      scratch_.resize(m);
    }
  }

  void Forward(Complex* x) {
    if (n_ <= 1) return;
    if (IsPowerOfTwo(n_)) {
      Radix2(x);
    } else if (n_ <= kDirectMax) {
      for (int64_t k = 0; k < n_; ++k) {
        Complex acc(0, 0);
        int64_t idx = 0;
        for (int64_t j = 0; j < n_; ++j) {
          acc += x[j] * twiddles_[idx];
          idx += k;
          if (idx >= n_) idx -= n_;
        }
        scratch_[k] = acc;
      }
      std::copy(scratch_.begin(), scratch_.end(), x);
    } else {
      const int64_t m = static_cast<int64_t>(scratch_.size());
      for (int64_t k = 0; k < n_; ++k) scratch_[k] = x[k] * chirp_[k];
      std::fill(scratch_.begin() + n_, scratch_.end(), Complex(0, 0));
      inner_->Forward(scratch_.data());
      for (int64_t k = 0; k < m; ++k) scratch_[k] = std::conj(scratch_[k] * kernel_[k]);
      inner_->Forward(scratch_.data());  // inverse via conj(fft(conj(.)))
      const double inv_m = 1.0 / static_cast<double>(m);
      for (int64_t k = 0; k < n_; ++k) x[k] = chirp_[k] * std::conj(scratch_[k]) * inv_m;
    }
  }

  // Inverse DFT including the 1/n factor.
  void Inverse(Complex* x) {
    for (int64_t k = 0; k < n_; ++k) x[k] = std::conj(x[k]);
    Forward(x);
    const double inv_n = n_ > 0 ? 1.0 / static_cast<double>(n_) : 0.0;
    for (int64_t k = 0; k < n_; ++k) x[k] = std::conj(x[k]) * inv_n;
  }

 private:
  static constexpr int64_t kDirectMax = 64;

  void Radix2(Complex* x) const {
    for (int64_t i = 1, j = 0; i < n_; ++i) {
      int64_t bit = n_ >> 1;
      for (; j & bit; bit >>= 1) j ^= bit;
      j ^= bit;
      if (i < j) std::swap(x[i], x[j]);
    }
    for (int64_t len = 2; len <= n_; len <<= 1) {
      const int64_t half = len / 2, step = n_ / len;
      for (int64_t start = 0; start < n_; start += len) {
        for (int64_t k = 0; k < half; ++k) {
          const Complex t = x[start + k + half] * twiddles_[k * step];
          x[start + k + half] = x[start + k] - t;
          x[start + k] += t;
        }
      }
    }
  }

  int64_t n_;
  std::vector<Complex> twiddles_;
  std::vector<Complex> chirp_, kernel_, scratch_;
  std::unique_ptr<Fft> inner_;
};

// Reads a scalar integer input; `what` names it in errors.
absl::StatusOr<int64_t> ScalarIntInput(KernelContext& ctx, size_t i, const char* what) {
  auto v = ReadScalarInt(ctx.Input(i));
  if (!v.ok()) return ctx.Error(what, ": ", v.status().message());
  return *v;
}

// ---- DFT ----
absl::Status ComputeDFT(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  const int r = x.rank();
  if (r < 2) return ctx.Error("input must have rank >= 2 ([..., 1 or 2]), got ", ShapeToString(x.shape()));
  const int64_t comp = x.dim(r - 1);
  if (comp != 1 && comp != 2) {
    return ctx.Error("the last dimension must be 1 (real) or 2 (complex), got ", comp);
  }
  int64_t axis = ctx.node().GetInt("axis", 1);
  if (ctx.opset() >= 20) {
    axis = -2;
    if (ctx.HasInput(2)) {
      auto a = ScalarIntInput(ctx, 2, "axis");
      if (!a.ok()) return a.status();
      axis = *a;
    }
  }
  const int64_t norm_axis = axis < 0 ? axis + r : axis;
  if (norm_axis < 0 || norm_axis > r - 2) {
    return ctx.Error("axis ", axis, " is out of range for rank ", r, " (the last dimension holds complex parts)");
  }
  const int64_t len_in = x.dim(static_cast<int>(norm_axis));
  int64_t n = len_in;
  if (ctx.HasInput(1)) {
    auto v = ScalarIntInput(ctx, 1, "dft_length");
    if (!v.ok()) return v.status();
    if (*v <= 0) return ctx.Error("dft_length must be positive, got ", *v);
    n = *v;
  }
  const bool inverse = ctx.node().GetInt("inverse", 0) != 0;
  const bool onesided = ctx.node().GetInt("onesided", 0) != 0;
  const int64_t out_n = onesided ? n / 2 + 1 : n;

  Shape out_shape = x.shape();
  out_shape[norm_axis] = n == 0 ? 0 : out_n;
  out_shape[r - 1] = 2;
  Tensor* out = ctx.Output(0, x.dtype(), out_shape);
  if (out->size() == 0) return absl::OkStatus();

  int64_t outer = 1, inner = 1;
  for (int d = 0; d < norm_axis; ++d) outer *= x.dim(d);
  for (int d = static_cast<int>(norm_axis) + 1; d < r - 1; ++d) inner *= x.dim(d);
  const int64_t copy_n = std::min(len_in, n);

  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    T* po = out->mutable_data<T>();
    ctx.ParallelFor(0, outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)),
                    [&](int64_t lo, int64_t hi) {
                      Fft fft(n);
                      std::vector<Complex> line(n);
                      for (int64_t l = lo; l < hi; ++l) {
                        const int64_t o = l / inner, i = l % inner;
                        const T* src = px + (o * len_in * inner + i) * comp;
                        for (int64_t k = 0; k < copy_n; ++k) {
                          const T* e = src + k * inner * comp;
                          line[k] = Complex(static_cast<C>(e[0]), comp == 2 ? static_cast<C>(e[1]) : C(0));
                        }
                        std::fill(line.begin() + copy_n, line.end(), Complex(0, 0));
                        if (inverse) fft.Inverse(line.data());
                        else fft.Forward(line.data());
                        T* dst = po + (o * out_n * inner + i) * 2;
                        for (int64_t k = 0; k < out_n; ++k) {
                          dst[k * inner * 2] = static_cast<T>(static_cast<C>(line[k].real()));
                          dst[k * inner * 2 + 1] = static_cast<T>(static_cast<C>(line[k].imag()));
                        }
                      }
                    });
    return absl::OkStatus();
  });
}

// ---- STFT ----
// signal [batch, length, 1 or 2], frame_step, window [frame_length] (optional),
// frame_length (optional) -> [batch, frames, bins, 2].
absl::Status ComputeSTFT(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 2); !st.ok()) return st;
  const Tensor& x = ctx.Input(0);
  if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2)) {
    return ctx.Error("signal must be [batch, signal_length, 1 or 2], got ", ShapeToString(x.shape()));
  }
  const int64_t batch = x.dim(0), length = x.dim(1), comp = x.dim(2);
  auto step = ScalarIntInput(ctx, 1, "frame_step");
  if (!step.ok()) return step.status();
  if (*step <= 0) return ctx.Error("frame_step must be positive, got ", *step);
  const Tensor* window = ctx.HasInput(2) ? &ctx.Input(2) : nullptr;
  int64_t frame_length = -1;
  if (window != nullptr) {
    if (window->rank() != 1) return ctx.Error("window must be 1-D, got ", ShapeToString(window->shape()));
    if (window->dtype() != x.dtype()) {
      return ctx.Error("window type ", DTypeName(window->dtype()), " differs from signal type ",
                       DTypeName(x.dtype()));
    }
    frame_length = window->dim(0);
  }
  if (ctx.HasInput(3)) {
    auto fl = ScalarIntInput(ctx, 3, "frame_length");
    if (!fl.ok()) return fl.status();
    if (window != nullptr && *fl != frame_length) {
      return ctx.Error("frame_length ", *fl, " differs from the window length ", frame_length);
    }
    frame_length = *fl;
  }
  if (frame_length < 0) return ctx.Error("one of window or frame_length must be given");
  if (frame_length == 0 || frame_length > length) {
    return ctx.Error("frame_length ", frame_length, " must be in [1, signal_length = ", length, "]");
  }
  const bool onesided = ctx.node().GetInt("onesided", 1) != 0;
  const int64_t frames = 1 + (length - frame_length) / *step;
  const int64_t bins = onesided ? frame_length / 2 + 1 : frame_length;
  Tensor* out = ctx.Output(0, x.dtype(), Shape{batch, frames, bins, 2});
  if (out->size() == 0) return absl::OkStatus();

  return VisitFloat(x.dtype(), [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    using C = ComputeT<T>;
    const T* px = x.data<T>();
    const T* pw = window != nullptr ? window->data<T>() : nullptr;
    T* po = out->mutable_data<T>();
    ctx.ParallelFor(0, batch * frames, std::max<int64_t>(1, 4096 / frame_length),
                    [&](int64_t lo, int64_t hi) {
                      Fft fft(frame_length);
                      std::vector<Complex> line(frame_length);
                      for (int64_t l = lo; l < hi; ++l) {
                        const int64_t b = l / frames, f = l % frames;
                        const T* src = px + (b * length + f * *step) * comp;
                        for (int64_t k = 0; k < frame_length; ++k) {
                          const double w = pw ? static_cast<double>(static_cast<C>(pw[k])) : 1.0;
                          const double re = static_cast<C>(src[k * comp]);
                          const double im = comp == 2 ? static_cast<double>(static_cast<C>(src[k * comp + 1])) : 0.0;
                          line[k] = Complex(re * w, im * w);
                        }
                        fft.Forward(line.data());
                        T* dst = po + l * bins * 2;
                        for (int64_t k = 0; k < bins; ++k) {
                          dst[2 * k] = static_cast<T>(static_cast<C>(line[k].real()));
                          dst[2 * k + 1] = static_cast<T>(static_cast<C>(line[k].imag()));
                        }
                      }
                    });
    return absl::OkStatus();
  });
}

// ---- Windows and MelWeightMatrix ----
bool IsWindowOutputType(DType d) { return IsFloatingPoint(d) || IsInteger(d); }

absl::StatusOr<DType> OutputDatatype(KernelContext& ctx) {
  const int64_t v = ctx.node().GetInt("output_datatype", static_cast<int64_t>(DType::kFloat32));
  if (!IsKnownDType(static_cast<int32_t>(v)) || !IsWindowOutputType(static_cast<DType>(v))) {
    return ctx.Error("output_datatype ", v, " is not a numeric type");
  }
  return static_cast<DType>(v);
}

// Writes values (computed in double) to a new output of `dtype`.
absl::Status WriteDoubles(KernelContext& ctx, DType dtype, Shape shape, const std::vector<double>& v) {
  Tensor* out = ctx.Output(0, dtype, std::move(shape));
  return VisitNumeric(dtype, [&](auto tag) -> absl::Status {
    using T = typename decltype(tag)::type;
    T* p = out->mutable_data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<T>(static_cast<ComputeT<T>>(v[i]));
    return absl::OkStatus();
  });
}

enum class WindowKind { kHann, kHamming, kBlackman };

template <WindowKind kKind>
absl::Status ComputeWindow(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 1); !st.ok()) return st;
  auto dtype = OutputDatatype(ctx);
  if (!dtype.ok()) return dtype.status();
  auto size = ScalarIntInput(ctx, 0, "size");
  if (!size.ok()) return size.status();
  if (*size < 0) return ctx.Error("size must be >= 0, got ", *size);
  const bool periodic = ctx.node().GetInt("periodic", 1) != 0;
  const int64_t denom = periodic ? *size : *size - 1;
  std::vector<double> w(static_cast<size_t>(*size));
  for (int64_t k = 0; k < *size; ++k) {
    if (denom == 0) {  // a symmetric window of one point
      w[k] = 1.0;
      continue;
    }
    const double phase = 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(denom);
    if constexpr (kKind == WindowKind::kHann) {
      w[k] = 0.5 - 0.5 * std::cos(phase);
    } else if constexpr (kKind == WindowKind::kHamming) {
      constexpr double kAlpha = 25.0 / 46.0;
      w[k] = kAlpha - (1.0 - kAlpha) * std::cos(phase);
    } else {
      w[k] = 0.42 - 0.5 * std::cos(phase) + 0.08 * std::cos(2.0 * phase);
    }
  }
  return WriteDoubles(ctx, *dtype, Shape{*size}, w);
}

absl::Status InferWindow(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  const DType dtype = static_cast<DType>(ctx.node.GetInt("output_datatype", static_cast<int64_t>(DType::kFloat32)));
  std::vector<Dim> dims(1);
  if (ctx.constant_inputs.size() > 0 && ctx.constant_inputs[0] != nullptr) {
    auto v = ReadScalarInt(*ctx.constant_inputs[0]);
    if (v.ok() && *v >= 0) dims[0] = Dim{*v, ""};
  }
  outputs[0] = TypeInfo::Tensor(dtype, std::move(dims));
  return absl::OkStatus();
}

// Triangular mel filters as in the ONNX reference: num_mel_bins + 2 points
// evenly spaced in mel (step = range / (num_mel_bins + 2)), mapped to DFT bins
// by floor((dft_length + 1) * hz / sample_rate). Output
// [dft_length / 2 + 1, num_mel_bins].
absl::Status ComputeMelWeightMatrix(KernelContext& ctx) {
  if (absl::Status st = RequireTensorInputs(ctx, 5); !st.ok()) return st;
  auto dtype = OutputDatatype(ctx);
  if (!dtype.ok()) return dtype.status();
  auto num_mel = ScalarIntInput(ctx, 0, "num_mel_bins");
  if (!num_mel.ok()) return num_mel.status();
  auto dft_length = ScalarIntInput(ctx, 1, "dft_length");
  if (!dft_length.ok()) return dft_length.status();
  auto sample_rate = ScalarIntInput(ctx, 2, "sample_rate");
  if (!sample_rate.ok()) return sample_rate.status();
  auto lower = ReadScalarDouble(ctx.Input(3));
  if (!lower.ok()) return ctx.Error("lower_edge_hertz: ", lower.status().message());
  auto upper = ReadScalarDouble(ctx.Input(4));
  if (!upper.ok()) return ctx.Error("upper_edge_hertz: ", upper.status().message());
  if (*num_mel <= 0) return ctx.Error("num_mel_bins must be positive, got ", *num_mel);
  if (*dft_length <= 0) return ctx.Error("dft_length must be positive, got ", *dft_length);
  if (*sample_rate <= 0) return ctx.Error("sample_rate must be positive, got ", *sample_rate);
  if (!(*lower >= 0 && *upper >= *lower && std::isfinite(*upper))) {
    return ctx.Error("edges must satisfy 0 <= lower_edge_hertz <= upper_edge_hertz, got ", *lower, " and ",
                     *upper);
  }
  const int64_t spec_bins = *dft_length / 2 + 1;
  const int64_t mels = *num_mel;
  auto to_mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
  const double low_mel = to_mel(*lower), high_mel = to_mel(*upper);
  const double step = (high_mel - low_mel) / static_cast<double>(mels + 2);
  std::vector<int64_t> points(static_cast<size_t>(mels + 2));
  for (int64_t i = 0; i < mels + 2; ++i) {
    const double mel = static_cast<double>(i) * step + low_mel;
    const double hz = 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
    const double bin = std::floor(static_cast<double>(*dft_length + 1) * hz / static_cast<double>(*sample_rate));
    if (!(bin >= 0 && bin < static_cast<double>(spec_bins))) {
      return ctx.Error("upper_edge_hertz ", *upper, " maps past the last DFT bin (", spec_bins,
                       " bins); it must not exceed sample_rate / 2");
    }
    points[i] = static_cast<int64_t>(bin);
  }
  std::vector<double> w(static_cast<size_t>(spec_bins * mels), 0.0);
  for (int64_t i = 0; i < mels; ++i) {
    const int64_t left = points[i], center = points[i + 1], right = points[i + 2];
    if (center == left) {
      w[center * mels + i] = 1.0;
    } else {
      for (int64_t j = left; j <= center; ++j) {
        w[j * mels + i] = static_cast<double>(j - left) / static_cast<double>(center - left);
      }
    }
    for (int64_t j = center; j < right; ++j) {
      w[j * mels + i] = static_cast<double>(right - j) / static_cast<double>(right - center);
    }
  }
  return WriteDoubles(ctx, *dtype, Shape{spec_bins, mels}, w);
}

absl::Status InferMel(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  const DType dtype = static_cast<DType>(ctx.node.GetInt("output_datatype", static_cast<int64_t>(DType::kFloat32)));
  outputs[0] = TypeInfo::Tensor(dtype, std::vector<Dim>(2));
  return absl::OkStatus();
}

// Output: input 0's dtype, rank kept (DFT) or 4 (STFT); sizes left unknown.
absl::Status InferSpectrum(const InferContext& ctx, std::vector<TypeInfo>& outputs) {
  if (outputs.empty()) return absl::OkStatus();
  if (ctx.input_types.empty()) return absl::OkStatus();
  const TypeInfo& in = ctx.input_types[0];
  if (in.kind != TypeInfo::Kind::kTensor) return absl::OkStatus();
  size_t rank = ctx.node.op_type == "STFT" ? 4 : in.shape.size();
  if (ctx.node.op_type == "STFT" || in.has_shape) {
    outputs[0] = TypeInfo::Tensor(in.dtype, std::vector<Dim>(rank));
    outputs[0].shape.back() = Dim{2, ""};
  } else {
    outputs[0] = TypeInfo::Tensor(in.dtype);
  }
  return absl::OkStatus();
}

constexpr DTypeSet kSizeTypes = Bit(DType::kInt32) | Bit(DType::kInt64);

const OpTableRegistration kSignalOps({
    {.name = "DFT", .since = 17, .types = kFloatTypes, .infer = InferSpectrum, .compute = ComputeDFT},
    {.name = "STFT", .since = 17, .types = kFloatTypes, .infer = InferSpectrum, .compute = ComputeSTFT},
    {.name = "HannWindow", .since = 17, .types = kSizeTypes, .infer = InferWindow,
     .compute = ComputeWindow<WindowKind::kHann>},
    {.name = "HammingWindow", .since = 17, .types = kSizeTypes, .infer = InferWindow,
     .compute = ComputeWindow<WindowKind::kHamming>},
    {.name = "BlackmanWindow", .since = 17, .types = kSizeTypes, .infer = InferWindow,
     .compute = ComputeWindow<WindowKind::kBlackman>},
    {.name = "MelWeightMatrix", .since = 17, .types = kSizeTypes, .infer = InferMel,
     .compute = ComputeMelWeightMatrix},
});

}  // namespace
}  // namespace hepml::ops
