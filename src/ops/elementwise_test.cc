// Unit tests of the elementwise family. Expected values are computed by hand
// or, where noted, with numpy (the ONNX reference implementation's library).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "oneapi/tbb/task_arena.h"
#include "ops/op_test_util.h"
#include "runtime/executor.h"

namespace hepml::ops::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A rank-0 tensor. (Built by reshaping: constructing an empty Shape in
// place trips a GCC 12 -Wmaybe-uninitialized false positive in absl.)
template <typename T>
Tensor Scalar_(T v) {
  return T_<T>({1}, {v}).Reshaped(Shape(0));
}

// Runs one node like RunOp but inside a TBB arena of `threads` threads, so
// that kernels split their work (RunOp runs serially).
absl::StatusOr<std::vector<Tensor>> RunOpParallel(const std::string& op_type, int opset,
                                                  const std::vector<Tensor>& inputs, int threads) {
  Graph g;
  Node node;
  node.op_type = op_type;
  node.opset = opset;
  std::vector<Value> fed;
  for (size_t i = 0; i < inputs.size(); ++i) {
    ValueInfo vi;
    vi.name = "in" + std::to_string(i);
    node.inputs.push_back(vi.name);
    g.inputs.push_back(vi);
    fed.push_back(Value::FromTensor(inputs[i]));
  }
  ValueInfo out_info;
  out_info.name = "out0";
  node.outputs.push_back(out_info.name);
  g.outputs.push_back(out_info);
  g.nodes.push_back(node);
  auto plan = BuildPlan(g);
  if (!plan.ok()) return plan.status();
  oneapi::tbb::task_arena arena(threads);
  ExecutionContext exec{&arena, threads};
  absl::StatusOr<std::vector<Value>> out;
  arena.execute([&] { out = ExecutePlan(**plan, fed, exec); });
  if (!out.ok()) return out.status();
  std::vector<Tensor> tensors;
  for (Value& v : *out) tensors.push_back(v.tensor);
  return tensors;
}

template <typename T>
void ExpectNear(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(t.size(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const double v = static_cast<double>(static_cast<float>(t.data<T>()[i]));
    if (std::isnan(expected[i])) {
      EXPECT_TRUE(std::isnan(v)) << "at " << i;
    } else if (std::isinf(expected[i])) {
      EXPECT_EQ(v, expected[i]) << "at " << i;
    } else {
      EXPECT_NEAR(v, expected[i], tol) << "at " << i;
    }
  }
}

std::vector<bool> Bools(const Tensor& t) { return std::vector<bool>(t.data<bool>(), t.data<bool>() + t.size()); }

// ---- binary arithmetic and broadcasting ----

TEST(ElementwiseTest, AddBroadcastsLikeNumpy) {
  auto out = RunOp("Add", 14, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({3}, {10, 20, 30})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({11, 22, 33, 14, 25, 36}));
}

TEST(ElementwiseTest, BroadcastAlongLastDimensionAndBothSides) {
  // [2,3] - [2,1]: the second operand repeats along the last dimension.
  auto out = RunOp("Sub", 14, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({2, 1}, {1, 10})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 1, 2, -6, -5, -4}));
  // [2,1,3] * [1,2,1] -> [2,2,3] (numpy: a * b).
  out = RunOp("Mul", 14, {T_<int32_t>({2, 1, 3}, {1, 2, 3, 4, 5, 6}), T_<int32_t>({1, 2, 1}, {1, 10})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 2, 3}));
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({1, 2, 3, 10, 20, 30, 4, 5, 6, 40, 50, 60}));
  // Scalar on the left.
  out = RunOp("Div", 14, {Scalar_<double>(12), T_<double>({3}, {1, 2, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({12, 6, 3}));
}

TEST(ElementwiseTest, LargeBroadcastMatchesElementwiseReference) {
  // Big enough to be split across threads: [300,200] + [200] and + [300,1].
  const int64_t rows = 300, cols = 200;
  std::vector<float> a(rows * cols), b(cols), c(rows);
  for (int64_t i = 0; i < rows * cols; ++i) a[i] = static_cast<float>(i % 97);
  for (int64_t j = 0; j < cols; ++j) b[j] = static_cast<float>(j);
  for (int64_t r = 0; r < rows; ++r) c[r] = static_cast<float>(1000 * r);
  auto out = RunOp("Add", 14, {T_<float>({rows, cols}, a), T_<float>({cols}, b)});
  ASSERT_TRUE(out.ok()) << out.status();
  auto out2 = RunOp("Add", 14, {T_<float>({rows, cols}, a), T_<float>({rows, 1}, c)});
  ASSERT_TRUE(out2.ok()) << out2.status();
  const float* p = out->at(0).data<float>();
  const float* q = out2->at(0).data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; ++j) {
      ASSERT_EQ(p[r * cols + j], a[r * cols + j] + b[j]);
      ASSERT_EQ(q[r * cols + j], a[r * cols + j] + c[r]);
    }
  }
}

TEST(ElementwiseTest, ParallelSplitsMatchSerialResults) {
  // Work split across threads starts and ends in the middle of broadcast
  // rows; every split must give the serial result.
  auto iota = [](Shape shape, float scale) {
    std::vector<float> v(NumElements(shape));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 1009) * scale;
    return T_<float>(shape, v);
  };
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 70001}, {70001}},       // long rows, split mid-row
      {{100000, 3}, {100000, 1}},  // short rows, right operand repeats
      {{50, 1, 2000}, {1, 40, 1}},  // both sides broadcast
      {{1}, {200003}},             // scalar on the left
  };
  for (const auto& [sa, sb] : cases) {
    SCOPED_TRACE(ShapeToString(sa) + " + " + ShapeToString(sb));
    auto a = iota(sa, 1.0f), b = iota(sb, 0.5f);
    auto serial = RunOp("Sub", 14, {a, b});
    auto parallel = RunOpParallel("Sub", 14, {a, b}, 4);
    ASSERT_TRUE(serial.ok()) << serial.status();
    ASSERT_TRUE(parallel.ok()) << parallel.status();
    EXPECT_EQ(parallel->at(0).shape(), serial->at(0).shape());
    EXPECT_EQ(Values<float>(parallel->at(0)), Values<float>(serial->at(0)));
  }
  // Where with three broadcast inputs, and a variadic Max.
  std::vector<bool> cond(997);
  for (size_t i = 0; i < cond.size(); ++i) cond[i] = (i % 3) == 0;
  auto c = T_<bool>({997, 1}, cond);
  auto x = iota({1, 301}, 1.0f), y = iota({997, 301}, -1.0f);
  auto serial = RunOp("Where", 16, {c, x, y});
  auto parallel = RunOpParallel("Where", 16, {c, x, y}, 4);
  ASSERT_TRUE(serial.ok() && parallel.ok());
  EXPECT_EQ(Values<float>(parallel->at(0)), Values<float>(serial->at(0)));
  serial = RunOp("Max", 13, {y, x, iota({997, 1}, 0.3f)});
  parallel = RunOpParallel("Max", 13, {y, x, iota({997, 1}, 0.3f)}, 4);
  ASSERT_TRUE(serial.ok() && parallel.ok());
  EXPECT_EQ(Values<float>(parallel->at(0)), Values<float>(serial->at(0)));
}

TEST(ElementwiseTest, LegacyBroadcastAttributeAlignsAtAxis) {
  // Opset 6: B [2] lines up with A's axis 0, not the trailing axis.
  auto out = RunOp("Add", 6, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({2}, {10, 20})},
                   {AttrInt("broadcast", 1), AttrInt("axis", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({11, 12, 13, 24, 25, 26}));
  // Default axis: trailing dimensions.
  out = RunOp("Mul", 6, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({3}, {1, 0, 2})}, {AttrInt("broadcast", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 0, 6, 4, 0, 12}));
  // B does not fit at that axis.
  out = RunOp("Add", 6, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({3}, {1, 2, 3})},
              {AttrInt("broadcast", 1), AttrInt("axis", 0)});
  EXPECT_FALSE(out.ok());
}

TEST(ElementwiseTest, IncompatibleShapesAreAnError) {
  auto out = RunOp("Mul", 14, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({2}, {1, 2})});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("cannot be broadcast"), std::string::npos) << out.status();
}

TEST(ElementwiseTest, IntegerDivisionByZeroDoesNotTrap) {
  auto out = RunOp("Div", 14, {T_<int32_t>({2}, {7, 8}), T_<int32_t>({2}, {0, 2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0, 4}));
}

TEST(ElementwiseTest, IntegerArithmeticWrapsLikeNumpy) {
  const int32_t kMin = std::numeric_limits<int32_t>::min(), kMax = std::numeric_limits<int32_t>::max();
  auto out = RunOp("Add", 14, {T_<int32_t>({1}, {kMax}), T_<int32_t>({1}, {1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({kMin}));
  out = RunOp("Div", 14, {T_<int32_t>({1}, {kMin}), T_<int32_t>({1}, {-1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({kMin}));
  // uint16: 300 * 300 = 90000 = 24464 mod 65536.
  out = RunOp("Mul", 14, {T_<uint16_t>({1}, {300}), T_<uint16_t>({1}, {300})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint16_t>(out->at(0)), std::vector<uint16_t>({24464}));
}

TEST(ElementwiseTest, MixedInputTypesAreAnError) {
  auto out = RunOp("Sub", 14, {T_<float>({1}, {1}), T_<double>({1}, {1})});
  ASSERT_FALSE(out.ok());
}

TEST(ElementwiseTest, Float16AndBFloat16Arithmetic) {
  auto out = RunOp("Add", 14, {T_<Float16>({2}, {Float16(1.5f), Float16(-2.0f)}), T_<Float16>({1}, {Float16(0.25f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<Float16>(out->at(0), {1.75, -1.75});
  out = RunOp("Mul", 14, {T_<BFloat16>({2}, {BFloat16(3.0f), BFloat16(-0.5f)}), T_<BFloat16>({2}, {BFloat16(2.0f), BFloat16(4.0f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<BFloat16>(out->at(0), {6, -2});
}

TEST(ElementwiseTest, EmptyAndScalarTensors) {
  auto out = RunOp("Add", 14, {T_<float>({0, 3}, {}), T_<float>({3}, {1, 2, 3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 3}));
  out = RunOp("Sub", 14, {Scalar_<int64_t>(5), Scalar_<int64_t>(7)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({-2}));
}

// ---- Mod and Pow ----

TEST(ElementwiseTest, ModIntegerIsPythonStyleAndFmodIsC) {
  // numpy: np.mod([-4,7,5,-7],[3,-3,-2,-3]) = [2,-2,-1,-1]; np.fmod = [-1,1,1,-1].
  auto a = T_<int32_t>({4}, {-4, 7, 5, -7});
  auto b = T_<int32_t>({4}, {3, -3, -2, -3});
  auto out = RunOp("Mod", 13, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({2, -2, -1, -1}));
  out = RunOp("Mod", 13, {a, b}, {AttrInt("fmod", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-1, 1, 1, -1}));
  // Modulo by zero gives 0 (numpy) instead of trapping.
  out = RunOp("Mod", 13, {T_<int64_t>({2}, {5, std::numeric_limits<int64_t>::min()}), T_<int64_t>({2}, {0, -1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({0, 0}));
}

TEST(ElementwiseTest, ModFloat) {
  // numpy: np.fmod(-4.5, 2) = -0.5; np.mod(-4.5, 2) = 1.5; np.mod(4.5, -2) = -1.5.
  auto out = RunOp("Mod", 13, {T_<double>({2}, {-4.5, 4.5}), T_<double>({2}, {2, -2})}, {AttrInt("fmod", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({-0.5, 0.5}));
  out = RunOp("Mod", 13, {T_<double>({2}, {-4.5, 4.5}), T_<double>({2}, {2, -2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({1.5, -1.5}));
  out = RunOp("Mod", 13, {T_<double>({1}, {1}), T_<double>({1}, {1})}, {AttrInt("fmod", 2)});
  EXPECT_FALSE(out.ok());
}

TEST(ElementwiseTest, PowMixedTypes) {
  // Integer base and exponent: exact, negative exponents truncate (2**-1 -> 0).
  auto out = RunOp("Pow", 15, {T_<int64_t>({4}, {2, 3, -1, 2}), T_<int32_t>({4}, {10, 2, 3, -1})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt64);
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1024, 9, -1, 0}));
  // Integer base, float exponent: computed in double, truncated (2**0.5 -> 1).
  out = RunOp("Pow", 15, {T_<int32_t>({2}, {2, 3}), T_<float>({2}, {0.5f, 2.0f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({1, 9}));
  // Float base, uint64 exponent, broadcast.
  out = RunOp("Pow", 15, {T_<float>({2}, {1.5f, -2.0f}), Scalar_<uint64_t>(3)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({3.375f, -8.0f}));
  // Before opset 12 both inputs must have the same type.
  out = RunOp("Pow", 11, {T_<float>({1}, {2}), T_<int64_t>({1}, {2})});
  EXPECT_FALSE(out.ok());
}

// x ** 2 takes a multiply: the same values as std::pow (the correctly
// rounded square) for every float, whatever type the exponent 2 comes in,
// and the broadcast shape when the exponent has more dims than the base.
TEST(ElementwiseTest, PowSquareEqualsStdPow) {
  std::vector<float> x = {0.f, -0.f, 1.5f, -3.25f, 1e-42f, -1e-30f, 3e19f, -3e19f, 1.1f, 0.1f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()};
  for (int i = 0; i < 24; ++i) x.push_back(0.37f * static_cast<float>(i) - 4.1f);  // odd length
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<Tensor> exponents = {Scalar_<float>(2.f), T_<float>({1}, {2.f}), Scalar_<int64_t>(2),
                                         Scalar_<double>(2.0), T_<float>({1, 1}, {2.f})};
  for (const Tensor& e : exponents) {
    SCOPED_TRACE(DTypeName(e.dtype()));
    auto out = RunOp("Pow", 15, {T_<float>({n}, x), e});
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->at(0).shape(), e.rank() == 2 ? Shape({1, n}) : Shape({n}));
    for (int64_t i = 0; i < n; ++i) {
      const float want = std::pow(x[i], 2.0f), got = out->at(0).data<float>()[i];
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << i;
      } else {
        EXPECT_EQ(got, want) << i;
      }
    }
  }
}

// ---- bitwise and logic ----

TEST(ElementwiseTest, BitShift) {
  auto out = RunOp("BitShift", 11, {T_<uint8_t>({3}, {16, 4, 1}), T_<uint8_t>({3}, {1, 2, 8})},
                   {AttrString("direction", "LEFT")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({32, 16, 0}));
  out = RunOp("BitShift", 11, {T_<uint64_t>({2}, {256, 1}), Scalar_<uint64_t>(4)}, {AttrString("direction", "RIGHT")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint64_t>(out->at(0)), std::vector<uint64_t>({16, 0}));
  out = RunOp("BitShift", 11, {T_<uint8_t>({1}, {1}), T_<uint8_t>({1}, {1})}, {AttrString("direction", "UP")});
  EXPECT_FALSE(out.ok());
  out = RunOp("BitShift", 11, {T_<int32_t>({1}, {1}), T_<int32_t>({1}, {1})}, {AttrString("direction", "LEFT")});
  EXPECT_FALSE(out.ok());
}

TEST(ElementwiseTest, BitwiseOpsAtOpset18) {
  auto a = T_<int32_t>({3}, {12, -1, 5});
  auto b = T_<int32_t>({3}, {10, 7, 0});
  auto out = RunOp("BitwiseAnd", 18, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({8, 7, 0}));
  out = RunOp("BitwiseOr", 18, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({14, -1, 5}));
  out = RunOp("BitwiseXor", 21, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({6, -8, 5}));
  out = RunOp("BitwiseNot", 18, {T_<uint8_t>({2}, {0, 0xF0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({0xFF, 0x0F}));
  EXPECT_FALSE(RunOp("BitwiseAnd", 17, {a, b}).ok());  // not an operator before opset 18
  EXPECT_FALSE(RunOp("BitwiseAnd", 18, {T_<float>({1}, {1}), T_<float>({1}, {1})}).ok());
}

TEST(ElementwiseTest, LogicalOps) {
  auto a = T_<bool>({2, 2}, {true, true, false, false});
  auto b = T_<bool>({2}, {true, false});
  auto out = RunOp("And", 7, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, false, false}));
  out = RunOp("Or", 7, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, true, true, false}));
  out = RunOp("Xor", 7, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, true, true, false}));
  out = RunOp("Not", 1, {a});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, false, true, true}));
  EXPECT_FALSE(RunOp("And", 7, {T_<float>({1}, {1}), T_<float>({1}, {1})}).ok());
  EXPECT_FALSE(RunOp("And", 7, {a, T_<float>({1}, {1})}).ok());
}

// ---- comparisons ----

TEST(ElementwiseTest, ComparisonsBroadcastAndHandleNaN) {
  auto a = T_<float>({2, 2}, {1, 2, kNaN, 4});
  auto b = T_<float>({2}, {2, 2});
  auto out = RunOp("Less", 13, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kBool);
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, false, false}));
  out = RunOp("GreaterOrEqual", 16, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, true, false, true}));
  out = RunOp("LessOrEqual", 16, {T_<int64_t>({3}, {1, 2, 3}), Scalar_<int64_t>(2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, true, false}));
  out = RunOp("Greater", 13, {T_<Float16>({2}, {Float16(1.5f), Float16(-1.0f)}), T_<Float16>({1}, {Float16(0.0f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false}));
  out = RunOp("Equal", 13, {T_<bool>({2}, {true, false}), T_<bool>({2}, {true, true})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false}));
  EXPECT_FALSE(RunOp("Less", 13, {T_<bool>({1}, {true}), T_<bool>({1}, {false})}).ok());
}

TEST(ElementwiseTest, EqualOnStringsFromOpset19) {
  auto a = T_<std::string>({3}, {"a", "bc", ""});
  auto b = T_<std::string>({3}, {"a", "b", ""});
  auto out = RunOp("Equal", 19, {a, b});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, true}));
  EXPECT_FALSE(RunOp("Equal", 18, {a, b}).ok());
}

// ---- unary math ----

TEST(ElementwiseTest, AbsNegSignOnIntegers) {
  auto out = RunOp("Abs", 13, {T_<int8_t>({3}, {-128, -5, 7})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({-128, 5, 7}));  // numpy wraps -128
  out = RunOp("Neg", 13, {T_<int32_t>({2}, {3, -4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-3, 4}));
  EXPECT_FALSE(RunOp("Neg", 13, {T_<uint8_t>({1}, {1})}).ok());
  out = RunOp("Sign", 13, {T_<uint8_t>({2}, {0, 9})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({0, 1}));
  out = RunOp("Sign", 13, {T_<float>({4}, {-2.5f, 0.0f, 3.0f, kNaN})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {-1, 0, 1, NAN});
}

TEST(ElementwiseTest, RoundIsHalfToEven) {
  auto out = RunOp("Round", 11, {T_<float>({7}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 2.4f, -2.6f})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0, 2, 2, -0.0f, -2, 2, -3}));
  out = RunOp("Round", 11, {T_<Float16>({2}, {Float16(3.5f), Float16(4.5f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<Float16>(out->at(0), {4, 4});
}

TEST(ElementwiseTest, FloatUnaryMathAcrossTypes) {
  // math.acosh(2) = 1.3169578969248166, atanh(.5) = 0.5493061443340548,
  // asinh(1) = 0.881373587019543, tan(1) = 1.5574077246549023.
  auto out = RunOp("Acosh", 9, {T_<double>({1}, {2})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(out->at(0).data<double>()[0], 1.3169578969248166, 1e-15);
  out = RunOp("Atanh", 9, {T_<double>({1}, {0.5})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(out->at(0).data<double>()[0], 0.5493061443340548, 1e-15);
  out = RunOp("Asinh", 9, {T_<BFloat16>({1}, {BFloat16(1.0f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<BFloat16>(out->at(0), {0.881373587019543}, 4e-3);
  out = RunOp("Tan", 7, {T_<Float16>({1}, {Float16(1.0f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<Float16>(out->at(0), {1.5574077246549023}, 2e-3);
  out = RunOp("Sqrt", 13, {T_<float>({3}, {4, 0, -1})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {2, 0, NAN});
  out = RunOp("Reciprocal", 13, {T_<float>({2}, {4, 0})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.25, INFINITY});
  out = RunOp("Ceil", 13, {T_<Float16>({2}, {Float16(-1.5f), Float16(1.25f)})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<Float16>(out->at(0), {-1, 2});
  out = RunOp("Floor", 6, {T_<double>({2}, {-1.5, 1.25})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<double>(out->at(0), {-2, 1});
  EXPECT_FALSE(RunOp("Exp", 13, {T_<int32_t>({1}, {1})}).ok());
  out = RunOp("Log", 13, {Scalar_<float>(1)});  // scalar
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({0}));
}

TEST(ElementwiseTest, ErfOnIntegers) {
  // erf(0) = 0, erf(2) = 0.995 -> 0, erf(-3) = -0.99998 -> 0 (truncation).
  auto out = RunOp("Erf", 13, {T_<int32_t>({3}, {0, 2, -3})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0, 0, 0}));
  out = RunOp("Erf", 13, {T_<float>({2}, {0.5f, -1.0f})});  // math.erf
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {0.5204998778130465, -0.8427007929497149});
}

TEST(ElementwiseTest, IsNaNAndIsInf) {
  auto x = T_<float>({4}, {1, kNaN, kInf, -kInf});
  auto out = RunOp("IsNaN", 13, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, true, false, false}));
  out = RunOp("IsInf", 10, {x});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, false, true, true}));
  out = RunOp("IsInf", 20, {x}, {AttrInt("detect_negative", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, false, true, false}));
  out = RunOp("IsInf", 20, {T_<double>({2}, {-INFINITY, INFINITY})}, {AttrInt("detect_positive", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false}));
  EXPECT_FALSE(RunOp("IsNaN", 13, {T_<int32_t>({1}, {1})}).ok());
}

// ---- variadic ----

TEST(ElementwiseTest, VariadicBroadcastsAcrossThreeInputs) {
  auto a = T_<float>({2, 1}, {1, 2});
  auto b = T_<float>({3}, {10, 20, 30});
  auto c = Scalar_<float>(100);
  auto out = RunOp("Sum", 13, {a, b, c});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({111, 121, 131, 112, 122, 132}));
  out = RunOp("Mean", 13, {a, b, c});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {37, 121.0 / 3, 131.0 / 3, 112.0 / 3, 122.0 / 3, 44}, 1e-5);
  out = RunOp("Max", 13, {T_<float>({3}, {1, kNaN, 5}), T_<float>({3}, {2, 0, 4})});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {2, NAN, 5});  // numpy.maximum propagates NaN
  out = RunOp("Min", 13, {T_<uint64_t>({2}, {7, 1}), T_<uint64_t>({2}, {3, 9}), T_<uint64_t>({1}, {5})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint64_t>(out->at(0)), std::vector<uint64_t>({3, 1}));
}

TEST(ElementwiseTest, VariadicSingleInputAndErrors) {
  auto out = RunOp("Max", 8, {T_<int32_t>({2}, {4, -4})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({4, -4}));
  EXPECT_FALSE(RunOp("Sum", 13, {T_<float>({2}, {1, 2}), T_<double>({2}, {1, 2})}).ok());
  EXPECT_FALSE(RunOp("Min", 13, {T_<float>({2}, {1, 2}), T_<float>({3}, {1, 2, 3})}).ok());
  EXPECT_FALSE(RunOp("Sum", 13, {T_<int32_t>({2}, {1, 2})}).ok());  // Sum is for floats
}

// ---- Where ----

TEST(ElementwiseTest, WhereBroadcastsAllThree) {
  auto out = RunOp("Where", 16, {T_<bool>({2, 1}, {true, false}), T_<int64_t>({1, 3}, {1, 2, 3}), Scalar_<int64_t>(-1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({1, 2, 3, -1, -1, -1}));
  out = RunOp("Where", 16, {T_<bool>({2}, {false, true}), T_<std::string>({2}, {"x", "y"}), T_<std::string>({1}, {"z"})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"z", "y"}));
  EXPECT_FALSE(RunOp("Where", 16, {T_<float>({1}, {1}), T_<float>({1}, {1}), T_<float>({1}, {2})}).ok());
  EXPECT_FALSE(RunOp("Where", 16, {T_<bool>({1}, {true}), T_<float>({1}, {1}), T_<double>({1}, {2})}).ok());
  EXPECT_FALSE(RunOp("Where", 16, {T_<bool>({2}, {true, false}), T_<float>({3}, {1, 2, 3}), T_<float>({1}, {2})}).ok());
}

// ---- Clip ----

TEST(ElementwiseTest, ClipAttributesBeforeOpset11) {
  auto out = RunOp("Clip", 6, {T_<float>({4}, {-2, -0.25f, 0.25f, 2})}, {AttrFloat("min", -0.5f), AttrFloat("max", 0.5f)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-0.5f, -0.25f, 0.25f, 0.5f}));
  out = RunOp("Clip", 6, {T_<float>({2}, {-1e30f, 1e30f})});  // no bounds: identity
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-1e30f, 1e30f}));
}

TEST(ElementwiseTest, ClipOptionalInputs) {
  // Only max given (min omitted), int8 (opset 12+).
  auto out = RunOp("Clip", 13, {T_<int8_t>({3}, {-100, 5, 100}), Tensor(), Scalar_<int8_t>(10)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({-100, 5, 10}));
  // min > max: everything becomes max (numpy.clip); NaN stays NaN.
  out = RunOp("Clip", 13, {T_<float>({3}, {-1, 5, kNaN}), Scalar_<float>(3), Scalar_<float>(2)});
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectNear<float>(out->at(0), {2, 2, NAN});
  // Bounds must be scalars of the input's type.
  EXPECT_FALSE(RunOp("Clip", 13, {T_<float>({2}, {1, 2}), T_<float>({2}, {0, 0})}).ok());
  EXPECT_FALSE(RunOp("Clip", 13, {T_<float>({2}, {1, 2}), Scalar_<double>(0)}).ok());
}

// ---- Cast ----

TEST(ElementwiseTest, CastFloatToIntegersLikeNumpy) {
  // numpy: np.array([300,-1,1e10,-1.7,2.9]).astype(np.uint8) = [44,255,0,255,2];
  // np.array([nan,-1.7,3e9]).astype(np.int32) = [-2147483648,-1,-2147483648].
  auto out = RunOp("Cast", 13, {T_<double>({5}, {300, -1, 1e10, -1.7, 2.9})}, {AttrInt("to", 2)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<uint8_t>(out->at(0)), std::vector<uint8_t>({44, 255, 0, 255, 2}));
  out = RunOp("Cast", 13, {T_<float>({3}, {kNaN, -1.7f, 3e9f})}, {AttrInt("to", 6)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)),
            std::vector<int32_t>({std::numeric_limits<int32_t>::min(), -1, std::numeric_limits<int32_t>::min()}));
}

TEST(ElementwiseTest, CastBoolAndHalfTypes) {
  auto out = RunOp("Cast", 13, {T_<float>({3}, {0, -0.5f, kNaN})}, {AttrInt("to", 9)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, true, true}));
  out = RunOp("Cast", 13, {T_<bool>({2}, {true, false})}, {AttrInt("to", 11)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({1, 0}));
  // float32 1.1 -> float16 1.0996094 (numpy); int64 70000 -> float16 inf.
  out = RunOp("Cast", 13, {T_<float>({1}, {1.1f})}, {AttrInt("to", 10)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(static_cast<float>(out->at(0).data<Float16>()[0]), 1.0996094f);
  out = RunOp("Cast", 13, {T_<int64_t>({1}, {70000})}, {AttrInt("to", 10)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(std::isinf(static_cast<float>(out->at(0).data<Float16>()[0])));
  // bfloat16 -> int32 through float.
  out = RunOp("Cast", 13, {T_<BFloat16>({2}, {BFloat16(-3.5f), BFloat16(256.0f)})}, {AttrInt("to", 6)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-3, 256}));
  // Same type: a view of the input.
  out = RunOp("Cast", 19, {T_<int16_t>({2}, {1, 2})}, {AttrInt("to", 5)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int16_t>(out->at(0)), std::vector<int16_t>({1, 2}));
}

TEST(ElementwiseTest, CastToStringPrintsLikeNumpy) {
  // str(np.float32(v)) for each value.
  auto out = RunOp("Cast", 13, {T_<float>({9}, {1.5f, 1e-5f, 1e16f, 100.0f, 0.1f, -2.5e-7f, 123456.789f, kNaN, -kInf})},
                   {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)),
            std::vector<std::string>({"1.5", "1e-05", "1e+16", "100.0", "0.1", "-2.5e-07", "123456.79", "nan", "-inf"}));
  out = RunOp("Cast", 13, {T_<double>({2}, {0.1, -0.0})}, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"0.1", "-0.0"}));
  out = RunOp("Cast", 13, {T_<Float16>({2}, {Float16(0.1f), Float16(1000.5f)})}, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"0.1", "1000.5"}));
  out = RunOp("Cast", 13, {T_<int64_t>({2}, {-42, 7})}, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"-42", "7"}));
  out = RunOp("Cast", 13, {T_<bool>({2}, {true, false})}, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"True", "False"}));
}

TEST(ElementwiseTest, CastFromStringParses) {
  auto out = RunOp("Cast", 13, {T_<std::string>({5}, {" 1.5 ", "INF", "-Inf", "1e3", "+2"})}, {AttrInt("to", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1.5f, kInf, -kInf, 1000.0f, 2.0f}));
  out = RunOp("Cast", 13, {T_<std::string>({3}, {"42", "-7", "1e2"})}, {AttrInt("to", 7)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int64_t>(out->at(0)), std::vector<int64_t>({42, -7, 100}));
  out = RunOp("Cast", 13, {T_<std::string>({3}, {"true", "0", "2.5"})}, {AttrInt("to", 9)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, true}));
  out = RunOp("Cast", 13, {T_<std::string>({1}, {"abc"})}, {AttrInt("to", 1)});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("abc"), std::string::npos) << out.status();
}

TEST(ElementwiseTest, CastTargetForms) {
  // Opset 1 names the type as a string.
  auto out = RunOp("Cast", 1, {T_<int32_t>({2}, {1, 2})}, {AttrString("to", "FLOAT")});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat32);
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({1, 2}));
  // float4e2m1 (23) is not a hepml data type.
  EXPECT_FALSE(RunOp("Cast", 21, {T_<float>({1}, {1})}, {AttrInt("to", 23)}).ok());
  EXPECT_FALSE(RunOp("Cast", 13, {T_<float>({1}, {1})}, {AttrInt("to", 99)}).ok());
  EXPECT_FALSE(RunOp("Cast", 13, {T_<float>({1}, {1})}).ok());  // no 'to'
  // Empty tensor.
  out = RunOp("Cast", 13, {T_<float>({0, 2}, {})}, {AttrInt("to", 7)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({0, 2}));
}

std::vector<int> Codes(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw_data());
  return std::vector<int>(p, p + t.size());
}
// int4 values as ints (uint4 read unsigned).
std::vector<int> Nibbles(const Tensor& t) {
  std::vector<int> out;
  for (int64_t i = 0; i < t.size(); ++i) {
    out.push_back(t.dtype() == DType::kInt4 ? t.data<int8_t>()[i] : t.data<uint8_t>()[i]);
  }
  return out;
}
Tensor Int4s(Shape shape, std::vector<int> values, DType dtype = DType::kInt4) {
  Tensor t = Tensor::Empty(dtype, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) static_cast<int8_t*>(t.raw_mutable_data())[i] = static_cast<int8_t>(values[i]);
  return t;
}

TEST(ElementwiseTest, CastToFloat8FollowsSaturate) {
  // float8e4m3fn: 1 -> 0x38; 500 beyond 448; -inf; NaN -> 0x7f.
  std::vector<Tensor> in = {T_<float>({4}, {1.f, 500.f, -kInf, kNaN})};
  auto out = RunOp("Cast", 19, in, {AttrInt("to", 17)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat8E4M3FN);
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x38, 0x7e, 0xfe, 0x7f}));
  out = RunOp("Cast", 19, in, {AttrInt("to", 17), AttrInt("saturate", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x38, 0x7f, 0xff, 0x7f}));
  // float8e5m2 keeps infinities when not saturating.
  out = RunOp("Cast", 19, in, {AttrInt("to", 19), AttrInt("saturate", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x3c, 0x60 /* 500 rounds to 512 */, 0xfc, 0x7f}));
  // float16 source, FNUZ target: -0.0 has no negative zero.
  out = RunOp("Cast", 19, {T_<Float16>({2}, {Float16(-0.0f), Float16(-2.0f)})}, {AttrInt("to", 18)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x00, 0xc8}));
  // bool and integers.
  out = RunOp("Cast", 19, {T_<bool>({2}, {true, false})}, {AttrInt("to", 20)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x40, 0x00}));
  out = RunOp("Cast", 19, {T_<int64_t>({2}, {-3, 100000})}, {AttrInt("to", 17)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0xc4, 0x7e}));  // -1.5 * 2^1; saturated
}

TEST(ElementwiseTest, CastFromFloat8) {
  auto out = RunOp("Cast", 19, {T_<Float8E5M2>({3}, {Float8E5M2::FromBits(0x7c), Float8E5M2::FromBits(0x01),
                                                     Float8E5M2::FromBits(0xfe)})},
                   {AttrInt("to", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<float> v = Values<float>(out->at(0));
  EXPECT_EQ(v[0], kInf);
  EXPECT_EQ(v[1], 1.52587890625e-05f);  // 2^-16
  EXPECT_TRUE(std::isnan(v[2]));
  // float8 -> float8: 448 (e4m3fn 0x7e) is 1.75 * 2^8 in e5m2 (0x5f).
  out = RunOp("Cast", 19, {T_<Float8E4M3FN>({1}, {Float8E4M3FN::FromBits(0x7e)})}, {AttrInt("to", 19)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x5f}));
  // -> int32 truncates, -> bool, -> string.
  std::vector<Tensor> in = {T_<Float8E4M3FN>({3}, {Float8E4M3FN(-2.5), Float8E4M3FN(0.0), Float8E4M3FN(0.375)})};
  out = RunOp("Cast", 19, in, {AttrInt("to", 6)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({-2, 0, 0}));
  out = RunOp("Cast", 19, in, {AttrInt("to", 9)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, true}));
  out = RunOp("Cast", 19, in, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"-2.5", "0.0", "0.375"}));
}

TEST(ElementwiseTest, CastToInt4KeepsTheLowBitsOfIntegers) {
  // 200 = 0xc8 -> 8 -> int4 -8, uint4 8; -9 = ...f7 -> 7; 8 -> int4 -8.
  std::vector<Tensor> in = {T_<int32_t>({5}, {200, -9, 7, 8, -8})};
  auto out = RunOp("Cast", 21, in, {AttrInt("to", 22)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt4);
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({-8, 7, 7, -8, -8}));
  out = RunOp("Cast", 21, in, {AttrInt("to", 21)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kUInt4);
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({8, 7, 7, 8, 8}));
}

TEST(ElementwiseTest, CastFloatToInt4RoundsHalfToEven) {
  // onnx docs/technical/int4.md: round to nearest, ties to even, then keep
  // 4 bits: 7.5 -> 8 -> -8; NaN -> 0.
  auto out = RunOp("Cast", 21, {T_<float>({8}, {-0.5f, 0.5f, 1.5f, 2.5f, -7.9f, 3.99f, 7.5f, kNaN})},
                   {AttrInt("to", 22)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({0, 0, 2, 2, -8, 4, -8, 0}));
  out = RunOp("Cast", 21, {T_<Float8E4M3FN>({2}, {Float8E4M3FN(2.5), Float8E4M3FN(14.0)})}, {AttrInt("to", 21)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({2, 14}));
}

TEST(ElementwiseTest, CastFromInt4) {
  Tensor i4 = Int4s({3}, {-8, 7, -1});
  auto out = RunOp("Cast", 21, {i4}, {AttrInt("to", 1)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({-8.f, 7.f, -1.f}));
  out = RunOp("Cast", 21, {i4}, {AttrInt("to", 21)});  // int4 -> uint4 reinterprets the bits
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({8, 7, 15}));
  out = RunOp("Cast", 21, {Int4s({2}, {15, 9}, DType::kUInt4)}, {AttrInt("to", 22)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({-1, -7}));
  out = RunOp("Cast", 21, {Int4s({2}, {15, 9}, DType::kUInt4)}, {AttrInt("to", 3)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({15, 9}));
  out = RunOp("Cast", 21, {i4}, {AttrInt("to", 8)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"-8", "7", "-1"}));
  out = RunOp("Cast", 21, {T_<std::string>({2}, {"9", "-3"})}, {AttrInt("to", 22)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({-7, -3}));
  out = RunOp("Cast", 21, {i4}, {AttrInt("to", 19)});  // int4 -> float8e5m2: -8, 7, -1 exact
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0xc8, 0x47, 0xbc}));
}

TEST(ElementwiseTest, CastLikeToFloat8AndInt4) {
  auto out = RunOp("CastLike", 21, {T_<float>({2}, {3.f, 1e6f}), T_<Float8E4M3FNUZ>({1}, {Float8E4M3FNUZ(0.0)})},
                   {AttrInt("saturate", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kFloat8E4M3FNUZ);
  EXPECT_EQ(Codes(out->at(0)), std::vector<int>({0x4c, 0x80}));  // 1.5 * 2^1 (bias 8); NaN
  out = RunOp("CastLike", 21, {T_<int64_t>({2}, {-8, 17}), Int4s({1}, {0}, DType::kUInt4)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kUInt4);
  EXPECT_EQ(Nibbles(out->at(0)), std::vector<int>({8, 1}));
}

TEST(ElementwiseTest, IsNaNAndIsInfOnFloat8FromOpset20) {
  Tensor e5m2 = T_<Float8E5M2>({4}, {Float8E5M2::FromBits(0x7c), Float8E5M2::FromBits(0xfc),
                                     Float8E5M2::FromBits(0x7f), Float8E5M2::FromBits(0x3c)});
  auto out = RunOp("IsInf", 20, {e5m2});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, true, false, false}));
  out = RunOp("IsInf", 20, {e5m2}, {AttrInt("detect_negative", 0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false, false, false}));
  out = RunOp("IsNaN", 20, {e5m2});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({false, false, true, false}));
  Tensor fnuz = T_<Float8E4M3FNUZ>({2}, {Float8E4M3FNUZ::FromBits(0x80), Float8E4M3FNUZ::FromBits(0x7f)});
  out = RunOp("IsNaN", 20, {fnuz});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Bools(out->at(0)), std::vector<bool>({true, false}));
  EXPECT_FALSE(RunOp("IsNaN", 13, {fnuz}).ok());  // float8 inputs are new in opset 20
}

TEST(ElementwiseTest, CastLikeTakesTheSecondInputsType) {
  auto out = RunOp("CastLike", 19, {T_<float>({3}, {1.9f, -2.9f, 0}), Scalar_<int8_t>(0)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).dtype(), DType::kInt8);
  EXPECT_EQ(Values<int8_t>(out->at(0)), std::vector<int8_t>({1, -2, 0}));
  out = RunOp("CastLike", 21, {T_<std::string>({1}, {"0.25"}), T_<double>({1}, {0})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<double>(out->at(0)), std::vector<double>({0.25}));
}

}  // namespace
}  // namespace hepml::ops::testing
