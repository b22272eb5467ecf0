#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hepml/jobs.h"
#include "jobs/test_spaces.h"

namespace hepml::jobs {
namespace {

using ::testing::HasSubstr;

using testing::Choice;
using testing::Float;
using testing::Int;
using testing::Under;

void ExpectInvalid(const SearchSpace& space, const std::string& fragment) {
  absl::Status status = space.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(fragment));
}

TEST(SearchSpaceTest, AcceptsAWellFormedSpace) {
  SearchSpace space{{Float("lr", 1e-5, 1e-1, true), Float("dropout", 0, 0.5, false, 0.1), Int("layers", 1, 4),
                     Int("units", 16, 512, true), Choice("optimizer", {"adam", "sgd"}),
                     Under(Float("momentum", 0.5, 0.99), "optimizer", {"sgd"})}};
  EXPECT_TRUE(space.Validate().ok()) << space.Validate();
  ASSERT_NE(space.Find("units"), nullptr);
  EXPECT_EQ(space.Find("units")->kind, ParamKind::kInt);
  EXPECT_EQ(space.Find("nope"), nullptr);
}

TEST(SearchSpaceTest, RejectsEmptySpace) { ExpectInvalid(SearchSpace{}, "no parameters"); }

TEST(SearchSpaceTest, RejectsLowNotBelowHigh) {
  ExpectInvalid(SearchSpace{{Float("lr", 0.1, 0.1)}}, "'lr'");
  ExpectInvalid(SearchSpace{{Float("lr", 0.2, 0.1)}}, "must be less than high");
  ExpectInvalid(SearchSpace{{Int("layers", 5, 2)}}, "must be less than high");
}

TEST(SearchSpaceTest, RejectsLogWithNonPositiveLow) {
  ExpectInvalid(SearchSpace{{Float("lr", 0, 1, true)}}, "log scale needs low > 0");
  ExpectInvalid(SearchSpace{{Int("units", -4, 16, true)}}, "log scale needs low > 0");
}

TEST(SearchSpaceTest, RejectsBadNumericDetails) {
  ExpectInvalid(SearchSpace{{Int("layers", 1.5, 4)}}, "must be integers");
  ExpectInvalid(SearchSpace{{Float("x", 0, INFINITY)}}, "finite");
  ExpectInvalid(SearchSpace{{Float("x", 0, 1, false, -0.1)}}, "step must be >= 0");
  ExpectInvalid(SearchSpace{{Float("x", 0.1, 1, true, 0.1)}}, "log scale and a step");
  ExpectInvalid(SearchSpace{{Float("x", 0, 1, false, 2)}}, "larger than high - low");
  ExpectInvalid(SearchSpace{{Float("x", 0, 1e6, false, 1e-300)}}, "more than 2^53 values");
  ExpectInvalid(SearchSpace{{Float("x", -1e308, 1e308)}}, "overflows");
  ParamSpec int_step = Int("n", 0, 10);
  int_step.step = 2.5;
  ExpectInvalid(SearchSpace{{int_step}}, "step must be an integer");
}

TEST(SearchSpaceTest, RejectsDuplicateAndBadNames) {
  ExpectInvalid(SearchSpace{{Float("lr", 0, 1), Int("lr", 1, 4)}}, "'lr' defined twice");
  ExpectInvalid(SearchSpace{{Float("", 0, 1)}}, "no name");
  ExpectInvalid(SearchSpace{{Float("learning rate", 0, 1)}}, "spaces");
}

TEST(SearchSpaceTest, RejectsBadChoices) {
  ExpectInvalid(SearchSpace{{Choice("act", {})}}, "no choices");
  ExpectInvalid(SearchSpace{{Choice("act", {"relu", "relu"})}}, "'relu' appears twice");
  ExpectInvalid(SearchSpace{{Choice("act", {"relu", ""})}}, "empty string");
}

TEST(SearchSpaceTest, RejectsBadParents) {
  ExpectInvalid(SearchSpace{{Under(Float("momentum", 0, 1), "optimizer", {"sgd"})}}, "unknown parent 'optimizer'");
  ExpectInvalid(SearchSpace{{Under(Float("momentum", 0, 1), "optimizer", {"sgd"}), Choice("optimizer", {"sgd"})}},
                "parent 'optimizer' must come before it");
  ExpectInvalid(SearchSpace{{Choice("optimizer", {"adam", "sgd"}), Under(Float("momentum", 0, 1), "optimizer", {})}},
                "no parent_values");
  ExpectInvalid(
      SearchSpace{{Choice("optimizer", {"adam", "sgd"}), Under(Float("momentum", 0, 1), "optimizer", {"rmsprop"})}},
      "'rmsprop' is not a choice of 'optimizer'");
  ParamSpec orphan_values = Float("x", 0, 1);
  orphan_values.parent_values = {"a"};
  ExpectInvalid(SearchSpace{{orphan_values}}, "without a parent");
}

TEST(SearchSpaceTest, FormatsValuesShortestRoundTrip) {
  EXPECT_EQ(FormatParam(0.001), "0.001");
  EXPECT_EQ(FormatParam(int64_t{64}), "64");
  EXPECT_EQ(FormatParam(64.0), "64");
  EXPECT_EQ(FormatParam(std::string("relu")), "relu");
  EXPECT_EQ(FormatParam(-0.5), "-0.5");
  const double third = 1.0 / 3;
  EXPECT_EQ(std::stod(FormatParam(third)), third);
  EXPECT_EQ(std::stod(FormatParam(1.2345e-7)), 1.2345e-7);
}

TEST(SearchSpaceTest, ConditionalActivity) {
  ParamSpec momentum = Under(Float("momentum", 0, 1), "optimizer", {"sgd", "rmsprop"});
  ParamSpec always = Float("lr", 0, 1);
  EXPECT_TRUE(IsActive(always, {}));
  EXPECT_FALSE(IsActive(momentum, {}));
  EXPECT_FALSE(IsActive(momentum, {{"optimizer", std::string("adam")}}));
  EXPECT_TRUE(IsActive(momentum, {{"optimizer", std::string("sgd")}}));
  EXPECT_TRUE(IsActive(momentum, {{"optimizer", std::string("rmsprop")}}));
  // Numeric parents compare by their formatted value.
  ParamSpec wide = Under(Float("width", 0, 1), "layers", {"3"});
  EXPECT_TRUE(IsActive(wide, {{"layers", int64_t{3}}}));
  EXPECT_FALSE(IsActive(wide, {{"layers", int64_t{2}}}));
}

TEST(SearchSpaceTest, TrialStateNames) {
  EXPECT_STREQ(TrialStateName(TrialState::kQueued), "queued");
  EXPECT_STREQ(TrialStateName(TrialState::kRunning), "running");
  EXPECT_STREQ(TrialStateName(TrialState::kComplete), "complete");
  EXPECT_STREQ(TrialStateName(TrialState::kPruned), "pruned");
  EXPECT_STREQ(TrialStateName(TrialState::kFailed), "failed");
}

}  // namespace
}  // namespace hepml::jobs
