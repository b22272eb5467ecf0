#include <cmath>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hepml/jobs.h"
#include "jobs/sampler_impl.h"

namespace hepml::jobs {
namespace {

using ::testing::HasSubstr;

Trial MakeTrial(int64_t number, TrialState state, std::map<int64_t, double> intermediate) {
  Trial t;
  t.number = number;
  t.state = state;
  t.intermediate = std::move(intermediate);
  if (!t.intermediate.empty() && state != TrialState::kRunning) t.value = t.intermediate.rbegin()->second;
  return t;
}

// The same trials with every value negated: a maximised study must decide
// exactly as the minimised one.
std::vector<Trial> Negated(std::vector<Trial> trials) {
  for (Trial& t : trials) {
    for (auto& [step, v] : t.intermediate) v = -v;
    if (t.value) t.value = -*t.value;
  }
  return trials;
}

std::unique_ptr<Pruner> Make(const PrunerOptions& options) {
  absl::StatusOr<std::unique_ptr<Pruner>> pruner = MakePruner(options);
  EXPECT_TRUE(pruner.ok()) << pruner.status();
  return std::move(*pruner);
}

// Asks the pruner about the last trial of `all` at `step`, minimising and,
// with every value negated, maximising; both must agree.
bool Prunes(const Pruner& pruner, const std::vector<Trial>& all, int64_t step) {
  const bool min = pruner.ShouldPrune(all.back(), step, all, Direction::kMinimize);
  const std::vector<Trial> negated = Negated(all);
  const bool max = pruner.ShouldPrune(negated.back(), step, negated, Direction::kMaximize);
  EXPECT_EQ(min, max) << "minimise and maximise disagree";
  return min;
}

TEST(NoPrunerTest, NeverPrunes) {
  std::unique_ptr<Pruner> none = Make(PrunerOptions());
  std::vector<Trial> all{MakeTrial(0, TrialState::kComplete, {{1, 0.0}}),
                         MakeTrial(1, TrialState::kRunning, {{1, 1e9}})};
  EXPECT_FALSE(Prunes(*none, all, 1));
}

class MedianPrunerTest : public ::testing::Test {
 protected:
  // Completed trials whose values at step 2 have median 1.0.
  std::vector<Trial> Completed() {
    return {MakeTrial(0, TrialState::kComplete, {{1, 1.0}, {2, 0.5}, {3, 0.4}}),
            MakeTrial(1, TrialState::kComplete, {{1, 2.0}, {2, 1.0}, {3, 0.9}}),
            MakeTrial(2, TrialState::kComplete, {{1, 3.0}, {2, 1.5}, {3, 1.4}}),
            // Pruned and running trials are not in the median.
            MakeTrial(3, TrialState::kPruned, {{1, 0.0}, {2, -5.0}}),
            MakeTrial(4, TrialState::kRunning, {{1, -1.0}, {2, -5.0}})};
  }
  std::unique_ptr<Pruner> Median(int64_t startup, int64_t warmup) {
    PrunerOptions options;
    options.kind = "median";
    options.n_startup_trials = startup;
    options.n_warmup_steps = warmup;
    return Make(options);
  }
};

TEST_F(MedianPrunerTest, PrunesATrialWorseThanTheMedianAtItsStep) {
  std::vector<Trial> all = Completed();
  all.push_back(MakeTrial(5, TrialState::kRunning, {{1, 1.2}, {2, 1.1}}));
  EXPECT_TRUE(Prunes(*Median(3, 0), all, 2));
  // Its best value so far counts: 0.9 at step 1 is below the median at step 2.
  all.back().intermediate = {{1, 0.9}, {2, 1.1}};
  EXPECT_FALSE(Prunes(*Median(3, 0), all, 2));
  all.back().intermediate = {{1, 1.2}, {2, 0.99}};
  EXPECT_FALSE(Prunes(*Median(3, 0), all, 2));
}

TEST_F(MedianPrunerTest, WaitsForStartupTrialsAndWarmupSteps) {
  std::vector<Trial> all = Completed();
  all.push_back(MakeTrial(5, TrialState::kRunning, {{1, 9.0}, {2, 9.0}}));
  EXPECT_TRUE(Prunes(*Median(3, 2), all, 2));
  EXPECT_FALSE(Prunes(*Median(4, 0), all, 2));  // only 3 completed
  EXPECT_FALSE(Prunes(*Median(3, 3), all, 2));  // still warming up
  // No completed trial reported this step: nothing to compare with.
  all.back().intermediate[7] = 9.0;
  EXPECT_FALSE(Prunes(*Median(0, 0), all, 7));
}

TEST_F(MedianPrunerTest, PrunesADivergedTrial) {
  std::vector<Trial> all = Completed();
  all.push_back(MakeTrial(5, TrialState::kRunning, {{1, NAN}}));
  EXPECT_TRUE(Median(3, 0)->ShouldPrune(all.back(), 1, all, Direction::kMinimize));
}

// Rungs at 1, 3 and 9 steps (min_resource 1, eta 3, max_resource 27).
std::unique_ptr<Pruner> Asha(int64_t max_resource = 27) {
  PrunerOptions options;
  options.kind = "asha";
  options.min_resource = 1;
  options.max_resource = max_resource;
  options.reduction_factor = 3;
  return Make(options);
}

std::vector<Trial> SixAtRungOne() {
  std::vector<Trial> all;
  for (int i = 0; i < 6; ++i) {
    all.push_back(MakeTrial(i, i % 2 ? TrialState::kPruned : TrialState::kRunning, {{1, 0.1 * (i + 1)}}));
  }
  return all;
}

TEST(AshaPrunerTest, KeepsTheTopThirdAtARung) {
  // 7 trials at rung 1: the best floor(7/3) = 2 go on.
  std::vector<Trial> all = SixAtRungOne();
  all.push_back(MakeTrial(6, TrialState::kRunning, {{1, 0.15}}));
  EXPECT_FALSE(Prunes(*Asha(), all, 1));
  all.back().intermediate[1] = 0.25;
  EXPECT_TRUE(Prunes(*Asha(), all, 1));
  // Between rungs nothing is decided, however bad the value.
  all.back().intermediate = {{1, 0.15}, {2, 100.0}};
  EXPECT_FALSE(Prunes(*Asha(), all, 2));
}

TEST(AshaPrunerTest, PromotesEarlyArrivalsOnlyIfBest) {
  std::vector<Trial> alone{MakeTrial(0, TrialState::kRunning, {{1, 100.0}})};
  EXPECT_FALSE(Prunes(*Asha(), alone, 1));
  std::vector<Trial> two{MakeTrial(0, TrialState::kComplete, {{1, 1.0}, {27, 0.5}}),
                         MakeTrial(1, TrialState::kRunning, {{1, 2.0}})};
  EXPECT_TRUE(Prunes(*Asha(), two, 1));
  two.back().intermediate[1] = 0.5;
  EXPECT_FALSE(Prunes(*Asha(), two, 1));
}

TEST(AshaPrunerTest, JudgesARungCrossedBetweenReports) {
  // Reports every 2 steps: rung 3 is judged at step 4 with the values at the
  // first report at or after step 3.
  std::vector<Trial> all;
  for (int i = 0; i < 5; ++i) all.push_back(MakeTrial(i, TrialState::kRunning, {{2, 0.0}, {4, 1.0 + i}, {6, 0.0}}));
  all.push_back(MakeTrial(5, TrialState::kRunning, {{2, 0.0}, {4, 3.5}}));
  EXPECT_TRUE(Prunes(*Asha(), all, 4));  // 6 at the rung: 2 go on (1.0 and 2.0)
  all.back().intermediate[4] = 1.5;
  EXPECT_FALSE(Prunes(*Asha(), all, 4));
}

TEST(AshaPrunerTest, NoRungAtOrAboveMaxResource) {
  // max_resource 9: rungs 1 and 3 only; a bad value at step 9 is not judged.
  std::vector<Trial> all;
  for (int i = 0; i < 6; ++i) all.push_back(MakeTrial(i, TrialState::kComplete, {{8, 0.1}, {9, 0.1}}));
  all.push_back(MakeTrial(6, TrialState::kRunning, {{8, 0.1}, {9, 5.0}}));
  EXPECT_FALSE(Prunes(*Asha(9), all, 9));
  EXPECT_TRUE(Prunes(*Asha(27), all, 9));
}

TEST(AshaPrunerTest, PrunesADivergedTrial) {
  std::vector<Trial> all{MakeTrial(0, TrialState::kRunning, {{1, NAN}})};
  EXPECT_TRUE(Asha()->ShouldPrune(all.back(), 1, all, Direction::kMinimize));
}

PrunerOptions HyperbandOptions() {
  PrunerOptions options;
  options.kind = "hyperband";
  options.min_resource = 1;
  options.max_resource = 9;
  options.reduction_factor = 3;
  return options;
}

std::vector<int64_t> TrialsInBracket(int64_t bracket, size_t count) {
  std::vector<int64_t> numbers;
  for (int64_t n = 0; numbers.size() < count; ++n) {
    if (sampling::HyperbandBracket(HyperbandOptions(), n) == bracket) numbers.push_back(n);
  }
  return numbers;
}

TEST(HyperbandPrunerTest, SpreadsTrialsOverBracketsByTheirBudget) {
  // 3 brackets with budgets 9, 5 and 3 (of 17).
  std::map<int64_t, int> count;
  for (int64_t n = 0; n < 17000; ++n) {
    const int64_t b = sampling::HyperbandBracket(HyperbandOptions(), n);
    EXPECT_EQ(b, sampling::HyperbandBracket(HyperbandOptions(), n));
    ++count[b];
  }
  ASSERT_EQ(count.size(), 3u);
  EXPECT_NEAR(count[0], 9000, 400);
  EXPECT_NEAR(count[1], 5000, 400);
  EXPECT_NEAR(count[2], 3000, 400);
}

TEST(HyperbandPrunerTest, EachBracketPrunesAmongItsOwnTrials) {
  std::unique_ptr<Pruner> hyperband = Make(HyperbandOptions());
  const std::vector<int64_t> b0 = TrialsInBracket(0, 7);
  const std::vector<int64_t> b1 = TrialsInBracket(1, 7);
  const std::vector<int64_t> b2 = TrialsInBracket(2, 1);
  std::vector<Trial> all;
  // Bracket 0 trials at rung 1 with 0.1 ... 0.6; far better bracket 1 ones.
  for (int i = 0; i < 6; ++i) all.push_back(MakeTrial(b0[i], TrialState::kRunning, {{1, 0.1 * (i + 1)}}));
  for (int i = 0; i < 6; ++i) all.push_back(MakeTrial(b1[i], TrialState::kRunning, {{1, 0.01 * (i + 1)}}));
  // Second best of the 7 in bracket 0: goes on, whatever bracket 1 did.
  all.push_back(MakeTrial(b0[6], TrialState::kRunning, {{1, 0.15}}));
  EXPECT_FALSE(Prunes(*hyperband, all, 1));
  all.back().intermediate[1] = 0.25;
  EXPECT_TRUE(Prunes(*hyperband, all, 1));
  // Bracket 1 starts halving at step 3: at step 1 nothing is decided.
  all.back() = MakeTrial(b1[6], TrialState::kRunning, {{1, 100.0}});
  EXPECT_FALSE(Prunes(*hyperband, all, 1));
  // Bracket 2 runs every trial to max_resource.
  all.back() = MakeTrial(b2[0], TrialState::kRunning, {{1, 100.0}, {3, 100.0}});
  EXPECT_FALSE(Prunes(*hyperband, all, 1));
  EXPECT_FALSE(Prunes(*hyperband, all, 3));
}

TEST(MakePrunerTest, RejectsUnknownKindsAndBadOptions) {
  auto error = [](const PrunerOptions& o) {
    absl::StatusOr<std::unique_ptr<Pruner>> p = MakePruner(o);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(p.status().message());
  };
  PrunerOptions o;
  o.kind = "patience";
  EXPECT_THAT(error(o), HasSubstr("unknown pruner 'patience'"));
  o.kind = "median";
  o.n_startup_trials = -1;
  EXPECT_THAT(error(o), HasSubstr("n_startup_trials"));
  o.n_startup_trials = 5;
  o.n_warmup_steps = -2;
  EXPECT_THAT(error(o), HasSubstr("n_warmup_steps"));
  for (const char* kind : {"asha", "hyperband"}) {
    o = PrunerOptions();
    o.kind = kind;
    EXPECT_THAT(error(o), HasSubstr("max_resource is required"));
    o.max_resource = 27;
    o.reduction_factor = 1;
    EXPECT_THAT(error(o), HasSubstr("reduction_factor"));
    o.reduction_factor = 3;
    o.min_resource = 0;
    EXPECT_THAT(error(o), HasSubstr("min_resource"));
    o.min_resource = 27;
    EXPECT_THAT(error(o), HasSubstr("less than max_resource"));
  }
}

}  // namespace
}  // namespace hepml::jobs
