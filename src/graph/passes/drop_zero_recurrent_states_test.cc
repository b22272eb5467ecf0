// drop-zero-recurrent-states: PyTorch's zero initial states built from
// Shape(X) are dropped (and the shape arithmetic with them), other states stay.
#include <gtest/gtest.h>

#include "graph/passes/pass.h"
#include "graph/passes/pass_test_util.h"

namespace hepml::passes {
namespace {

using testing::IntAttr;
using testing::Ints;
using testing::MakeNode;
using testing::OpTypes;
using testing::OutputDiff;
using testing::Random;
using testing::TensorVI;
using testing::VI;

// X [steps, batch, 3] into an LSTM of hidden size 4 whose initial_h and
// initial_c are ConstantOfShape(fill) of [1, Shape(X)[1], `hidden`]: PyTorch's
// export of nn.LSTM with no state given.
Graph TorchLstm(Tensor fill, int64_t hidden = 4) {
  Graph g;
  g.inputs = {TensorVI("x", {"5", "batch", "3"})};
  g.outputs = {VI("y_h")};
  g.initializers["w"] = Random({1, 16, 3}, 1);
  g.initializers["r"] = Random({1, 16, 4}, 2);
  g.initializers["one_idx"] = Ints({1});
  g.initializers["dirs"] = Ints({1});
  g.initializers["hid"] = Ints({hidden});
  Attribute value;
  value.name = "value";
  value.type = Attribute::Type::kTensor;
  value.t = std::move(fill);
  g.nodes = {MakeNode("Shape", {"x"}, {"shape"}),
             MakeNode("Gather", {"shape", "one_idx"}, {"batch"}, {IntAttr("axis", 0)}),
             MakeNode("Concat", {"dirs", "batch", "hid"}, {"state_shape"}, {IntAttr("axis", 0)}),
             MakeNode("ConstantOfShape", {"state_shape"}, {"zeros"}, {value}),
             MakeNode("LSTM", {"x", "w", "r", "", "", "zeros", "zeros"}, {"", "y_h"}, {IntAttr("hidden_size", 4)})};
  return g;
}

Tensor Scalar1(float v) {
  Tensor t = Tensor::Empty(DType::kFloat32, {1});
  t.mutable_data<float>()[0] = v;
  return t;
}

TEST(DropZeroRecurrentStatesTest, TorchZeroStatesGoWithTheirShapeArithmetic) {
  Graph g = TorchLstm(Scalar1(0.f));
  Graph before = g;
  ASSERT_TRUE(*DropZeroRecurrentStates(g));
  ASSERT_TRUE(*EliminateDeadNodes(g));
  EXPECT_EQ(OpTypes(g), std::vector<std::string>({"LSTM"}));
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>({"x", "w", "r"}));
  EXPECT_EQ(OutputDiff(before, g, {{"x", Random({5, 7, 3}, 3)}}), 0.0);
}

TEST(DropZeroRecurrentStatesTest, NonZeroOrMisshapenStatesStay) {
  Graph ones = TorchLstm(Scalar1(1.f));
  EXPECT_FALSE(*DropZeroRecurrentStates(ones));
  EXPECT_EQ(ones.nodes.back().inputs.size(), 7u);
  // Hidden size 5 in the state's shape: the kernel must still report it.
  Graph wrong = TorchLstm(Scalar1(0.f), /*hidden=*/5);
  EXPECT_FALSE(*DropZeroRecurrentStates(wrong));
  EXPECT_EQ(wrong.nodes.back().inputs[5], "zeros");
  // A state that is a graph input is the caller's.
  Graph fed = TorchLstm(Scalar1(0.f));
  fed.inputs.push_back(TensorVI("h0", {"1", "batch", "4"}));
  fed.nodes.back().inputs[5] = "h0";
  ASSERT_TRUE(*DropZeroRecurrentStates(fed));
  EXPECT_EQ(fed.nodes.back().inputs, std::vector<std::string>({"x", "w", "r", "", "", "h0"}));
}

}  // namespace
}  // namespace hepml::passes
