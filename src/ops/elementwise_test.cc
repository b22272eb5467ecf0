#include <gtest/gtest.h>

#include "ops/op_test_util.h"

namespace hepml::ops::testing {
namespace {

TEST(ElementwiseTest, AddBroadcastsLikeNumpy) {
  auto out = RunOp("Add", 14, {T_<float>({2, 3}, {1, 2, 3, 4, 5, 6}), T_<float>({3}, {10, 20, 30})});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at(0).shape(), Shape({2, 3}));
  EXPECT_EQ(Values<float>(out->at(0)), std::vector<float>({11, 22, 33, 14, 25, 36}));
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

TEST(ElementwiseTest, MixedInputTypesAreAnError) {
  auto out = RunOp("Sub", 14, {T_<float>({1}, {1}), T_<double>({1}, {1})});
  ASSERT_FALSE(out.ok());
}

}  // namespace
}  // namespace hepml::ops::testing
