#include <cmath>
#include <complex>
#include <numbers>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

// A rank-0 tensor. (Tensor::Scalar trips a GCC 12 -Wmaybe-uninitialized false
// positive inside absl::InlinedVector when inlined here.)
template <typename T>
Tensor Scalar(T v) {
  Tensor t = Tensor::Empty(DTypeOf<T>::value, Shape{});
  t.mutable_data<T>()[0] = v;
  return t;
}

using ::testing::DoubleNear;
using ::testing::FloatNear;
using ::testing::Pointwise;

// Textbook O(n^2) DFT of a real sequence, for comparison.
std::vector<double> NaiveDft(const std::vector<double>& x, bool inverse = false) {
  const size_t n = x.size();
  std::vector<double> out;
  for (size_t k = 0; k < n; ++k) {
    std::complex<double> acc(0, 0);
    for (size_t j = 0; j < n; ++j) {
      const double angle = (inverse ? 2 : -2) * std::numbers::pi * static_cast<double>((j * k) % n) / n;
      acc += x[j] * std::complex<double>(std::cos(angle), std::sin(angle));
    }
    if (inverse) acc /= static_cast<double>(n);
    out.push_back(acc.real());
    out.push_back(acc.imag());
  }
  return out;
}

std::vector<double> TestSignal(size_t n) {
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = std::sin(0.37 * i) + 0.25 * std::cos(1.3 * i * i) + 0.1 * i;
  return x;
}

// numpy.fft.fft([1, 2, 3, 4]) = [10, -2+2j, -2, -2-2j]; opset 20 with the
// default axis (-2, the last signal axis).
TEST(SignalTest, Dft20DefaultAxis) {
  auto out = RunOp("DFT", 20, {T_<float>({1, 4, 1}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 4, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), Pointwise(FloatNear(1e-5), std::vector<float>{10, 0, -2, 2, -2, 0, -2, -2}));
}

// Axis as an input at opset 20: transform along axis 0 of a [2, 2, 1] input.
TEST(SignalTest, Dft20AxisInput) {
  auto out = RunOp("DFT", 20, {T_<double>({2, 2, 1}, {1, 2, 3, 5}), Tensor(), Scalar<int64_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  // Columns [1, 3] -> [4, -2]; [2, 5] -> [7, -3].
  EXPECT_THAT(Values<double>(out->at(0)), Pointwise(DoubleNear(1e-12), std::vector<double>{4, 0, 7, 0, -2, 0, -3, 0}));
}

// dft_length pads with zeros: numpy.fft.fft([1, 2, 0, 0]) = [3, 1-2j, -1, 1+2j];
// and truncates: fft([1, 2]) of [1, 2, 3].
TEST(SignalTest, DftLengthPadsAndTruncates) {
  auto pad = RunOp("DFT", 17, {T_<float>({1, 2, 1}, {1, 2}), Scalar<int64_t>(4)});
  ASSERT_TRUE(pad.ok()) << pad.status();
  EXPECT_THAT(Values<float>(pad->at(0)), Pointwise(FloatNear(1e-5), std::vector<float>{3, 0, 1, -2, -1, 0, 1, 2}));
  auto cut = RunOp("DFT", 17, {T_<float>({1, 3, 1}, {1, 2, 3}), Scalar<int32_t>(2)});
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_THAT(Values<float>(cut->at(0)), Pointwise(FloatNear(1e-5), std::vector<float>{3, 0, -1, 0}));
}

TEST(SignalTest, OnesidedKeepsHalfTheBins) {
  auto out = RunOp("DFT", 17, {T_<float>({1, 4, 1}, {1, 2, 3, 4})}, {AttrInt("onesided", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 3, 2}));
  EXPECT_THAT(Values<float>(out->at(0)), Pointwise(FloatNear(1e-5), std::vector<float>{10, 0, -2, 2, -2, 0}));
}

// Lengths that take each algorithm: direct (12), radix-2 (256), Bluestein
// (97, 1000), checked against the textbook sum within 1e-4 relative to the
// spectrum's largest magnitude.
TEST(SignalTest, AllAlgorithmsAgreeWithTheDefinition) {
  for (size_t n : {1, 2, 12, 97, 256, 1000}) {
    const std::vector<double> x = TestSignal(n);
    auto out = RunOp("DFT", 17, {T_<double>({1, static_cast<int64_t>(n), 1}, x)});
    ASSERT_TRUE(out.ok()) << out.status();
    const std::vector<double> want = NaiveDft(x);
    double scale = 1;
    for (double v : want) scale = std::max(scale, std::abs(v));
    EXPECT_THAT(Values<double>(out->at(0)), Pointwise(DoubleNear(1e-9 * scale), want)) << "n = " << n;
  }
}

TEST(SignalTest, InverseUndoesForward) {
  const std::vector<double> x = TestSignal(97);
  auto fwd = RunOp("DFT", 17, {T_<double>({1, 97, 1}, x)});
  ASSERT_TRUE(fwd.ok()) << fwd.status();
  auto inv = RunOp("DFT", 17, {fwd->at(0)}, {AttrInt("inverse", 1)});
  ASSERT_TRUE(inv.ok()) << inv.status();
  const std::vector<double> got = Values<double>(inv->at(0));
  for (size_t i = 0; i < 97; ++i) {
    EXPECT_NEAR(got[2 * i], x[i], 1e-9);
    EXPECT_NEAR(got[2 * i + 1], 0, 1e-9);
  }
}

TEST(SignalTest, DftFloat16AndEmptyBatch) {
  Tensor x = Tensor::Empty(DType::kFloat16, {1, 2, 1});
  x.mutable_data<Float16>()[0] = Float16(1.0f);
  x.mutable_data<Float16>()[1] = Float16(3.0f);
  auto out = RunOp("DFT", 17, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[0]), 4.0f);
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[2]), -2.0f);
  auto empty = RunOp("DFT", 17, {Tensor::Zeros(DType::kFloat32, {0, 4, 1})});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0, 4, 2}));
}

TEST(SignalTest, DftBadInputs) {
  EXPECT_FALSE(RunOp("DFT", 17, {T_<float>({1, 3, 3}, std::vector<float>(9, 0))}).ok());  // last dim 3
  EXPECT_FALSE(RunOp("DFT", 17, {T_<float>({1, 4, 1}, {1, 2, 3, 4})}, {AttrInt("axis", 2)}).ok());
  EXPECT_FALSE(RunOp("DFT", 20, {T_<float>({1, 4, 1}, {1, 2, 3, 4}), Tensor(), Scalar<int64_t>(-1)}).ok());
  EXPECT_FALSE(RunOp("DFT", 17, {T_<float>({1, 4, 1}, {1, 2, 3, 4}), Scalar<int64_t>(0)}).ok());
  EXPECT_FALSE(RunOp("DFT", 17, {T_<float>({4}, {1, 2, 3, 4})}).ok());
  EXPECT_FALSE(RunOp("DFT", 17, {T_<int32_t>({1, 2, 1}, {1, 2})}).ok());
}

// Frames [0, 1, 2, 3] and [4, 5, 6, 7]: fft -> [6, -2+2j, -2] and [22, -2+2j, -2].
TEST(SignalTest, StftFramesWithoutWindow) {
  auto out = RunOp("STFT", 17,
                   {T_<float>({1, 8, 1}, {0, 1, 2, 3, 4, 5, 6, 7}), Scalar<int64_t>(4), Tensor(),
                    Scalar<int64_t>(4)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({1, 2, 3, 2}));
  EXPECT_THAT(Values<float>(out->at(0)),
              Pointwise(FloatNear(1e-5), std::vector<float>{6, 0, -2, 2, -2, 0, 22, 0, -2, 2, -2, 0}));
}

// Window [1, 0, 1, 0] keeps samples 0 and 2; two-sided output.
TEST(SignalTest, StftWindowTwoSided) {
  auto out = RunOp("STFT", 17,
                   {T_<double>({1, 4, 1}, {1, 5, 2, 7}), Scalar<int32_t>(1), T_<double>({4}, {1, 0, 1, 0})},
                   {AttrInt("onesided", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  // fft([1, 0, 2, 0]) = [3, -1, 3, -1].
  EXPECT_EQ(out->at(0).shape(), Shape({1, 1, 4, 2}));
  EXPECT_THAT(Values<double>(out->at(0)), Pointwise(DoubleNear(1e-12), std::vector<double>{3, 0, -1, 0, 3, 0, -1, 0}));
}

TEST(SignalTest, StftBadInputs) {
  const Tensor sig = T_<float>({1, 4, 1}, {1, 2, 3, 4});
  EXPECT_FALSE(RunOp("STFT", 17, {sig, Scalar<int64_t>(1)}).ok());  // no window, no length
  EXPECT_FALSE(RunOp("STFT", 17, {sig, Scalar<int64_t>(0), Tensor(), Scalar<int64_t>(2)}).ok());
  EXPECT_FALSE(RunOp("STFT", 17, {sig, Scalar<int64_t>(1), Tensor(), Scalar<int64_t>(5)}).ok());
  EXPECT_FALSE(RunOp("STFT", 17,
                     {sig, Scalar<int64_t>(1), T_<float>({2}, {1, 1}), Scalar<int64_t>(3)})
                   .ok());
  EXPECT_FALSE(RunOp("STFT", 17, {T_<float>({4}, {1, 2, 3, 4}), Scalar<int64_t>(1)}).ok());
}

// numpy: periodic windows of size 4 are the symmetric ones of size 5 minus the last point.
TEST(SignalTest, WindowsPeriodicAndSymmetric) {
  auto hann = RunOp("HannWindow", 17, {Scalar<int64_t>(4)});
  ASSERT_TRUE(hann.ok()) << hann.status();
  EXPECT_THAT(Values<float>(hann->at(0)), Pointwise(FloatNear(1e-7), std::vector<float>{0, 0.5f, 1, 0.5f}));
  // np.hamming(5) uses 0.54/0.46; ONNX uses 25/46 and 21/46.
  auto hamming = RunOp("HammingWindow", 17, {Scalar<int32_t>(5)}, {AttrInt("periodic", 0)});
  ASSERT_TRUE(hamming.ok()) << hamming.status();
  const float a = 25.0f / 46, b = 21.0f / 46;
  EXPECT_THAT(Values<float>(hamming->at(0)),
              Pointwise(FloatNear(1e-6), std::vector<float>{a - b, a, a + b, a, a - b}));
  // np.blackman(5) = [0, 0.34, 1, 0.34, 0].
  auto blackman = RunOp("BlackmanWindow", 17, {Scalar<int64_t>(5)},
                        {AttrInt("periodic", 0), AttrInt("output_datatype", 11)});
  ASSERT_TRUE(blackman.ok()) << blackman.status();
  EXPECT_THAT(Values<double>(blackman->at(0)), Pointwise(DoubleNear(1e-12), std::vector<double>{0, 0.34, 1, 0.34, 0}));
}

TEST(SignalTest, WindowEdgeCasesAndTypes) {
  auto ints = RunOp("HannWindow", 17, {Scalar<int64_t>(4)}, {AttrInt("output_datatype", 6)});
  ASSERT_TRUE(ints.ok()) << ints.status();
  EXPECT_EQ(Values<int32_t>(ints->at(0)), std::vector<int32_t>({0, 0, 1, 0}));
  auto empty = RunOp("HannWindow", 17, {Scalar<int64_t>(0)});
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->at(0).shape(), Shape({0}));
  auto one = RunOp("BlackmanWindow", 17, {Scalar<int64_t>(1)}, {AttrInt("periodic", 0)});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(Values<float>(one->at(0)), std::vector<float>({1}));
  EXPECT_FALSE(RunOp("HannWindow", 17, {Scalar<int64_t>(-1)}).ok());
  EXPECT_FALSE(RunOp("HannWindow", 17, {Scalar<int64_t>(4)}, {AttrInt("output_datatype", 8)}).ok());
  EXPECT_FALSE(RunOp("HannWindow", 17, {T_<int64_t>({2}, {4, 4})}).ok());
  EXPECT_FALSE(RunOp("HannWindow", 17, {Scalar<float>(4)}).ok());
}

// Values from the ONNX reference algorithm in numpy (mel points at bins
// [0, 0, 2, 5, 9]).
TEST(SignalTest, MelWeightMatrixMatchesReference) {
  auto out = RunOp("MelWeightMatrix", 17,
                   {Scalar<int32_t>(3), Scalar<int64_t>(32), Scalar<int32_t>(16000),
                    Scalar<float>(0), Scalar<float>(8000)},
                   {AttrInt("output_datatype", 11)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({17, 3}));
  std::vector<double> want(51, 0.0);
  const double head[] = {1, 0, 0, 0.5, 0.5, 0, 0, 1, 0, 0, 2.0 / 3, 1.0 / 3, 0, 1.0 / 3, 2.0 / 3,
                         0, 0, 1, 0, 0, 0.75, 0, 0, 0.5, 0, 0, 0.25};
  std::copy(std::begin(head), std::end(head), want.begin());
  EXPECT_THAT(Values<double>(out->at(0)), Pointwise(DoubleNear(1e-12), want));
}

TEST(SignalTest, MelWeightMatrixBadInputs) {
  auto run = [](int32_t mels, int64_t dft, int32_t rate, float lo, float hi) {
    return RunOp("MelWeightMatrix", 17,
                 {Scalar<int32_t>(mels), Scalar<int64_t>(dft), Scalar<int32_t>(rate),
                  Scalar<float>(lo), Scalar<float>(hi)});
  };
  EXPECT_FALSE(run(0, 32, 16000, 0, 8000).ok());
  EXPECT_FALSE(run(3, 0, 16000, 0, 8000).ok());
  EXPECT_FALSE(run(3, 32, 0, 0, 8000).ok());
  EXPECT_FALSE(run(3, 32, 16000, 500, 100).ok());
  EXPECT_FALSE(run(3, 32, 16000, 0, 40000).ok());  // past the Nyquist bin
}

TEST(SignalTest, MissingRequiredInputsAreErrors) {
  EXPECT_FALSE(RunOp("DFT", 17, {Tensor()}).ok());
  EXPECT_FALSE(RunOp("STFT", 17, {T_<float>({1, 4, 1}, {1, 2, 3, 4})}).ok());
  EXPECT_FALSE(RunOp("HannWindow", 17, {}).ok());
  EXPECT_FALSE(RunOp("MelWeightMatrix", 17, {Scalar<int32_t>(3), Scalar<int64_t>(32)}).ok());
}

}  // namespace
}  // namespace hepml::ops::testing
