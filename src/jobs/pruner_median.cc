// The median rule (Optuna's MedianPruner): after n_startup_trials trials have
// completed and from step n_warmup_steps on, a trial stops when its best
// value so far is worse than the median of the completed trials' values at
// the same step. A trial whose values so far are all NaN stops at once.
#include <algorithm>
#include <cmath>

#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

class MedianPruner : public Pruner {
 public:
  explicit MedianPruner(const PrunerOptions& options) : options_(options) {}

  bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all,
                   Direction direction) const override {
    if (step < options_.n_warmup_steps) return false;
    std::vector<const Trial*> completed;
    for (const Trial& t : all) {
      if (t.state == TrialState::kComplete && t.number != trial.number) completed.push_back(&t);
    }
    if (static_cast<int64_t>(completed.size()) < options_.n_startup_trials) return false;
    bool reported = false;
    double best = INFINITY;
    for (const auto& [s, value] : trial.intermediate) {
      if (s > step) break;
      reported = true;
      if (std::isfinite(value)) best = std::min(best, Loss(value, direction));
    }
    if (!reported) return false;
    if (!std::isfinite(best)) return true;  // only NaN or infinite values so far
    std::vector<double> others;
    for (const Trial* t : completed) {
      auto it = t->intermediate.find(step);
      if (it != t->intermediate.end() && !std::isnan(it->second)) others.push_back(Loss(it->second, direction));
    }
    if (others.empty()) return false;
    std::sort(others.begin(), others.end());
    const size_t n = others.size();
    const double median = n % 2 ? others[n / 2] : (others[n / 2 - 1] + others[n / 2]) / 2;
    return best > median;
  }

 private:
  PrunerOptions options_;
};

}  // namespace

std::unique_ptr<Pruner> NewMedianPruner(const PrunerOptions& options) {
  return std::make_unique<MedianPruner>(options);
}

}  // namespace hepml::jobs::sampling
