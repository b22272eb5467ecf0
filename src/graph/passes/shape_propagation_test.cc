// Shape propagation and fold-shape-subgraphs.
#include "graph/passes/shape_propagation.h"

#include <gtest/gtest.h>

#include "graph/passes/pass.h"
#include "graph/passes/pass_test_util.h"

namespace hepml::passes {
namespace {

using namespace ::hepml::passes::testing;  // NOLINT

std::string Dims(const ShapePropagation& s, const std::string& v) { return s.Type(v).ToString(); }

// What PyTorch exports for x.reshape(b, n, 4, 16) where b, n = x.shape[:2]:
// x is [batch, 32, 64].
Graph ReshapeByShapeOfItself() {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "32", "64"})};
  g.outputs = {VI("y")};
  g.initializers["zero"] = Tensor::Scalar<int64_t>(0);
  g.initializers["one"] = Tensor::Scalar<int64_t>(1);
  g.initializers["axis0"] = Ints({0});
  g.initializers["four"] = Ints({4});
  g.initializers["sixteen"] = Ints({16});
  g.nodes = {MakeNode("Shape", {"x"}, {"s0"}), MakeNode("Gather", {"s0", "zero"}, {"b"}),
             MakeNode("Shape", {"x"}, {"s1"}), MakeNode("Gather", {"s1", "one"}, {"n"}),
             MakeNode("Unsqueeze", {"b", "axis0"}, {"bu"}), MakeNode("Unsqueeze", {"n", "axis0"}, {"nu"}),
             MakeNode("Concat", {"bu", "nu", "four", "sixteen"}, {"shape"}, {IntAttr("axis", 0)}),
             MakeNode("Reshape", {"x", "shape"}, {"r"}), MakeNode("Transpose", {"r"}, {"y"}, {IntsAttr("perm", {0, 2, 1, 3})})};
  return g;
}

TEST(ShapePropagationTest, TracksDimsAndSmallIntegerValues) {
  Graph g = ReshapeByShapeOfItself();
  ShapePropagation s = ShapePropagation::Run(g);
  EXPECT_EQ(Dims(s, "s0"), "int64[3]");
  const ValueFacts* shape = s.Find("shape");
  ASSERT_NE(shape, nullptr);
  ASSERT_TRUE(shape->value.has_value());
  ASSERT_EQ(shape->value->size(), 4u);
  EXPECT_EQ((*shape->value)[0].symbol, "batch");
  EXPECT_EQ(*(*shape->value)[1].number, 32);
  EXPECT_FALSE(shape->FullyKnown());
  const ValueFacts* n = s.Find("n");
  ASSERT_TRUE(n && n->FullyKnown());
  EXPECT_EQ(n->AsTensor()->data<int64_t>()[0], 32);
  EXPECT_EQ(Dims(s, "r"), "float32[batch,32,4,16]");
  EXPECT_EQ(Dims(s, "y"), "float32[batch,4,32,16]");
}

// Found by fuzz/fuzz_onnx: Concat of dims whose sum overflows int64 (a model
// may declare any dims) was signed overflow; the dim is now unknown.
TEST(ShapePropagationTest, ConcatDimsWhoseSumOverflowsAreUnknown) {
  Graph g;
  g.inputs = {TensorVI("x", {"8863082967153508355", "2"}), TensorVI("z", {"8863082967153508355", "2"})};
  g.outputs = {VI("c")};
  g.nodes = {MakeNode("Concat", {"x", "z"}, {"c"}, {IntAttr("axis", 0)})};
  ShapePropagation s = ShapePropagation::Run(g);
  EXPECT_EQ(Dims(s, "c").find("-"), std::string::npos) << Dims(s, "c");
  EXPECT_NE(Dims(s, "c").find(",2]"), std::string::npos) << Dims(s, "c");
}

TEST(ShapePropagationTest, ReshapeMinusOneCancelsSymbolsAndUnknownDimsGetSymbols) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "32", "4", "16"}), TensorVI("u", {""})};
  g.outputs = {VI("y"), VI("v")};
  g.initializers["shape"] = Ints({0, 32, -1});
  g.nodes = {MakeNode("Reshape", {"x", "shape"}, {"y"}), MakeNode("Relu", {"u"}, {"v"})};
  ShapePropagation s = ShapePropagation::Run(g);
  EXPECT_EQ(Dims(s, "y"), "float32[batch,32,64]");
  // An unnamed dynamic dim gets a symbol, kept through Relu.
  ASSERT_EQ(s.Rank("v"), 1);
  EXPECT_FALSE(s.Type("v").shape[0].param.empty());
  EXPECT_EQ(s.Type("v").shape[0].param, s.Type("u").shape[0].param);
}

TEST(ShapePropagationTest, TileMultipliesKnownDimsAndKeepsSymbolsRepeatedOnce) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3"}), TensorVI("n", {"nodes", "2"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["once_thrice"] = Ints({1, 3});
  g.initializers["twice"] = Ints({2, 1});
  g.nodes = {MakeNode("Tile", {"x", "once_thrice"}, {"y"}), MakeNode("Tile", {"n", "twice"}, {"z"})};
  ShapePropagation s = ShapePropagation::Run(g);
  EXPECT_EQ(Dims(s, "y"), "float32[batch,9]");
  // A symbol repeated twice is not a known dim: it gets a fresh symbol.
  ASSERT_EQ(s.Rank("z"), 2);
  EXPECT_NE(s.Type("z").shape[0].param, "nodes");
  EXPECT_EQ(s.Type("z").shape[1].value, 2);
}

TEST(ShapePropagationTest, DeclaredValueInfoFillsWhatTheTableCannot) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "8"})};
  g.outputs = {VI("y")};
  g.value_info = {TensorVI("y", {"batch", "3"})};
  g.nodes = {MakeNode("NonMaxSuppressionLike", {"x"}, {"y"})};  // unknown to the table
  ShapePropagation s = ShapePropagation::Run(g);
  EXPECT_EQ(Dims(s, "y"), "float32[batch,3]");
}

TEST(FoldShapeSubgraphsTest, ReshapeGetsAConstantShapeAndTheChainDies) {
  Graph g = ReshapeByShapeOfItself();
  Graph before = g;
  ASSERT_TRUE(*FoldShapeSubgraphs(g));
  ASSERT_TRUE(*EliminateDeadNodes(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Reshape", "Transpose"}));
  const Tensor& shape = g.initializers.at(g.nodes[0].inputs[1]);
  EXPECT_EQ(std::vector<int64_t>(shape.data<int64_t>(), shape.data<int64_t>() + shape.size()),
            std::vector<int64_t>({0, 32, 4, 16}));
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({3, 32, 64}, 1)}}), 0.0);
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({1, 32, 64}, 2)}}), 0.0);
}

TEST(FoldShapeSubgraphsTest, ExpandShapeOfOwnDimsBecomesOnesAndNoOpExpandGoes) {
  // ParticleNet's idx.unsqueeze(1).expand(b, c, p, k) with the -1 handling
  // torch writes (Where(Equal(shape, -1), 1, shape)).
  Graph g;
  g.inputs = {TensorVI("f", {"batch", "8", "particles"}), TensorVI("idx", {"batch", "1", "particles", "4"})};
  g.outputs = {VI("y"), VI("z")};
  g.initializers["i0"] = Tensor::Scalar<int64_t>(0);
  g.initializers["i1"] = Tensor::Scalar<int64_t>(1);
  g.initializers["i2"] = Tensor::Scalar<int64_t>(2);
  g.initializers["i3"] = Tensor::Scalar<int64_t>(3);
  g.initializers["axis0"] = Ints({0});
  g.initializers["minus1"] = Ints({-1, -1, -1, -1});
  g.initializers["ones"] = Ints({1, 1, 1, 1});
  g.nodes = {MakeNode("Shape", {"f"}, {"sf"}), MakeNode("Shape", {"idx"}, {"si"}),
             MakeNode("Gather", {"sf", "i0"}, {"b"}), MakeNode("Gather", {"sf", "i1"}, {"c"}),
             MakeNode("Gather", {"sf", "i2"}, {"p"}), MakeNode("Gather", {"si", "i3"}, {"k"}),
             MakeNode("Unsqueeze", {"b", "axis0"}, {"bu"}), MakeNode("Unsqueeze", {"c", "axis0"}, {"cu"}),
             MakeNode("Unsqueeze", {"p", "axis0"}, {"pu"}), MakeNode("Unsqueeze", {"k", "axis0"}, {"ku"}),
             MakeNode("Concat", {"bu", "cu", "pu", "ku"}, {"cat"}, {IntAttr("axis", 0)}),
             MakeNode("Equal", {"cat", "minus1"}, {"eq"}), MakeNode("Where", {"eq", "ones", "cat"}, {"shape"}),
             MakeNode("Expand", {"idx", "shape"}, {"y"}),
             // Expanding to its own shape is a no-op.
             MakeNode("Shape", {"f"}, {"sf2"}), MakeNode("Expand", {"f", "sf2"}, {"e"}),
             MakeNode("Relu", {"e"}, {"z"})};
  Graph before = g;
  ASSERT_TRUE(*FoldShapeSubgraphs(g));
  ASSERT_TRUE(*EliminateDeadNodes(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Expand", "Relu"}));
  const Tensor& shape = g.initializers.at(g.nodes[0].inputs[1]);
  EXPECT_EQ(std::vector<int64_t>(shape.data<int64_t>(), shape.data<int64_t>() + shape.size()),
            std::vector<int64_t>({1, 8, 1, 1}));
  EXPECT_EQ(g.nodes[1].inputs[0], "f");
  Tensor idx = Tensor::Zeros(DType::kFloat32, {2, 1, 5, 4});
  EXPECT_EQ(OutputDiff(before, g, {{"f", Random({2, 8, 5}, 1)}, {"idx", idx}}), 0.0);
}

TEST(FoldShapeSubgraphsTest, ConstantShapesThatChangeNothingAreBypassed) {
  Graph g;
  g.inputs = {TensorVI("x", {"edges", "1"})};
  g.outputs = {VI("y"), VI("z"), VI("w")};
  g.initializers["ones"] = Ints({1, 1});
  g.initializers["same"] = Ints({0, 1});
  g.initializers["wider"] = Ints({1, 4});
  g.nodes = {MakeNode("Expand", {"x", "ones"}, {"e"}), MakeNode("Reshape", {"e", "same"}, {"r"}),
             MakeNode("Neg", {"r"}, {"y"}), MakeNode("Expand", {"x", "wider"}, {"z"}),
             MakeNode("Reshape", {"x", "same"}, {"w"})};  // a graph output keeps its node
  Graph before = g;
  ASSERT_TRUE(*FoldShapeSubgraphs(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Neg", "Expand", "Reshape"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({5, 1}, 1)}}), 0.0);
}

TEST(FoldShapeSubgraphsTest, LeavesDimsThatOnlyTheRuntimeKnows) {
  // zeros(x.shape[0], 16): the batch dim is not a constant.
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "6"})};
  g.outputs = {VI("y")};
  g.initializers["i0"] = Tensor::Scalar<int64_t>(0);
  g.initializers["axis0"] = Ints({0});
  g.initializers["c16"] = Ints({16});
  g.nodes = {MakeNode("Shape", {"x"}, {"s"}), MakeNode("Gather", {"s", "i0"}, {"b"}),
             MakeNode("Unsqueeze", {"b", "axis0"}, {"bu"}), MakeNode("Concat", {"bu", "c16"}, {"shape"}, {IntAttr("axis", 0)}),
             MakeNode("ConstantOfShape", {"shape"}, {"y"})};
  EXPECT_FALSE(*FoldShapeSubgraphs(g));
  EXPECT_EQ(g.nodes.size(), 5u);
}

}  // namespace
}  // namespace hepml::passes
