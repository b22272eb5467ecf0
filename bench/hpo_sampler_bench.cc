// The HPO samplers and pruners on standard test functions. Not a test:
// prints the tables of docs/benchmarks.md ("hepml hpo: samplers").
//
//   hpo_sampler_bench [--seeds 20] [--trials 100] [--asha-seeds 20]
//
// Samplers: random, TPE and CMA-ES minimise Branin (2-D) and Hartmann-6 with
// the same number of sequential trials for each seed; the table gives the
// median and mean of each run's best value and the seeds TPE wins against
// random (lower best value). Then the time of one Sample() call with 100 and
// 1000 finished trials.
//
// Pruning: a simulated training whose loss curve depends on three
// hyperparameters (learning rate, width, dropout) and has noise, 27 epochs at
// most, 4 trials at once. Random search without pruning runs N trials to the
// end; ASHA (min_resource 1, eta 3) runs trials from the same random sampler,
// stopping those it prunes, until one finishes at or below random search's
// best; the table gives the trial-epochs each spent.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hepml/jobs.h"
#include "jobs/sampling_util.h"
#include "jobs/test_spaces.h"

namespace {

using namespace hepml::jobs;
using hepml::jobs::testing::Float;
using hepml::jobs::testing::Int;

double Num(const ParamSet& p, const std::string& name) {
  const ParamValue& v = p.at(name);
  if (const double* d = std::get_if<double>(&v)) return *d;
  return static_cast<double>(std::get<int64_t>(v));
}

struct Problem {
  std::string name;
  SearchSpace space;
  std::function<double(const ParamSet&)> f;
  double optimum;
};

Problem Branin() {
  return {"Branin (2-D)", SearchSpace{{Float("x1", -5, 10), Float("x2", 0, 15)}},
          [](const ParamSet& p) {
            const double x1 = Num(p, "x1"), x2 = Num(p, "x2");
            const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
            return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
          },
          0.397887};
}

Problem Hartmann6() {
  SearchSpace space;
  for (int i = 0; i < 6; ++i) space.params.push_back(Float(absl::StrCat("x", i), 0, 1));
  return {"Hartmann-6", space,
          [](const ParamSet& p) {
            static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
            static const double a[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                           {0.05, 10, 17, 0.1, 8, 14},
                                           {3, 3.5, 1.7, 10, 17, 8},
                                           {17, 8, 0.05, 10, 0.1, 14}};
            static const double q[4][6] = {{1312, 1696, 5569, 124, 8283, 5886},
                                           {2329, 4135, 8307, 3736, 1004, 9991},
                                           {2348, 1451, 3522, 2883, 3047, 6650},
                                           {4047, 8828, 8732, 5743, 1091, 381}};
            double sum = 0;
            for (int i = 0; i < 4; ++i) {
              double inner = 0;
              for (int j = 0; j < 6; ++j) {
                const double d = Num(p, absl::StrCat("x", j)) - q[i][j] * 1e-4;
                inner += a[i][j] * d * d;
              }
              sum += alpha[i] * std::exp(-inner);
            }
            return -sum;
          },
          -3.32237};
}

std::unique_ptr<Sampler> MakeOrDie(const std::string& kind, uint64_t seed) {
  SamplerOptions options;
  options.kind = kind;
  options.seed = seed;
  auto sampler = MakeSampler(options);
  if (!sampler.ok()) {
    std::fprintf(stderr, "%s\n", sampler.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*sampler);
}

std::vector<Trial> Run(Sampler& sampler, const Problem& problem, int64_t n) {
  std::vector<Trial> history;
  for (int64_t i = 0; i < n; ++i) {
    auto params = sampler.Sample(problem.space, Direction::kMinimize, history, i);
    if (!params.ok()) {
      std::fprintf(stderr, "%s\n", params.status().ToString().c_str());
      std::exit(1);
    }
    Trial t;
    t.number = i;
    t.state = TrialState::kComplete;
    t.params = *params;
    t.value = problem.f(*params);
    history.push_back(std::move(t));
  }
  return history;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

void SamplerTable(int seeds, int64_t trials) {
  const std::vector<std::string> kinds{"random", "tpe", "cmaes"};
  std::printf("| function (optimum) | sampler | median best | mean best | seeds TPE beats random |\n");
  std::printf("|---|---|---:|---:|---:|\n");
  for (const Problem& problem : {Branin(), Hartmann6()}) {
    std::vector<std::vector<double>> best(kinds.size());
    for (size_t k = 0; k < kinds.size(); ++k) {
      for (int seed = 0; seed < seeds; ++seed) {
        auto sampler = MakeOrDie(kinds[k], static_cast<uint64_t>(seed));
        double b = INFINITY;
        for (const Trial& t : Run(*sampler, problem, trials)) b = std::min(b, *t.value);
        best[k].push_back(b);
      }
    }
    int wins = 0;
    for (int seed = 0; seed < seeds; ++seed) wins += best[1][seed] < best[0][seed];
    for (size_t k = 0; k < kinds.size(); ++k) {
      std::printf("| %s (%.5g) | %s | %.4f | %.4f | %s |\n", problem.name.c_str(), problem.optimum,
                  kinds[k].c_str(), Median(best[k]), Mean(best[k]),
                  k == 1 ? (std::to_string(wins) + " of " + std::to_string(seeds)).c_str() : "");
    }
  }
}

void ProposalTime() {
  std::printf("\n| sampler | finished trials | ms per Sample() (Hartmann-6 space) |\n|---|---:|---:|\n");
  const Problem problem = Hartmann6();
  for (const std::string kind : {"random", "tpe", "cmaes"}) {
    for (int64_t n : {100, 1000}) {
      auto sampler = MakeOrDie(kind, 1);
      auto history = Run(*MakeOrDie("random", 2), problem, n);
      const int reps = 20;
      auto start = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) {
        auto p = sampler->Sample(problem.space, Direction::kMinimize, history, n + r);
        if (!p.ok()) std::exit(1);
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / reps;
      std::printf("| %s | %lld | %.3f |\n", kind.c_str(), static_cast<long long>(n), ms);
    }
  }
}

// ---- pruning on simulated learning curves

constexpr int64_t kEpochs = 27;
constexpr int kWorkers = 4;

SearchSpace TrainingSpace() {
  return SearchSpace{{Float("lr", 1e-4, 1e-1, true), Int("width", 16, 512, true), Float("dropout", 0, 0.5)}};
}

// Validation loss after `epoch` epochs (1-based): the final loss the
// hyperparameters reach plus a decaying excess whose speed grows with the
// learning rate (so fast starters are not always the best finishers), plus
// noise of its own for each (trial, epoch).
double Curve(const ParamSet& p, int64_t trial, int64_t epoch, uint64_t seed) {
  const double lr = std::log10(Num(p, "lr")), width = std::log2(Num(p, "width")), dropout = Num(p, "dropout");
  const double final_loss =
      0.2 + 0.08 * std::pow(lr + 2.3, 2) + 0.02 * std::pow(width - 7.5, 2) + 0.5 * std::pow(dropout - 0.2, 2);
  const double rate = 0.15 + 0.1 * (lr + 4) / 3;  // lr 1e-4: slower, 1e-1: faster
  hepml::jobs::sampling::Rng rng(hepml::jobs::sampling::HashCombine(seed * 1000003 + trial, epoch));
  return final_loss + (0.3 + 2 * (final_loss - 0.2)) * std::exp(-rate * static_cast<double>(epoch)) +
         0.005 * rng.Normal();
}

struct AshaResult {
  int64_t epochs = 0;  // trial-epochs spent until a trial finished at or below the target
  bool reached = false;
  int64_t trials = 0;
};

// Random search: `n` trials to the end, no pruning. Returns its best final
// loss.
double RandomSearchBest(uint64_t seed, int64_t n) {
  auto sampler = MakeOrDie("random", seed);
  double best = INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    ParamSet p = *sampler->Sample(TrainingSpace(), Direction::kMinimize, {}, i);
    best = std::min(best, Curve(p, i, kEpochs, seed));
  }
  return best;
}

// ASHA with kWorkers trials at once, each epoch one time unit; stops when a
// trial completes at or below `target` or after `budget` trial-epochs.
AshaResult AshaUntil(uint64_t seed, double target, int64_t budget) {
  PrunerOptions options;
  options.kind = "asha";
  options.min_resource = 1;
  options.max_resource = kEpochs;
  options.reduction_factor = 3;
  auto pruner = std::move(*MakePruner(options));
  auto sampler = MakeOrDie("random", seed);
  std::vector<Trial> all;
  std::vector<int64_t> running;  // indices into all
  AshaResult result;
  while (result.epochs < budget) {
    while (static_cast<int>(running.size()) < kWorkers) {
      Trial t;
      t.number = static_cast<int64_t>(all.size());
      t.state = TrialState::kRunning;
      t.params = *sampler->Sample(TrainingSpace(), Direction::kMinimize, all, t.number);
      all.push_back(std::move(t));
      running.push_back(static_cast<int64_t>(all.size()) - 1);
    }
    std::vector<int64_t> still;
    for (int64_t index : running) {
      Trial& t = all[index];
      const int64_t epoch = t.intermediate.empty() ? 1 : t.intermediate.rbegin()->first + 1;
      const double loss = Curve(t.params, t.number, epoch, seed);
      t.intermediate[epoch] = loss;
      ++result.epochs;
      if (epoch == kEpochs) {
        t.state = TrialState::kComplete;
        t.value = loss;
        if (loss <= target) {
          result.reached = true;
          result.trials = static_cast<int64_t>(all.size());
          return result;
        }
      } else if (pruner->ShouldPrune(t, epoch, all, Direction::kMinimize)) {
        t.state = TrialState::kPruned;
        t.value = loss;
      } else {
        still.push_back(index);
      }
    }
    running = std::move(still);
  }
  result.trials = static_cast<int64_t>(all.size());
  return result;
}

void PruningTable(int seeds) {
  std::printf("\n| random search trials | its trial-epochs | ASHA runs reaching its best | ASHA trial-epochs (median) "
              "| ratio (median) | ratio (worst) | ASHA trials started (median) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int64_t n : {50, 100, 200}) {
    const int64_t random_epochs = n * kEpochs;
    std::vector<double> epochs, ratios, trials;
    int reached = 0;
    for (int seed = 0; seed < seeds; ++seed) {
      const double target = RandomSearchBest(static_cast<uint64_t>(seed) + 100, n);
      // ASHA draws its own trials (another seed): it must find a configuration
      // as good, not replay the one random search found.
      AshaResult r = AshaUntil(static_cast<uint64_t>(seed) + 5000, target, 3 * random_epochs);
      reached += r.reached;
      const double spent = r.reached ? static_cast<double>(r.epochs) : static_cast<double>(3 * random_epochs);
      epochs.push_back(spent);
      ratios.push_back(spent / static_cast<double>(random_epochs));
      trials.push_back(static_cast<double>(r.trials));
    }
    std::printf("| %lld | %lld | %d of %d | %.0f | %.2f | %.2f | %.0f |\n", static_cast<long long>(n),
                static_cast<long long>(random_epochs), reached, seeds, Median(epochs), Median(ratios),
                *std::max_element(ratios.begin(), ratios.end()), Median(trials));
  }
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 20, asha_seeds = 20;
  int64_t trials = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seeds")) {
      seeds = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--trials")) {
      trials = std::atoll(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--asha-seeds")) {
      asha_seeds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("%d seeds, %lld sequential trials each\n\n", seeds, static_cast<long long>(trials));
  SamplerTable(seeds, trials);
  ProposalTime();
  std::printf("\nASHA vs random search, simulated training (%lld epochs, %d at once), %d seeds\n", 
              static_cast<long long>(kEpochs), kWorkers, asha_seeds);
  PruningTable(asha_seeds);
  return 0;
}
