// Unit tests of the shape and data-movement family beyond the ONNX backend
// suite: opset 18-21 versions, old attribute forms, views, strings and other
// dtypes, empty tensors and scalars, bad input. Expected values are worked
// out by hand or with numpy (noted where not obvious).
#include <limits>

#include <gtest/gtest.h>

#include "absl/strings/str_join.h"

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

Tensor Iota(Shape shape) {
  std::vector<int32_t> v(NumElements(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i);
  return T_<int32_t>(shape, v);
}

Tensor Strings(Shape shape, std::vector<std::string> v) { return T_<std::string>(shape, std::move(v)); }

// Runs a one-output op and returns its output (failing the test on error).
Tensor Run1(const std::string& op, int opset, std::vector<Tensor> in, std::vector<Attribute> attrs = {}) {
  auto out = RunOp(op, opset, std::move(in), std::move(attrs));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? out->at(0) : Tensor();
}

bool Fails(const std::string& op, int opset, std::vector<Tensor> in, std::vector<Attribute> attrs = {},
           int num_outputs = 1) {
  return !RunOp(op, opset, std::move(in), std::move(attrs), num_outputs).ok();
}

// ---- Output sizes computed from input values must not overflow ----

TEST(OutputSizeTest, OverflowingShapesAreErrors) {
  const int64_t kBig = int64_t{1} << 62;
  EXPECT_TRUE(Fails("ConstantOfShape", 21, {T_<int64_t>({2}, {kBig, 8})}));
  EXPECT_TRUE(Fails("Expand", 13, {T_<float>({1}, {1}), T_<int64_t>({3}, {kBig, 4, 4})}));
  EXPECT_TRUE(Fails("Tile", 13, {T_<float>({2, 2}, {1, 2, 3, 4}), T_<int64_t>({2}, {kBig, kBig})}));
  EXPECT_TRUE(Fails("Pad", 13, {T_<float>({2}, {1, 2}),
                                T_<int64_t>({2}, {std::numeric_limits<int64_t>::max(), 1})}));
  EXPECT_TRUE(Fails("Pad", 13, {T_<float>({2}, {1, 2}),
                                T_<int64_t>({2}, {std::numeric_limits<int64_t>::min(), 0})}));
  // A zero dimension keeps the output empty however large the others are.
  Tensor t = Run1("Expand", 13, {T_<float>({1}, {1}), T_<int64_t>({2}, {0, kBig})});
  EXPECT_EQ(t.shape(), Shape({0, kBig}));
  EXPECT_EQ(t.size(), 0);
}

// ---- Identity, Constant, ConstantOfShape, Shape, Size ----

TEST(IdentityTest, TensorIsSharedNotCopied) {
  Tensor x = Strings({2}, {"a", "b"});
  Tensor y = Run1("Identity", 21, {x});
  EXPECT_TRUE(y.SharesBufferWith(x));
  EXPECT_EQ(Values<std::string>(y), std::vector<std::string>({"a", "b"}));
}

TEST(IdentityTest, SequencesAndOptionalsPassThrough) {
  OpSpec spec{"Identity", 16};
  auto out = RunOpValues(spec, {Value::FromSequence({Iota({2}), Iota({3})}, DType::kInt32)});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->at(0).kind, Value::Kind::kSequence);
  ASSERT_EQ(out->at(0).sequence.size(), 2u);
  EXPECT_EQ(out->at(0).sequence[1].shape(), Shape({3}));
  EXPECT_EQ(out->at(0).element_dtype, DType::kInt32);
  out = RunOpValues(spec, {Value::None(DType::kFloat32)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).kind, Value::Kind::kNone);
}

TEST(ConstantTest, EveryValueAttribute) {
  Tensor t = Run1("Constant", 13, {}, {AttrFloats("value_floats", {1.5f, 2})});
  EXPECT_EQ(t.shape(), Shape({2}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({1.5f, 2}));
  t = Run1("Constant", 13, {}, {AttrInt("value_int", 7)});
  EXPECT_EQ(t.dtype(), DType::kInt64);
  EXPECT_EQ(t.shape(), Shape({}));
  EXPECT_EQ(Values<int64_t>(t), std::vector<int64_t>({7}));
  t = Run1("Constant", 19, {}, {AttrFloat("value_float", 0.25f)});
  EXPECT_EQ(Values<float>(t), std::vector<float>({0.25f}));
  t = Run1("Constant", 21, {}, {AttrInts("value_ints", {3, 4, 5})});
  EXPECT_EQ(Values<int64_t>(t), std::vector<int64_t>({3, 4, 5}));
  t = Run1("Constant", 12, {}, {AttrString("value_string", "hep")});
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"hep"}));
  t = Run1("Constant", 12, {}, {AttrStrings("value_strings", {"x", "y"})});
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"x", "y"}));
  Tensor value = T_<uint8_t>({2, 2}, {1, 2, 3, 4});
  t = Run1("Constant", 1, {}, {AttrTensor("value", value)});
  EXPECT_EQ(Values<uint8_t>(t), std::vector<uint8_t>({1, 2, 3, 4}));
}

TEST(ConstantTest, SparseValueIsTheDensifiedTensor) {
  Attribute sparse = AttrTensor("sparse_value", T_<float>({2, 2}, {0, 5, 0, 0}));
  sparse.type = Attribute::Type::kSparseTensor;  // the importer densifies it
  Tensor t = Run1("Constant", 11, {}, {sparse});
  EXPECT_EQ(t.shape(), Shape({2, 2}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({0, 5, 0, 0}));
}

TEST(ConstantTest, NoneOrTwoValuesAreErrors) {
  EXPECT_TRUE(Fails("Constant", 13, {}));
  EXPECT_TRUE(Fails("Constant", 13, {}, {AttrInt("value_int", 1), AttrFloat("value_float", 1)}));
}

TEST(ConstantOfShapeTest, ValueTypeAndScalar) {
  Tensor t = Run1("ConstantOfShape", 20, {T_<int64_t>({2}, {2, 1})}, {AttrTensor("value", T_<int32_t>({1}, {-4}))});
  EXPECT_EQ(t.dtype(), DType::kInt32);
  EXPECT_EQ(t.shape(), Shape({2, 1}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({-4, -4}));
  t = Run1("ConstantOfShape", 9, {T_<int64_t>({0}, {})});  // empty shape: a scalar 0.0f
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_EQ(t.shape(), Shape({}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({0}));
  EXPECT_TRUE(Fails("ConstantOfShape", 21, {T_<int64_t>({1}, {-1})}));
  EXPECT_TRUE(Fails("ConstantOfShape", 21, {T_<int64_t>({1}, {2})}, {AttrTensor("value", T_<float>({2}, {1, 2}))}));
}

TEST(ShapeTest, StartAndEndFromOpset15) {
  Tensor x = Iota({2, 3, 4, 5});
  EXPECT_EQ(Values<int64_t>(Run1("Shape", 21, {x}, {AttrInt("start", 1), AttrInt("end", -1)})),
            std::vector<int64_t>({3, 4}));
  EXPECT_EQ(Values<int64_t>(Run1("Shape", 19, {x}, {AttrInt("start", -10)})), std::vector<int64_t>({2, 3, 4, 5}));
  EXPECT_EQ(Run1("Shape", 15, {x}, {AttrInt("start", 3), AttrInt("end", 1)}).shape(), Shape({0}));
  // Before 15 the attributes do not exist.
  EXPECT_EQ(Values<int64_t>(Run1("Shape", 13, {x}, {AttrInt("start", 1)})), std::vector<int64_t>({2, 3, 4, 5}));
  EXPECT_EQ(Run1("Shape", 21, {T_<float>({}, {1})}).shape(), Shape({0}));
}

TEST(SizeTest, CountsElementsOfAnyType) {
  Tensor s = Run1("Size", 21, {Strings({2, 3}, {"a", "b", "c", "d", "e", "f"})});
  EXPECT_EQ(s.shape(), Shape({}));
  EXPECT_EQ(Values<int64_t>(s), std::vector<int64_t>({6}));
  EXPECT_EQ(Values<int64_t>(Run1("Size", 13, {T_<float>({0, 4}, {})})), std::vector<int64_t>({0}));
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze: views ----

TEST(ReshapeTest, ZeroCopiesAndMinusOneInfers) {
  Tensor x = Iota({2, 3, 4});
  Tensor y = Run1("Reshape", 21, {x, T_<int64_t>({2}, {0, -1})});
  EXPECT_EQ(y.shape(), Shape({2, 12}));
  EXPECT_TRUE(y.SharesBufferWith(x));
  // Opset 1 takes the shape as an attribute.
  EXPECT_EQ(Run1("Reshape", 1, {x}, {AttrInts("shape", {4, 6})}).shape(), Shape({4, 6}));
}

TEST(ReshapeTest, AllowZeroFromOpset14) {
  Tensor empty = T_<float>({0, 3}, {});
  EXPECT_EQ(Run1("Reshape", 19, {empty, T_<int64_t>({2}, {3, 0})}, {AttrInt("allowzero", 1)}).shape(),
            Shape({3, 0}));
  // Without allowzero (or before 14) the 0 copies input dimension 1: [3, 3] does not fit.
  EXPECT_TRUE(Fails("Reshape", 19, {empty, T_<int64_t>({2}, {3, 0})}));
  EXPECT_TRUE(Fails("Reshape", 13, {empty, T_<int64_t>({2}, {3, 0})}, {AttrInt("allowzero", 1)}));
  EXPECT_EQ(Run1("Reshape", 19, {empty, T_<int64_t>({3}, {1, 0, 0})}, {AttrInt("allowzero", 1)}).shape(),
            Shape({1, 0, 0}));
  EXPECT_TRUE(Fails("Reshape", 14, {empty, T_<int64_t>({2}, {0, -1})}, {AttrInt("allowzero", 1)}));
}

TEST(ReshapeTest, BadShapesAreErrors) {
  Tensor x = Iota({2, 3});
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<int64_t>({2}, {4, 2})}));
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<int64_t>({2}, {-1, -1})}));
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<int64_t>({2}, {-2, 3})}));
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<int64_t>({2}, {-1, 4})}));
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<int64_t>({3}, {1, 1, 0})}));  // copies a dim x lacks
  EXPECT_TRUE(Fails("Reshape", 13, {x, T_<float>({2}, {3, 2})}));
  EXPECT_TRUE(Fails("Reshape", 1, {x}));
}

TEST(FlattenTest, NegativeAxisAndView) {
  Tensor x = Iota({2, 3, 4});
  Tensor y = Run1("Flatten", 21, {x}, {AttrInt("axis", -1)});
  EXPECT_EQ(y.shape(), Shape({6, 4}));
  EXPECT_TRUE(y.SharesBufferWith(x));
  EXPECT_EQ(Run1("Flatten", 13, {x}, {AttrInt("axis", 0)}).shape(), Shape({1, 24}));
  EXPECT_EQ(Run1("Flatten", 9, {x}, {AttrInt("axis", 3)}).shape(), Shape({24, 1}));
  EXPECT_EQ(Run1("Flatten", 13, {T_<float>({2, 0, 3}, {})}, {AttrInt("axis", 2)}).shape(), Shape({0, 3}));
  EXPECT_TRUE(Fails("Flatten", 9, {x}, {AttrInt("axis", -1)}));  // negative only from 11
  EXPECT_TRUE(Fails("Flatten", 13, {x}, {AttrInt("axis", 4)}));
}

TEST(SqueezeTest, AxesInputFrom13AttributeBefore) {
  Tensor x = Iota({1, 3, 1, 2});
  Tensor y = Run1("Squeeze", 21, {x, T_<int64_t>({1}, {-2})});
  EXPECT_EQ(y.shape(), Shape({1, 3, 2}));
  EXPECT_TRUE(y.SharesBufferWith(x));
  EXPECT_EQ(Run1("Squeeze", 11, {x}, {AttrInts("axes", {0})}).shape(), Shape({3, 1, 2}));
  EXPECT_EQ(Run1("Squeeze", 13, {x}).shape(), Shape({3, 2}));
  EXPECT_TRUE(Fails("Squeeze", 13, {x, T_<int64_t>({1}, {1})}));  // size 3
  EXPECT_TRUE(Fails("Squeeze", 13, {x, T_<int64_t>({1}, {4})}));
}

TEST(UnsqueezeTest, AxesReferToTheOutput) {
  Tensor x = Iota({3, 2});
  Tensor y = Run1("Unsqueeze", 21, {x, T_<int64_t>({2}, {-1, 0})});
  EXPECT_EQ(y.shape(), Shape({1, 3, 2, 1}));
  EXPECT_TRUE(y.SharesBufferWith(x));
  EXPECT_EQ(Run1("Unsqueeze", 11, {x}, {AttrInts("axes", {1})}).shape(), Shape({3, 1, 2}));
  EXPECT_EQ(Run1("Unsqueeze", 13, {T_<float>({}, {1}), T_<int64_t>({1}, {0})}).shape(), Shape({1}));
  EXPECT_TRUE(Fails("Unsqueeze", 13, {x, T_<int64_t>({2}, {0, 0})}));
  EXPECT_TRUE(Fails("Unsqueeze", 13, {x, T_<int64_t>({1}, {3})}));
  EXPECT_TRUE(Fails("Unsqueeze", 13, {x}));
}

// ---- Transpose, Concat, Split ----

TEST(TransposeTest, DefaultPermAndStrings) {
  Tensor t = Run1("Transpose", 21, {Strings({2, 3}, {"a", "b", "c", "d", "e", "f"})});
  EXPECT_EQ(t.shape(), Shape({3, 2}));
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"a", "d", "b", "e", "c", "f"}));
  // numpy: np.arange(12).reshape(2,3,2).transpose(1,0,2)
  t = Run1("Transpose", 13, {Iota({2, 3, 2})}, {AttrInts("perm", {1, 0, 2})});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11}));
}

// Every permutation of a rank-4 tensor whose dims are not multiples of the
// tile size (and one of size 1), for 1-, 2-, 4- and 8-byte elements, against
// the definition out[i0, i1, i2, i3] = in[... at perm ...].
TEST(TransposeTest, EveryPermutationMatchesTheDefinition) {
  const Shape shape = {3, 17, 1, 19};
  const int64_t n = NumElements(shape);
  std::vector<int32_t> v32(n);
  std::vector<int64_t> v64(n);
  std::vector<uint8_t> v8(n);
  for (int64_t i = 0; i < n; ++i) v32[i] = static_cast<int32_t>(i), v64[i] = i * 1000003, v8[i] = static_cast<uint8_t>(i * 7);
  std::vector<int64_t> perm = {0, 1, 2, 3};
  do {
    Shape out_shape;
    for (int64_t p : perm) out_shape.push_back(shape[p]);
    const Shape in_strides = {17 * 19, 19, 19, 1};
    std::vector<int64_t> src(n);  // flat input index of each output element
    for (int64_t i = 0; i < n; ++i) {
      int64_t r = i, off = 0;
      for (int d = 3; d >= 0; --d) {
        off += (r % out_shape[d]) * in_strides[perm[d]];
        r /= out_shape[d];
      }
      src[i] = off;
    }
    const Attribute attr = AttrInts("perm", perm);
    Tensor t32 = Run1("Transpose", 13, {T_<int32_t>(shape, v32)}, {attr});
    Tensor t64 = Run1("Transpose", 13, {T_<int64_t>(shape, v64)}, {attr});
    Tensor t8 = Run1("Transpose", 13, {T_<uint8_t>(shape, v8)}, {attr});
    ASSERT_EQ(t32.shape(), out_shape);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(t32.data<int32_t>()[i], v32[src[i]]) << "perm " << absl::StrJoin(perm, ",") << " i " << i;
      ASSERT_EQ(t64.data<int64_t>()[i], v64[src[i]]) << i;
      ASSERT_EQ(t8.data<uint8_t>()[i], v8[src[i]]) << i;
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
}

TEST(TransposeTest, MovingUnitDimsIsAView) {
  Tensor x = Iota({3, 1, 2});
  Tensor y = Run1("Transpose", 13, {x}, {AttrInts("perm", {1, 0, 2})});
  EXPECT_EQ(y.shape(), Shape({1, 3, 2}));
  EXPECT_TRUE(y.SharesBufferWith(x));
}

TEST(TransposeTest, BadPermIsAnError) {
  EXPECT_TRUE(Fails("Transpose", 13, {Iota({2, 3})}, {AttrInts("perm", {0, 0})}));
  EXPECT_TRUE(Fails("Transpose", 13, {Iota({2, 3})}, {AttrInts("perm", {0, 2})}));
  EXPECT_TRUE(Fails("Transpose", 13, {Iota({2, 3})}, {AttrInts("perm", {0})}));
}

TEST(ConcatTest, EmptyInputsAndStrings) {
  Tensor t = Run1("Concat", 13, {T_<float>({0, 2}, {}), T_<float>({1, 2}, {1, 2}), T_<float>({0, 2}, {})},
                  {AttrInt("axis", 0)});
  EXPECT_EQ(t.shape(), Shape({1, 2}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({1, 2}));
  t = Run1("Concat", 13, {Strings({2, 1}, {"a", "b"}), Strings({2, 2}, {"c", "d", "e", "f"})},
           {AttrInt("axis", -1)});
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"a", "c", "d", "b", "e", "f"}));
  // Opset 1 defaults to axis 1.
  t = Run1("Concat", 1, {T_<float>({1, 1}, {1}), T_<float>({1, 1}, {2})});
  EXPECT_EQ(t.shape(), Shape({1, 2}));
}

TEST(ConcatTest, MismatchesAreErrors) {
  EXPECT_TRUE(Fails("Concat", 13, {T_<float>({1, 2}, {1, 2}), T_<float>({1, 3}, {1, 2, 3})}, {AttrInt("axis", 0)}));
  EXPECT_TRUE(Fails("Concat", 13, {T_<float>({2}, {1, 2}), T_<double>({2}, {1, 2})}, {AttrInt("axis", 0)}));
  EXPECT_TRUE(Fails("Concat", 13, {T_<float>({2}, {1, 2}), T_<float>({1, 2}, {1, 2})}, {AttrInt("axis", 0)}));
  EXPECT_TRUE(Fails("Concat", 13, {T_<float>({2}, {1, 2})}, {AttrInt("axis", 1)}));
  EXPECT_TRUE(Fails("Concat", 4, {T_<float>({2}, {1, 2})}));  // axis required
}

TEST(SplitTest, NumOutputsFromOpset18WithUnevenLastChunk) {
  auto out = RunOp("Split", 18, {Iota({7})}, {AttrInt("num_outputs", 3)}, 3);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0, 1, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(1)), std::vector<int32_t>({3, 4, 5}));
  EXPECT_EQ(Values<int32_t>(out->at(2)), std::vector<int32_t>({6}));
  EXPECT_TRUE(Fails("Split", 18, {Iota({6})}, {AttrInt("num_outputs", 2)}, 3));
}

TEST(SplitTest, SplitInputFrom13AttributeBefore) {
  auto out = RunOp("Split", 13, {Iota({2, 3}), T_<int64_t>({2}, {1, 2})}, {AttrInt("axis", 1)}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<int32_t>(out->at(0)), std::vector<int32_t>({0, 3}));
  EXPECT_EQ(out->at(1).shape(), Shape({2, 2}));
  EXPECT_EQ(Values<int32_t>(out->at(1)), std::vector<int32_t>({1, 2, 4, 5}));
  out = RunOp("Split", 11, {Strings({3}, {"a", "b", "c"})}, {AttrInts("split", {2, 1})}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<std::string>(out->at(0)), std::vector<std::string>({"a", "b"}));
  EXPECT_EQ(Values<std::string>(out->at(1)), std::vector<std::string>({"c"}));
  // Opset 1 also takes the split as an input.
  out = RunOp("Split", 1, {T_<float>({3}, {1, 2, 3}), T_<int64_t>({2}, {1, 2})}, {}, 2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(Values<float>(out->at(1)), std::vector<float>({2, 3}));
}

TEST(SplitTest, BadSplitsAreErrors) {
  EXPECT_TRUE(Fails("Split", 13, {Iota({4}), T_<int64_t>({2}, {1, 2})}, {}, 2));    // sum 3 != 4
  EXPECT_TRUE(Fails("Split", 13, {Iota({4}), T_<int64_t>({2}, {5, -1})}, {}, 2));   // negative
  EXPECT_TRUE(Fails("Split", 13, {Iota({4}), T_<int64_t>({1}, {4})}, {}, 2));       // count
  EXPECT_TRUE(Fails("Split", 13, {Iota({4})}, {AttrInt("axis", 1)}, 2));
  EXPECT_TRUE(Fails("Split", 13, {T_<float>({}, {1})}, {}, 1));
}

// ---- Slice, Expand, Tile ----

TEST(SliceTest, NegativeStepsAndClamping) {
  // numpy: np.arange(12).reshape(3,4)[::-2, 10:0:-1] = [[11,10,9],[3,2,1]]
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  Tensor t = Run1("Slice", 13, {Iota({3, 4}), T_<int64_t>({2}, {-1, 10}), T_<int64_t>({2}, {kMin, 0}),
                                T_<int64_t>({2}, {0, 1}), T_<int64_t>({2}, {-2, -1})});
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({11, 10, 9, 3, 2, 1}));
  // INT64_MAX end with a step: [:, 1::2]
  t = Run1("Slice", 10, {Iota({3, 4}), T_<int64_t>({1}, {1}), T_<int64_t>({1}, {kMax}), T_<int64_t>({1}, {-1}),
                         T_<int64_t>({1}, {2})});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({1, 3, 5, 7, 9, 11}));
  // Empty result when start is past end.
  t = Run1("Slice", 13, {Iota({4}), T_<int32_t>({1}, {3}), T_<int32_t>({1}, {1})});
  EXPECT_EQ(t.shape(), Shape({0}));
}

TEST(SliceTest, AttributesBeforeOpset10AndStrings) {
  Tensor t = Run1("Slice", 1, {Strings({2, 3}, {"a", "b", "c", "d", "e", "f"})},
                  {AttrInts("starts", {1}), AttrInts("ends", {1000}), AttrInts("axes", {1})});
  EXPECT_EQ(t.shape(), Shape({2, 2}));
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"b", "c", "e", "f"}));
}

TEST(SliceTest, BadArgumentsAreErrors) {
  Tensor x = Iota({3, 4});
  EXPECT_TRUE(Fails("Slice", 13, {x, T_<int64_t>({1}, {0}), T_<int64_t>({1}, {2}), T_<int64_t>({1}, {0}),
                                  T_<int64_t>({1}, {0})}));  // step 0
  EXPECT_TRUE(Fails("Slice", 13, {x, T_<int64_t>({1}, {0}), T_<int64_t>({2}, {2, 2})}));
  EXPECT_TRUE(Fails("Slice", 13, {x, T_<int64_t>({2}, {0, 0}), T_<int64_t>({2}, {1, 1}), T_<int64_t>({2}, {1, 1})}));
  EXPECT_TRUE(Fails("Slice", 13, {x, T_<int64_t>({1}, {0}), T_<int64_t>({1}, {1}), T_<int64_t>({1}, {2})}));
}

TEST(ExpandTest, BidirectionalBroadcast) {
  Tensor t = Run1("Expand", 13, {T_<int64_t>({3, 1}, {1, 2, 3}), T_<int64_t>({3}, {2, 1, 2})});
  EXPECT_EQ(t.shape(), Shape({2, 3, 2}));
  EXPECT_EQ(Values<int64_t>(t), std::vector<int64_t>({1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  t = Run1("Expand", 8, {Strings({1}, {"s"}), T_<int64_t>({1}, {3})});
  EXPECT_EQ(Values<std::string>(t), std::vector<std::string>({"s", "s", "s"}));
  EXPECT_EQ(Run1("Expand", 13, {T_<float>({1, 2}, {1, 2}), T_<int64_t>({2}, {0, 1})}).shape(), Shape({0, 2}));
  EXPECT_TRUE(Fails("Expand", 13, {T_<float>({2}, {1, 2}), T_<int64_t>({1}, {3})}));
  EXPECT_TRUE(Fails("Expand", 13, {T_<float>({2}, {1, 2}), T_<int64_t>({1}, {-2})}));
}

TEST(TileTest, RepeatsAndOpset1Form) {
  // numpy: np.tile([[1, 2]], (2, 3))
  Tensor t = Run1("Tile", 13, {T_<int32_t>({1, 2}, {1, 2}), T_<int64_t>({2}, {2, 3})});
  EXPECT_EQ(t.shape(), Shape({2, 6}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2}));
  t = Run1("Tile", 1, {T_<float>({2, 1}, {1, 2}), T_<int64_t>({}, {2}), T_<int64_t>({}, {1})});
  EXPECT_EQ(t.shape(), Shape({2, 2}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({1, 1, 2, 2}));
  EXPECT_EQ(Run1("Tile", 13, {T_<bool>({2}, {true, false}), T_<int64_t>({1}, {0})}).shape(), Shape({0}));
  EXPECT_TRUE(Fails("Tile", 13, {T_<float>({2}, {1, 2}), T_<int64_t>({2}, {1, 1})}));
  EXPECT_TRUE(Fails("Tile", 13, {T_<float>({2}, {1, 2}), T_<int64_t>({1}, {-1})}));
}

// ---- Pad, CenterCropPad ----

TEST(PadTest, ModesIncludingWrapFromOpset19) {
  Tensor x = T_<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor pads = T_<int64_t>({4}, {0, 2, 0, 1});
  // numpy: np.pad(x, ((0,0),(2,1)), 'wrap')
  Tensor t = Run1("Pad", 19, {x, pads}, {AttrString("mode", "wrap")});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4}));
  EXPECT_TRUE(Fails("Pad", 18, {x, pads}, {AttrString("mode", "wrap")}));
  // numpy: np.pad(x, ((0,0),(2,1)), 'edge') / 'reflect'
  t = Run1("Pad", 13, {x, pads}, {AttrString("mode", "edge")});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6}));
  t = Run1("Pad", 13, {x, pads}, {AttrString("mode", "reflect")});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}));
  // Reflecting further than the dimension: numpy np.pad([1,2,3], (5,0), 'reflect')
  t = Run1("Pad", 21, {T_<float>({3}, {1, 2, 3}), T_<int64_t>({2}, {5, 0})}, {AttrString("mode", "reflect")});
  EXPECT_EQ(Values<float>(t), std::vector<float>({2, 1, 2, 3, 2, 1, 2, 3}));
}

TEST(PadTest, ConstantValueAndAxesFromOpset18) {
  Tensor x = T_<int64_t>({2, 2}, {1, 2, 3, 4});
  Tensor t = Run1("Pad", 18, {x, T_<int64_t>({2}, {1, 0}), T_<int64_t>({}, {9}), T_<int64_t>({1}, {-1})});
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(Values<int64_t>(t), std::vector<int64_t>({9, 1, 2, 9, 3, 4}));
  // Without axes the pads cover every axis; constant_value omitted = 0.
  t = Run1("Pad", 21, {x, T_<int64_t>({4}, {0, 0, 1, 0})});
  EXPECT_EQ(Values<int64_t>(t), std::vector<int64_t>({1, 2, 3, 4, 0, 0}));
  Tensor s = Run1("Pad", 13, {Strings({1}, {"a"}), T_<int64_t>({2}, {1, 1}), Strings({}, {"-"})});
  EXPECT_EQ(Values<std::string>(s), std::vector<std::string>({"-", "a", "-"}));
  EXPECT_TRUE(Fails("Pad", 13, {x, T_<int64_t>({4}, {0, 0, 1, 0}), T_<float>({}, {1})}));  // type
}

TEST(PadTest, NegativePadsCrop) {
  // Crop 1 at the start of axis 1, pad 1 at its end with edge values.
  Tensor t = Run1("Pad", 13, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<int64_t>({4}, {0, -1, 0, 1})},
                  {AttrString("mode", "edge")});
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(Values<float>(t), std::vector<float>({2, 3, 3, 5, 6, 6}));
  EXPECT_TRUE(Fails("Pad", 13, {T_<float>({2}, {1, 2}), T_<int64_t>({2}, {-2, -1})}));
}

TEST(PadTest, AttributeFormsBeforeOpset11) {
  Tensor x = T_<float>({2}, {1, 2});
  Tensor t = Run1("Pad", 2, {x}, {AttrInts("pads", {1, 2}), AttrFloat("value", 7)});
  EXPECT_EQ(Values<float>(t), std::vector<float>({7, 1, 2, 7, 7}));
  t = Run1("Pad", 1, {x}, {AttrInts("paddings", {0, 1})});
  EXPECT_EQ(Values<float>(t), std::vector<float>({1, 2, 0}));
}

TEST(PadTest, BadArgumentsAreErrors) {
  Tensor x = T_<float>({2}, {1, 2});
  EXPECT_TRUE(Fails("Pad", 13, {x, T_<int64_t>({1}, {1})}));
  EXPECT_TRUE(Fails("Pad", 13, {x, T_<int64_t>({2}, {1, 1})}, {AttrString("mode", "mirror")}));
  EXPECT_TRUE(Fails("Pad", 13, {T_<float>({0}, {}), T_<int64_t>({2}, {1, 1})}, {AttrString("mode", "edge")}));
  EXPECT_TRUE(Fails("Pad", 18, {x, T_<int64_t>({2}, {1, 1}), Tensor(), T_<int64_t>({1}, {1})}));  // axis range
  EXPECT_TRUE(Fails("Pad", 2, {x}));
}

TEST(CenterCropPadTest, CropsAndPadsAroundTheCentre) {
  // Reference: crop [0..4] to 3 keeps [1..3]; to 4 keeps [0..3]; pad 2 to 5 puts it at 1.
  EXPECT_EQ(Values<int32_t>(Run1("CenterCropPad", 18, {Iota({5}), T_<int64_t>({1}, {3})})),
            std::vector<int32_t>({1, 2, 3}));
  EXPECT_EQ(Values<int32_t>(Run1("CenterCropPad", 18, {Iota({5}), T_<int64_t>({1}, {4})})),
            std::vector<int32_t>({0, 1, 2, 3}));
  EXPECT_EQ(Values<int32_t>(Run1("CenterCropPad", 21, {Iota({2}), T_<int32_t>({1}, {5})})),
            std::vector<int32_t>({0, 0, 1, 0, 0}));
  Tensor t = Run1("CenterCropPad", 18, {Iota({2, 3}), T_<int64_t>({1}, {1})}, {AttrInts("axes", {-1})});
  EXPECT_EQ(t.shape(), Shape({2, 1}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({1, 4}));
  EXPECT_TRUE(Fails("CenterCropPad", 18, {Iota({2, 3}), T_<int64_t>({1}, {1})}));
  EXPECT_TRUE(Fails("CenterCropPad", 18, {Iota({2}), T_<int64_t>({1}, {-1})}));
}

// ---- Range, EyeLike, Trilu ----

TEST(RangeTest, FloatAndIntegerRanges) {
  Tensor t = Run1("Range", 11, {T_<float>({}, {1}), T_<float>({}, {2}), T_<float>({}, {0.3f})});
  ASSERT_EQ(t.size(), 4);  // ceil(1 / 0.3)
  EXPECT_FLOAT_EQ(t.data<float>()[3], 1.9f);
  t = Run1("Range", 11, {T_<int32_t>({}, {10}), T_<int32_t>({}, {4}), T_<int32_t>({}, {-3})});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({10, 7}));
  t = Run1("Range", 11, {T_<int64_t>({}, {0}), T_<int64_t>({}, {-5}), T_<int64_t>({}, {1})});
  EXPECT_EQ(t.shape(), Shape({0}));
  EXPECT_TRUE(Fails("Range", 11, {T_<int64_t>({}, {0}), T_<int64_t>({}, {5}), T_<int64_t>({}, {0})}));
  EXPECT_TRUE(Fails("Range", 11, {T_<int64_t>({}, {0}), T_<int32_t>({}, {5}), T_<int64_t>({}, {1})}));
  EXPECT_TRUE(Fails("Range", 11, {T_<int64_t>({2}, {0, 1}), T_<int64_t>({}, {5}), T_<int64_t>({}, {1})}));
}

TEST(EyeLikeTest, OffsetDiagonalAndDtype) {
  Tensor t = Run1("EyeLike", 9, {T_<float>({3, 4}, std::vector<float>(12))},
                  {AttrInt("k", 1), AttrInt("dtype", static_cast<int>(DType::kInt32))});
  EXPECT_EQ(t.dtype(), DType::kInt32);
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  t = Run1("EyeLike", 9, {T_<bool>({2, 2}, {false, false, false, false})}, {AttrInt("k", -1)});
  EXPECT_EQ(Values<bool>(t), std::vector<bool>({false, false, true, false}));
  EXPECT_TRUE(Fails("EyeLike", 9, {T_<float>({3}, {0, 0, 0})}));
}

TEST(TriluTest, UpperAndLowerWithK) {
  // numpy: np.triu(np.arange(12).reshape(3,4), -1), np.tril(..., 1)
  Tensor x = Iota({3, 4});
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {x, T_<int64_t>({}, {-1})})),
            std::vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11}));
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {x, T_<int64_t>({}, {1})}, {AttrInt("upper", 0)})),
            std::vector<int32_t>({0, 1, 0, 0, 4, 5, 6, 0, 8, 9, 10, 11}));
  // Far-out k: everything or nothing kept; batches of matrices.
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {Iota({2, 2, 2}), T_<int64_t>({}, {kMax})})),
            std::vector<int32_t>(8, 0));
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {Iota({2, 2, 2}), T_<int64_t>({}, {kMin})})),
            Values<int32_t>(Iota({2, 2, 2})));
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {Iota({2, 2, 2}), T_<int64_t>({}, {kMax})}, {AttrInt("upper", 0)})),
            Values<int32_t>(Iota({2, 2, 2})));
  EXPECT_EQ(Values<int32_t>(Run1("Trilu", 14, {Iota({2, 2, 2}), T_<int64_t>({}, {kMin})}, {AttrInt("upper", 0)})),
            std::vector<int32_t>(8, 0));
  // Strings: the cleared entries are empty strings.
  EXPECT_EQ(Values<std::string>(Run1("Trilu", 14, {Strings({2, 2}, {"a", "b", "c", "d"})})),
            std::vector<std::string>({"a", "b", "", "d"}));
  EXPECT_TRUE(Fails("Trilu", 14, {Iota({3})}));
  EXPECT_TRUE(Fails("Trilu", 14, {x, T_<int64_t>({2}, {1, 2})}));
}

// ---- DepthToSpace, SpaceToDepth, ReverseSequence ----

TEST(DepthToSpaceTest, DcrAndCrdModes) {
  // numpy: x = np.arange(16).reshape(1,8,1,2), b = 2
  //   DCR: x.reshape(1,2,2,2,1,2).transpose(0,3,4,1,5,2).reshape(1,2,2,4)
  //   CRD: x.reshape(1,2,2,2,1,2).transpose(0,1,4,2,5,3).reshape(1,2,2,4)
  Tensor x = Iota({1, 8, 1, 2});
  Tensor t = Run1("DepthToSpace", 13, {x}, {AttrInt("blocksize", 2)});
  EXPECT_EQ(t.shape(), Shape({1, 2, 2, 4}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15}));
  t = Run1("DepthToSpace", 13, {x}, {AttrInt("blocksize", 2), AttrString("mode", "CRD")});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15}));
  EXPECT_TRUE(Fails("DepthToSpace", 13, {Iota({1, 6, 1, 1})}, {AttrInt("blocksize", 2)}));
  EXPECT_TRUE(Fails("DepthToSpace", 13, {Iota({4, 1, 1})}, {AttrInt("blocksize", 2)}));
  EXPECT_TRUE(Fails("DepthToSpace", 13, {x}, {AttrInt("blocksize", 2), AttrString("mode", "XYZ")}));
}

TEST(SpaceToDepthTest, InvertsDcr) {
  // numpy: np.arange(16).reshape(1,1,2,2,2,2).transpose(0,3,5,1,2,4).reshape(1,4,2,2)
  Tensor t = Run1("SpaceToDepth", 13, {Iota({1, 1, 4, 4})}, {AttrInt("blocksize", 2)});
  EXPECT_EQ(t.shape(), Shape({1, 4, 2, 2}));
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15}));
  Tensor back = Run1("DepthToSpace", 13, {t}, {AttrInt("blocksize", 2)});
  EXPECT_EQ(Values<int32_t>(back), Values<int32_t>(Iota({1, 1, 4, 4})));
  EXPECT_TRUE(Fails("SpaceToDepth", 13, {Iota({1, 1, 3, 4})}, {AttrInt("blocksize", 2)}));
  EXPECT_TRUE(Fails("SpaceToDepth", 13, {Iota({1, 1, 4, 4})}, {AttrInt("blocksize", 0)}));
}

TEST(ReverseSequenceTest, BatchMajorAndBadLengths) {
  Tensor x = Iota({3, 4});
  Tensor t = Run1("ReverseSequence", 10, {x, T_<int64_t>({3}, {4, 1, 2})},
                  {AttrInt("batch_axis", 0), AttrInt("time_axis", 1)});
  EXPECT_EQ(Values<int32_t>(t), std::vector<int32_t>({3, 2, 1, 0, 4, 5, 6, 7, 9, 8, 10, 11}));
  EXPECT_TRUE(Fails("ReverseSequence", 10, {x, T_<int64_t>({3}, {5, 1, 1})},
                    {AttrInt("batch_axis", 0), AttrInt("time_axis", 1)}));
  EXPECT_TRUE(Fails("ReverseSequence", 10, {x, T_<int64_t>({4}, {1, 1, 1, 1})},
                    {AttrInt("batch_axis", 0), AttrInt("time_axis", 1)}));
  EXPECT_TRUE(Fails("ReverseSequence", 10, {x, T_<int64_t>({4}, {1, 1, 1, 1})}, {AttrInt("batch_axis", 2)}));
}

}  // namespace
}  // namespace hepml::ops::testing
