// cancel-transpose-reshape: input graph, expected graph, same outputs.
#include <gtest/gtest.h>

#include "graph/passes/pass.h"
#include "graph/passes/pass_test_util.h"

namespace hepml::passes {
namespace {

using namespace ::hepml::passes::testing;  // NOLINT

TEST(CancelTransposeReshapeTest, InverseTransposesCancelAndOthersMerge) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "3", "4", "5"})};
  g.outputs = {VI("y"), VI("z")};
  g.nodes = {MakeNode("Transpose", {"x"}, {"t1"}, {IntsAttr("perm", {0, 2, 3, 1})}),
             MakeNode("Transpose", {"t1"}, {"t2"}, {IntsAttr("perm", {0, 3, 1, 2})}),  // undoes t1
             MakeNode("Relu", {"t2"}, {"y"}),
             MakeNode("Transpose", {"x"}, {"u1"}, {IntsAttr("perm", {1, 0, 2, 3})}),
             MakeNode("Transpose", {"u1"}, {"u2"}, {IntsAttr("perm", {0, 1, 3, 2})}),
             MakeNode("Neg", {"u2"}, {"z"})};
  Graph before = g;
  ASSERT_TRUE(*CancelTransposeReshape(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Relu", "Transpose", "Neg"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(g.nodes[1].inputs[0], "x");
  EXPECT_EQ(g.nodes[1].GetInts("perm"), std::vector<int64_t>({1, 0, 3, 2}));
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({2, 3, 4, 5}, 1)}}), 0.0);
}

TEST(CancelTransposeReshapeTest, ReshapeOfShapeOpsReadsTheirInput) {
  Graph g;
  g.inputs = {TensorVI("x", {"2", "3", "4"})};
  g.outputs = {VI("y")};
  g.initializers["s1"] = Ints({6, 4});
  g.initializers["s2"] = Ints({4, -1});
  g.initializers["axes"] = Ints({0});
  g.nodes = {MakeNode("Reshape", {"x", "s1"}, {"r1"}), MakeNode("Unsqueeze", {"r1", "axes"}, {"u"}),
             MakeNode("Reshape", {"u", "s2"}, {"y"})};
  Graph before = g;
  ASSERT_TRUE(*CancelTransposeReshape(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Reshape"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({2, 3, 4}, 1)}}), 0.0);
}

TEST(CancelTransposeReshapeTest, SqueezeUnsqueezePairsCancelAndUnsqueezesMerge) {
  Graph g;
  g.inputs = {TensorVI("x", {"batch", "5"}), TensorVI("m", {"batch", "1", "5"})};
  g.outputs = {VI("y"), VI("z"), VI("w")};
  g.initializers["a1"] = Ints({1});
  g.initializers["a2"] = Ints({2});
  g.initializers["am2"] = Ints({-2});
  g.nodes = {MakeNode("Unsqueeze", {"x", "a1"}, {"u"}), MakeNode("Squeeze", {"u", "am2"}, {"s"}),  // -2 of rank 3 is 1
             MakeNode("Relu", {"s"}, {"y"}),
             MakeNode("Squeeze", {"m", "a1"}, {"q"}), MakeNode("Unsqueeze", {"q", "a1"}, {"q2"}),
             MakeNode("Neg", {"q2"}, {"z"}),
             // key_bias[:, None, None, :]
             MakeNode("Unsqueeze", {"x", "a1"}, {"v1"}), MakeNode("Unsqueeze", {"v1", "a2"}, {"w"})};
  Graph before = g;
  ASSERT_TRUE(*CancelTransposeReshape(g));
  ASSERT_EQ(OpTypes(g), std::vector<std::string>({"Relu", "Neg", "Unsqueeze"}));
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(g.nodes[1].inputs[0], "m");
  const Tensor& axes = g.initializers.at(g.nodes[2].inputs[1]);
  EXPECT_EQ(std::vector<int64_t>(axes.data<int64_t>(), axes.data<int64_t>() + axes.size()), std::vector<int64_t>({1, 2}));
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({3, 5}, 1)}, {"m", Random({3, 1, 5}, 2)}}), 0.0);
}

TEST(CancelTransposeReshapeTest, KeepsGraphOutputsAndReshapesThatCopyDims) {
  Graph g;
  g.inputs = {TensorVI("x", {"2", "3", "4"})};
  g.outputs = {VI("t2"), VI("y")};
  g.initializers["s1"] = Ints({6, 4});
  g.initializers["s2"] = Ints({0, -1});  // 0 copies r1's dim, not x's
  g.nodes = {MakeNode("Transpose", {"x"}, {"t1"}, {IntsAttr("perm", {1, 0, 2})}),
             MakeNode("Transpose", {"t1"}, {"t2"}, {IntsAttr("perm", {1, 0, 2})}),
             MakeNode("Reshape", {"x", "s1"}, {"r1"}), MakeNode("Reshape", {"r1", "s2"}, {"y"})};
  EXPECT_FALSE(*CancelTransposeReshape(g));
  EXPECT_EQ(g.nodes.size(), 4u);
}

}  // namespace
}  // namespace hepml::passes
