// Hyperband (Li et al., JMLR 2018) over asynchronous successive halving, as
// Optuna's HyperbandPruner: floor(log_eta(max_resource / min_resource)) + 1
// brackets; bracket b halves from min_resource * eta^b on (bracket 0 is the
// most aggressive). A trial's bracket is a hash of its number, weighted by
// Hyperband's budget per bracket, ceil(B * eta^s / (s + 1)) with
// s = B - 1 - b, so the same trial always lands in the same bracket; each
// bracket prunes only among its own trials.
#include <cmath>
#include <vector>

#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

// Hyperband's budget per bracket, bracket 0 first.
std::vector<uint64_t> BracketBudgets(const PrunerOptions& options) {
  const double ratio = static_cast<double>(options.max_resource) / static_cast<double>(options.min_resource);
  const int64_t brackets =
      static_cast<int64_t>(std::floor(std::log(ratio) / std::log(options.reduction_factor) + 1e-9)) + 1;
  std::vector<uint64_t> budgets;
  for (int64_t b = 0; b < brackets; ++b) {
    const int64_t s = brackets - 1 - b;
    budgets.push_back(static_cast<uint64_t>(
        std::ceil(static_cast<double>(brackets) * std::pow(options.reduction_factor, static_cast<double>(s)) /
                  static_cast<double>(s + 1))));
  }
  return budgets;
}

int64_t BracketOf(const std::vector<uint64_t>& budgets, uint64_t total, int64_t trial_number) {
  uint64_t h = HashCombine(0x68797065726261ULL, static_cast<uint64_t>(trial_number)) % total;
  for (size_t b = 0; b < budgets.size(); ++b) {
    if (h < budgets[b]) return static_cast<int64_t>(b);
    h -= budgets[b];
  }
  return static_cast<int64_t>(budgets.size()) - 1;
}

class HyperbandPruner : public Pruner {
 public:
  explicit HyperbandPruner(const PrunerOptions& options) : options_(options), budgets_(BracketBudgets(options)) {
    for (uint64_t b : budgets_) total_ += b;
  }

  bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all,
                   Direction direction) const override {
    const int64_t bracket = BracketOf(budgets_, total_, trial.number);
    std::vector<const Trial*> competitors;
    for (const Trial& t : all) {
      if (BracketOf(budgets_, total_, t.number) == bracket) competitors.push_back(&t);
    }
    return SuccessiveHalvingPrunes(trial, step, competitors, direction, options_.min_resource,
                                   options_.max_resource, options_.reduction_factor, bracket);
  }

 private:
  PrunerOptions options_;
  std::vector<uint64_t> budgets_;
  uint64_t total_ = 0;
};

}  // namespace

int64_t HyperbandBracket(const PrunerOptions& options, int64_t trial_number) {
  const std::vector<uint64_t> budgets = BracketBudgets(options);
  uint64_t total = 0;
  for (uint64_t b : budgets) total += b;
  return BracketOf(budgets, total, trial_number);
}

std::unique_ptr<Pruner> NewHyperbandPruner(const PrunerOptions& options) {
  return std::make_unique<HyperbandPruner>(options);
}

}  // namespace hepml::jobs::sampling
