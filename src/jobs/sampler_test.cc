#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>
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

using Objective = std::function<double(const ParamSet&)>;

std::optional<double> NumericValue(const ParamValue& v) {
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

double Num(const ParamSet& p, const std::string& name) {
  const ParamValue& v = p.at(name);
  if (const double* d = std::get_if<double>(&v)) return *d;
  return static_cast<double>(std::get<int64_t>(v));
}

std::unique_ptr<Sampler> Make(const std::string& kind, uint64_t seed, int64_t population = 0) {
  SamplerOptions options;
  options.kind = kind;
  options.seed = seed;
  options.population = population;
  absl::StatusOr<std::unique_ptr<Sampler>> sampler = MakeSampler(options);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return std::move(*sampler);
}

// A space with every kind of parameter, a conditional one and a conditional
// one under a conditional one.
SearchSpace MixedSpace() {
  return SearchSpace{{Float("lr", 1e-5, 1e-1, true), Float("dropout", 0, 0.5, false, 0.1), Int("layers", 1, 4),
                      Int("units", 16, 512, true), Int("batch", 32, 256, false, 32),
                      Choice("optimizer", {"adam", "sgd", "rmsprop"}),
                      Under(Float("momentum", 0.5, 0.99), "optimizer", {"sgd", "rmsprop"}),
                      Under(Choice("nesterov", {"yes", "no"}), "optimizer", {"sgd"}),
                      Under(Int("restarts", 1, 3), "nesterov", {"yes"})}};
}

// Every active parameter present with a value of its kind, inside its bounds
// and on its step; no inactive or unknown one.
void ExpectValid(const SearchSpace& space, const ParamSet& params) {
  for (const auto& [name, value] : params) {
    EXPECT_NE(space.Find(name), nullptr) << "unknown parameter " << name;
  }
  for (const ParamSpec& spec : space.params) {
    const bool active = IsActive(spec, params);
    auto it = params.find(spec.name);
    ASSERT_EQ(active, it != params.end()) << spec.name << (active ? " is active but missing" : " is inactive but set");
    if (!active) continue;
    const ParamValue& v = it->second;
    switch (spec.kind) {
      case ParamKind::kCategorical:
        ASSERT_TRUE(std::holds_alternative<std::string>(v)) << spec.name;
        EXPECT_NE(std::find(spec.choices.begin(), spec.choices.end(), std::get<std::string>(v)), spec.choices.end());
        break;
      case ParamKind::kInt: {
        ASSERT_TRUE(std::holds_alternative<int64_t>(v)) << spec.name;
        const int64_t i = std::get<int64_t>(v);
        EXPECT_GE(i, spec.low) << spec.name;
        EXPECT_LE(i, spec.high) << spec.name;
        if (spec.step > 0) {
          EXPECT_EQ((i - static_cast<int64_t>(spec.low)) % static_cast<int64_t>(spec.step), 0) << spec.name;
        }
        break;
      }
      case ParamKind::kFloat: {
        ASSERT_TRUE(std::holds_alternative<double>(v)) << spec.name;
        const double d = std::get<double>(v);
        EXPECT_GE(d, spec.low) << spec.name;
        EXPECT_LE(d, spec.high) << spec.name;
        if (spec.step > 0) {
          const double k = (d - spec.low) / spec.step;
          EXPECT_NEAR(k, std::round(k), 1e-9) << spec.name << " = " << d << " is off its step";
          // On-step values format short: 0.3, not 0.30000000000000004.
          EXPECT_LE(FormatParam(v).size(), std::max(FormatParam(spec.low).size(), FormatParam(spec.step).size()) + 3)
              << spec.name << " = " << FormatParam(v) << " (low " << spec.low << ", step " << spec.step << ")";
        }
        break;
      }
    }
  }
}

// Runs a sequential study of `n` trials: each trial is proposed from the
// history so far, then completes with the objective's value.
std::vector<Trial> RunStudy(Sampler& sampler, const SearchSpace& space, const Objective& f, int64_t n,
                            Direction direction = Direction::kMinimize) {
  std::vector<Trial> history;
  for (int64_t i = 0; i < n; ++i) {
    absl::StatusOr<ParamSet> params = sampler.Sample(space, direction, history, i);
    EXPECT_TRUE(params.ok()) << params.status();
    if (!params.ok()) break;
    Trial t;
    t.number = i;
    t.state = TrialState::kComplete;
    t.params = *params;
    t.value = f(*params);
    history.push_back(std::move(t));
  }
  return history;
}

double MixedObjective(const ParamSet& p) {
  double v = std::pow(std::log10(Num(p, "lr")) + 3, 2) + Num(p, "dropout") + Num(p, "layers") * 0.1;
  if (p.count("momentum")) v += 1 - Num(p, "momentum");
  if (p.count("restarts")) v -= 0.1 * Num(p, "restarts");
  return v;
}

class EverySamplerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EverySamplerTest, ProposalsAreInsideTheSpace) {
  const SearchSpace space = MixedSpace();
  std::unique_ptr<Sampler> sampler = Make(GetParam(), 7);
  const int64_t n = GetParam() == "grid" ? 40 : 80;
  std::vector<Trial> history = RunStudy(*sampler, space, MixedObjective, n);
  ASSERT_EQ(history.size(), static_cast<size_t>(n));
  std::set<std::string> optimizers;
  for (const Trial& t : history) {
    ExpectValid(space, t.params);
    optimizers.insert(std::get<std::string>(t.params.at("optimizer")));
  }
  if (GetParam() != "grid") {
    EXPECT_EQ(optimizers.size(), 3u);  // every branch explored
  }
}

TEST_P(EverySamplerTest, SameSeedAndHistoryGiveTheSameProposal) {
  const SearchSpace space = MixedSpace();
  std::unique_ptr<Sampler> first = Make(GetParam(), 11);
  std::vector<Trial> history = RunStudy(*first, space, MixedObjective, 30);
  // A fresh sampler (a resumed study) given the first 20 trials proposes
  // trial 20 exactly as the first one did.
  std::unique_ptr<Sampler> resumed = Make(GetParam(), 11);
  std::vector<Trial> prefix(history.begin(), history.begin() + 20);
  absl::StatusOr<ParamSet> again = resumed->Sample(space, Direction::kMinimize, prefix, 20);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, history[20].params);
  // Asking twice changes nothing.
  EXPECT_EQ(*resumed->Sample(space, Direction::kMinimize, prefix, 20), *again);
}

TEST_P(EverySamplerTest, TheOrderOfTheHistoryDoesNotMatter) {
  // A resumed study may read its trials back in another order than the
  // live one held them (e.g. by number instead of by completion).
  const SearchSpace space = MixedSpace();
  std::unique_ptr<Sampler> sampler = Make(GetParam(), 13);
  std::vector<Trial> history = RunStudy(*sampler, space, [](const ParamSet& p) {
    return std::round(MixedObjective(p));  // ties
  }, 40);
  std::vector<Trial> shuffled = history;
  std::reverse(shuffled.begin(), shuffled.end());
  std::rotate(shuffled.begin(), shuffled.begin() + 7, shuffled.end());
  for (int64_t n : {40, 41, 45}) {
    EXPECT_EQ(*sampler->Sample(space, Direction::kMinimize, history, n),
              *sampler->Sample(space, Direction::kMinimize, shuffled, n));
  }
}

TEST_P(EverySamplerTest, DifferentSeedsGiveDifferentProposals) {
  if (GetParam() == "grid") GTEST_SKIP() << "the grid's order does not depend on the seed";
  const SearchSpace space = MixedSpace();
  std::unique_ptr<Sampler> a = Make(GetParam(), 1);
  std::unique_ptr<Sampler> b = Make(GetParam(), 2);
  std::vector<Trial> history = RunStudy(*a, space, MixedObjective, 25);
  EXPECT_NE(*a->Sample(space, Direction::kMinimize, history, 25), *b->Sample(space, Direction::kMinimize, history, 25));
  EXPECT_NE(*a->Sample(space, Direction::kMinimize, {}, 0), *b->Sample(space, Direction::kMinimize, {}, 0));
}

TEST_P(EverySamplerTest, RejectsAnInvalidSpace) {
  std::unique_ptr<Sampler> sampler = Make(GetParam(), 0);
  absl::StatusOr<ParamSet> params = sampler->Sample(SearchSpace{{Float("x", 1, 0)}}, Direction::kMinimize, {}, 0);
  EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(EverySamplerTest, IgnoresTrialsThatAreNotComplete) {
  // Failed, running and value-less trials, and values outside the space (a
  // space narrowed since), must not break a sampler.
  const SearchSpace space{{Float("x", 0, 1), Int("n", 1, 5), Choice("c", {"a", "b"})}};
  std::vector<Trial> history;
  for (int64_t i = 0; i < 30; ++i) {
    Trial t;
    t.number = i;
    t.params = {{"x", 0.5 + i * 0.1}, {"n", int64_t{i % 7}}, {"c", std::string(i % 3 ? "a" : "zzz")}};
    t.state = i % 4 == 0   ? TrialState::kFailed
              : i % 4 == 1 ? TrialState::kRunning
              : i % 4 == 2 ? TrialState::kComplete
                           : TrialState::kPruned;
    if (i % 5) t.value = static_cast<double>(i);
    if (t.state == TrialState::kPruned && i % 3) t.intermediate = {{1, 5.0 - i}, {i % 5, i * 0.5}};
    if (i % 6 == 0) t.value = NAN;
    history.push_back(t);
  }
  std::unique_ptr<Sampler> sampler = Make(GetParam(), 3);
  absl::StatusOr<ParamSet> params = sampler->Sample(space, Direction::kMinimize, history, 30);
  ASSERT_TRUE(params.ok()) << params.status();
  ExpectValid(space, *params);
}

// Spaces drawn at random (odd steps, tiny and huge ranges, log ints from 1,
// negative bounds, nested conditions): every sampler's proposals stay valid.
SearchSpace RandomSpace(std::mt19937_64& gen) {
  std::uniform_int_distribution<int> kind(0, 5), count(1, 6), small(1, 4);
  std::uniform_real_distribution<double> unit(0, 1);
  SearchSpace space;
  const int n = count(gen);
  for (int i = 0; i < n; ++i) {
    const std::string name = "p" + std::to_string(i);
    ParamSpec spec;
    switch (kind(gen)) {
      case 0:
        spec = Float(name, -unit(gen) * 10, unit(gen) * 10 + 1e-3);
        break;
      case 1:
        spec = Float(name, std::pow(10, -6 * unit(gen)), 1 + unit(gen) * 1e4, true);
        break;
      case 2: {
        const double low = std::round(-unit(gen) * 5);
        spec = Float(name, low, low + 1 + unit(gen) * 3, false, 0.1 + std::round(unit(gen) * 9) / 10);
        break;
      }
      case 3:
        spec = Int(name, std::round(-unit(gen) * 3), std::round(unit(gen) * 3) + 1, false, small(gen) == 1 ? 2 : 0);
        if (spec.step > spec.high - spec.low) spec.step = 0;
        break;
      case 4:
        spec = Int(name, 1, 1 + small(gen) * (unit(gen) < 0.5 ? 1 : 1000), true);
        break;
      default: {
        std::vector<std::string> choices;
        for (int c = 0; c < small(gen); ++c) choices.push_back("c" + std::to_string(c));
        spec = Choice(name, choices);
        break;
      }
    }
    // Sometimes conditional on an earlier categorical or int.
    if (i > 0 && unit(gen) < 0.4) {
      const ParamSpec& parent = space.params[std::uniform_int_distribution<int>(0, i - 1)(gen)];
      if (parent.kind == ParamKind::kCategorical) {
        spec = Under(spec, parent.name, {parent.choices.front()});
      } else if (parent.kind == ParamKind::kInt) {
        spec = Under(spec, parent.name, {FormatParam(static_cast<int64_t>(parent.low))});
      }
    }
    space.params.push_back(spec);
  }
  return space;
}

TEST_P(EverySamplerTest, RandomSpacesGiveValidProposals) {
  std::mt19937_64 gen(42);
  for (int s = 0; s < 60; ++s) {
    const SearchSpace space = RandomSpace(gen);
    ASSERT_TRUE(space.Validate().ok()) << space.Validate();
    std::unique_ptr<Sampler> sampler = Make(GetParam(), static_cast<uint64_t>(s));
    std::vector<Trial> history;
    for (int64_t i = 0; i < 30; ++i) {
      absl::StatusOr<ParamSet> params = sampler->Sample(space, Direction::kMaximize, history, i);
      if (GetParam() == "grid" && params.status().code() == absl::StatusCode::kOutOfRange) break;
      ASSERT_TRUE(params.ok()) << params.status();
      ExpectValid(space, *params);
      if (::testing::Test::HasFailure()) return;
      Trial t;
      t.number = i;
      t.state = i % 7 == 3 ? TrialState::kFailed : TrialState::kComplete;
      t.params = *params;
      double v = 0;
      for (const auto& [name, value] : *params) v += NumericValue(value).value_or(1.0 * name.size());
      t.value = std::sin(v);
      history.push_back(std::move(t));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, EverySamplerTest, ::testing::Values("random", "grid", "tpe", "cmaes"));

TEST(RandomSamplerTest, CoversRangesUniformly) {
  const SearchSpace space{{Float("lr", 1e-4, 1, true), Int("n", 1, 3), Float("x", -1, 1), Int("u", 1, 1000, true)}};
  std::unique_ptr<Sampler> sampler = Make("random", 5);
  int below_geometric_mean = 0, negative = 0, u_below_32 = 0;
  std::map<int64_t, int> ints;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    ParamSet p = *sampler->Sample(space, Direction::kMinimize, {}, i);
    ExpectValid(space, p);
    below_geometric_mean += Num(p, "lr") < 1e-2;
    negative += Num(p, "x") < 0;
    u_below_32 += Num(p, "u") < 32;
    ++ints[std::get<int64_t>(p.at("n"))];
  }
  // Log-uniform: half below the geometric mean; the ends of ints included.
  EXPECT_NEAR(below_geometric_mean, n / 2, n / 10);
  EXPECT_NEAR(negative, n / 2, n / 10);
  EXPECT_NEAR(u_below_32, n / 2, n / 10);
  ASSERT_EQ(ints.size(), 3u);
  for (const auto& [value, count] : ints) EXPECT_NEAR(count, n / 3, n / 15) << value;
}

TEST(RandomSamplerTest, AParameterDrawDoesNotDependOnTheOthers) {
  // Adding a parameter to a space leaves the values drawn for the others.
  const SearchSpace small{{Float("lr", 1e-4, 1, true), Int("n", 1, 100)}};
  const SearchSpace large{{Choice("act", {"relu", "tanh"}), Float("lr", 1e-4, 1, true), Float("x", 0, 1),
                           Int("n", 1, 100)}};
  std::unique_ptr<Sampler> sampler = Make("random", 8);
  for (int64_t i = 0; i < 20; ++i) {
    ParamSet a = *sampler->Sample(small, Direction::kMinimize, {}, i);
    ParamSet b = *sampler->Sample(large, Direction::kMinimize, {}, i);
    EXPECT_EQ(a.at("lr"), b.at("lr"));
    EXPECT_EQ(a.at("n"), b.at("n"));
  }
}

TEST(GridSamplerTest, EnumeratesTheProductThenRunsOut) {
  const SearchSpace space{{Int("a", 1, 3), Choice("b", {"x", "y"}), Float("c", 0, 1)}};
  SamplerOptions options;
  options.kind = "grid";
  options.grid_points = 3;
  std::unique_ptr<Sampler> grid = std::move(*MakeSampler(options));
  std::set<std::string> seen;
  std::vector<ParamSet> points;
  for (int64_t i = 0; i < 18; ++i) {
    absl::StatusOr<ParamSet> p = grid->Sample(space, Direction::kMinimize, {}, i);
    ASSERT_TRUE(p.ok()) << p.status();
    ExpectValid(space, *p);
    seen.insert(FormatParam(p->at("a")) + "/" + FormatParam(p->at("b")) + "/" + FormatParam(p->at("c")));
    points.push_back(*p);
  }
  std::set<std::string> expected;
  for (const char* a : {"1", "2", "3"})
    for (const char* b : {"x", "y"})
      for (const char* c : {"0", "0.5", "1"}) expected.insert(std::string(a) + "/" + b + "/" + c);
  EXPECT_EQ(seen, expected);
  // A fixed order: the first parameter varies slowest.
  EXPECT_EQ(points[0], (ParamSet{{"a", int64_t{1}}, {"b", std::string("x")}, {"c", 0.0}}));
  EXPECT_EQ(points[1], (ParamSet{{"a", int64_t{1}}, {"b", std::string("x")}, {"c", 0.5}}));
  EXPECT_EQ(points[17], (ParamSet{{"a", int64_t{3}}, {"b", std::string("y")}, {"c", 1.0}}));
  absl::StatusOr<ParamSet> past = grid->Sample(space, Direction::kMinimize, {}, 18);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(past.status().message()), HasSubstr("18 grid points"));
}

TEST(GridSamplerTest, ConditionalParametersExpandOnlyUnderTheirParent) {
  // adam: 3 learning rates; sgd: 3 learning rates x 3 momenta = 12 points.
  const SearchSpace space{{Choice("opt", {"adam", "sgd"}), Under(Float("momentum", 0.5, 1, false, 0.25), "opt", {"sgd"}),
                           Float("lr", 1e-3, 1e-1, true)}};
  std::unique_ptr<Sampler> grid = Make("grid", 0);  // grid_points 5 by default
  SamplerOptions options;
  options.kind = "grid";
  options.grid_points = 3;
  grid = std::move(*MakeSampler(options));
  std::set<ParamSet> points;
  int with_momentum = 0;
  for (int64_t i = 0; i < 12; ++i) {
    absl::StatusOr<ParamSet> p = grid->Sample(space, Direction::kMinimize, {}, i);
    ASSERT_TRUE(p.ok()) << p.status();
    ExpectValid(space, *p);
    with_momentum += p->count("momentum");
    points.insert(*p);
  }
  EXPECT_EQ(points.size(), 12u);
  EXPECT_EQ(with_momentum, 9);
  EXPECT_EQ(grid->Sample(space, Direction::kMinimize, {}, 12).status().code(), absl::StatusCode::kOutOfRange);
  // Log-spaced floats: 0.001, 0.01, 0.1.
  std::set<double> lrs;
  for (const ParamSet& p : points) lrs.insert(Num(p, "lr"));
  ASSERT_EQ(lrs.size(), 3u);
  EXPECT_DOUBLE_EQ(*lrs.begin(), 1e-3);
  EXPECT_NEAR(*std::next(lrs.begin()), 1e-2, 1e-12);
  EXPECT_DOUBLE_EQ(*lrs.rbegin(), 1e-1);
}

TEST(GridSamplerTest, HugeGridsAreCountedNotListed) {
  SearchSpace space;
  for (int i = 0; i < 9; ++i) space.params.push_back(Int("p" + std::to_string(i), 0, 99));  // 10^18 points
  std::unique_ptr<Sampler> grid = Make("grid", 0);
  absl::StatusOr<ParamSet> p = grid->Sample(space, Direction::kMinimize, {}, 1000001);
  ASSERT_TRUE(p.ok()) << p.status();
  // 1000001 = 1 * 100^3 + 1: the last parameter varies fastest.
  EXPECT_EQ(std::get<int64_t>(p->at("p8")), 1);
  EXPECT_EQ(std::get<int64_t>(p->at("p7")), 0);
  EXPECT_EQ(std::get<int64_t>(p->at("p6")), 0);
  EXPECT_EQ(std::get<int64_t>(p->at("p5")), 1);
  EXPECT_EQ(std::get<int64_t>(p->at("p0")), 0);
  space.params.push_back(Int("p12", 0, 999999));
  space.params.push_back(Int("p13", 0, 999999));
  EXPECT_EQ(grid->Sample(space, Direction::kMinimize, {}, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// Median distance of the last `k` proposals of a study to x = 3.
double MedianDistanceOfLast(const std::vector<Trial>& history, size_t k) {
  std::vector<double> d;
  for (size_t i = history.size() - k; i < history.size(); ++i) d.push_back(std::abs(Num(history[i].params, "x") - 3));
  std::sort(d.begin(), d.end());
  return d[d.size() / 2];
}

TEST(TpeSamplerTest, ConcentratesNearTheOptimumOfAQuadratic) {
  const SearchSpace space{{Float("x", -10, 10)}};
  auto f = [](const ParamSet& p) { return std::pow(Num(p, "x") - 3, 2); };
  int tpe_wins = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    std::unique_ptr<Sampler> tpe = Make("tpe", seed);
    std::unique_ptr<Sampler> random = Make("random", seed);
    const double tpe_distance = MedianDistanceOfLast(RunStudy(*tpe, space, f, 60), 20);
    const double random_distance = MedianDistanceOfLast(RunStudy(*random, space, f, 60), 20);
    EXPECT_LT(tpe_distance, 1.5) << "seed " << seed;
    tpe_wins += tpe_distance < random_distance;
  }
  EXPECT_EQ(tpe_wins, 5);
}

TEST(TpeSamplerTest, MaximisesToo) {
  const SearchSpace space{{Float("x", -10, 10)}};
  std::unique_ptr<Sampler> tpe = Make("tpe", 3);
  std::vector<Trial> history =
      RunStudy(*tpe, space, [](const ParamSet& p) { return -std::pow(Num(p, "x") - 3, 2); }, 60, Direction::kMaximize);
  EXPECT_LT(MedianDistanceOfLast(history, 20), 1.5);
}

TEST(TpeSamplerTest, LearnsCategoricalsAndInts) {
  const SearchSpace space{{Choice("act", {"relu", "tanh", "gelu", "elu"}), Int("layers", 1, 8)}};
  auto f = [](const ParamSet& p) {
    return (std::get<std::string>(p.at("act")) == "gelu" ? 0.0 : 1.0) + std::abs(Num(p, "layers") - 6);
  };
  std::unique_ptr<Sampler> tpe = Make("tpe", 9);
  std::vector<Trial> history = RunStudy(*tpe, space, f, 60);
  int gelu = 0, six = 0;
  for (size_t i = 40; i < 60; ++i) {
    gelu += std::get<std::string>(history[i].params.at("act")) == "gelu";
    six += std::get<int64_t>(history[i].params.at("layers")) == 6;
  }
  EXPECT_GE(gelu, 10);  // random: 5 of 20
  EXPECT_GE(six, 6);    // random: 2.5 of 20
}

TEST(TpeSamplerTest, UsesOnlyRandomProposalsBeforeStartup) {
  const SearchSpace space{{Float("x", -10, 10)}};
  std::unique_ptr<Sampler> tpe = Make("tpe", 4);
  std::unique_ptr<Sampler> random = Make("random", 4);
  std::vector<Trial> history = RunStudy(*tpe, space, [](const ParamSet& p) { return Num(p, "x"); }, 10);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(history[i].params, *random->Sample(space, Direction::kMinimize, {}, i));
  }
}

TEST(CmaEsSamplerTest, ConvergesOnASphere) {
  const SearchSpace space{{Float("x", -5, 5), Float("y", -5, 5)}};
  auto f = [](const ParamSet& p) { return std::pow(Num(p, "x") - 1, 2) + std::pow(Num(p, "y") + 2, 2); };
  for (uint64_t seed = 0; seed < 3; ++seed) {
    std::unique_ptr<Sampler> cma = Make("cmaes", seed);
    std::vector<Trial> history = RunStudy(*cma, space, f, 240);  // 40 generations of 6
    double best = INFINITY;
    for (const Trial& t : history) best = std::min(best, *t.value);
    EXPECT_LT(best, 1e-4) << "seed " << seed;
    // The last generation sits on the optimum.
    for (size_t i = 234; i < 240; ++i) EXPECT_LT(*history[i].value, 1e-2) << "seed " << seed << " trial " << i;
  }
}

TEST(CmaEsSamplerTest, RoundsIntsAndDrawsCategoricals) {
  const SearchSpace space{{Int("n", 0, 20), Float("x", 0, 1), Choice("c", {"a", "b"}),
                           Under(Float("y", 0, 1), "c", {"b"})}};
  auto f = [](const ParamSet& p) { return std::abs(Num(p, "n") - 13) + Num(p, "x"); };
  std::unique_ptr<Sampler> cma = Make("cmaes", 1, 8);
  std::vector<Trial> history = RunStudy(*cma, space, f, 200);
  for (const Trial& t : history) ExpectValid(space, t.params);
  int thirteen = 0;
  for (size_t i = 184; i < 200; ++i) thirteen += std::get<int64_t>(history[i].params.at("n")) == 13;
  EXPECT_GE(thirteen, 12);
}

TEST(MakeSamplerTest, RejectsUnknownKindsAndBadOptions) {
  auto error = [](SamplerOptions o) {
    absl::StatusOr<std::unique_ptr<Sampler>> s = MakeSampler(o);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.status().message());
  };
  SamplerOptions o;
  o.kind = "bayes";
  EXPECT_THAT(error(o), HasSubstr("unknown sampler 'bayes'"));
  o.kind = "tpe";
  o.gamma = 0;
  EXPECT_THAT(error(o), HasSubstr("gamma"));
  o.gamma = 1;
  EXPECT_THAT(error(o), HasSubstr("gamma"));
  o.gamma = 0.25;
  o.n_startup_trials = -1;
  EXPECT_THAT(error(o), HasSubstr("n_startup_trials"));
  o.n_startup_trials = 10;
  o.n_ei_candidates = 0;
  EXPECT_THAT(error(o), HasSubstr("n_ei_candidates"));
  o = SamplerOptions();
  o.kind = "cmaes";
  o.sigma0 = 0;
  EXPECT_THAT(error(o), HasSubstr("sigma0"));
  o.sigma0 = 0.3;
  o.population = 1;
  EXPECT_THAT(error(o), HasSubstr("population"));
  o.population = -3;
  EXPECT_THAT(error(o), HasSubstr("population"));
  o = SamplerOptions();
  o.kind = "grid";
  o.grid_points = 0;
  EXPECT_THAT(error(o), HasSubstr("grid_points"));
}

}  // namespace
}  // namespace hepml::jobs
