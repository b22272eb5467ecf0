// Asynchronous successive halving (Li et al., "A System for Massively
// Parallel Hyperparameter Tuning", MLSys 2020), as Optuna's
// SuccessiveHalvingPruner: rungs at min_resource * eta^k steps; a trial that
// reaches a rung goes on only if it is in the top 1/eta of the trials that
// have reached that rung so far (the first ones to arrive are promoted while
// fewer than eta trials are there, if they are the best). Decisions use what
// is known when the trial reports its first value at or after the rung, so
// the runner asks after each new intermediate value.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>

#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

// The loss of `t` at the rung: its value at the first step >= rung, if any.
std::optional<double> RungLoss(const Trial& t, int64_t rung, Direction direction) {
  auto it = t.intermediate.lower_bound(rung);
  if (it == t.intermediate.end()) return std::nullopt;
  return std::isnan(it->second) ? std::numeric_limits<double>::infinity() : Loss(it->second, direction);
}

}  // namespace

bool SuccessiveHalvingPrunes(const Trial& trial, int64_t step, const std::vector<const Trial*>& competitors,
                             Direction direction, int64_t min_resource, int64_t max_resource, double eta,
                             int64_t min_early_stopping_rate) {
  auto at = trial.intermediate.upper_bound(step);
  if (at == trial.intermediate.begin()) return false;  // nothing reported yet
  --at;
  if (std::isnan(at->second)) return true;
  // The previous report, before `at`.
  const int64_t previous = at == trial.intermediate.begin() ? std::numeric_limits<int64_t>::min() : std::prev(at)->first;
  for (int64_t k = min_early_stopping_rate;; ++k) {
    const double rung_f = static_cast<double>(min_resource) * std::pow(eta, static_cast<double>(k));
    if (rung_f >= static_cast<double>(max_resource)) break;
    const int64_t rung = static_cast<int64_t>(std::llround(rung_f));
    if (rung > at->first) break;
    if (rung <= previous) continue;  // decided at an earlier report
    const double own = std::isnan(at->second) ? std::numeric_limits<double>::infinity() : Loss(at->second, direction);
    std::vector<double> losses{own};
    for (const Trial* t : competitors) {
      if (t->number == trial.number) continue;
      if (std::optional<double> loss = RungLoss(*t, rung, direction)) losses.push_back(*loss);
    }
    int64_t promotable = static_cast<int64_t>(std::floor(static_cast<double>(losses.size()) / eta)) - 1;
    if (promotable < 0) promotable = 0;
    std::nth_element(losses.begin(), losses.begin() + promotable, losses.end());
    if (own > losses[promotable]) return true;
  }
  return false;
}

namespace {

class AshaPruner : public Pruner {
 public:
  explicit AshaPruner(const PrunerOptions& options) : options_(options) {}

  bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all,
                   Direction direction) const override {
    std::vector<const Trial*> competitors;
    for (const Trial& t : all) competitors.push_back(&t);
    return SuccessiveHalvingPrunes(trial, step, competitors, direction, options_.min_resource,
                                   options_.max_resource, options_.reduction_factor, 0);
  }

 private:
  PrunerOptions options_;
};

}  // namespace

std::unique_ptr<Pruner> NewAshaPruner(const PrunerOptions& options) { return std::make_unique<AshaPruner>(options); }

}  // namespace hepml::jobs::sampling
