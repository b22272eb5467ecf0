// A minimal pruner set (none, median, asha) for building the study runner
// before the real pruners land: src/jobs/CMakeLists.txt leaves this file out
// as soon as a pruner*.cc exists. Delete it then.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "hepml/jobs.h"

namespace hepml::jobs {
namespace {

bool Better(double a, double b, Direction d) { return d == Direction::kMinimize ? a < b : a > b; }

class NoPruner : public Pruner {
 public:
  bool ShouldPrune(const Trial&, int64_t, const std::vector<Trial>&, Direction) const override { return false; }
};

class MedianPruner : public Pruner {
 public:
  explicit MedianPruner(PrunerOptions o) : o_(o) {}
  bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all, Direction d) const override {
    if (step < o_.n_warmup_steps) return false;
    auto mine = trial.intermediate.find(step);
    if (mine == trial.intermediate.end()) return false;
    std::vector<double> others;
    int64_t complete = 0;
    for (const auto& t : all) {
      if (t.number == trial.number || t.state != TrialState::kComplete) continue;
      ++complete;
      auto it = t.intermediate.find(step);
      if (it != t.intermediate.end()) others.push_back(it->second);
    }
    if (complete < o_.n_startup_trials || others.empty()) return false;
    std::sort(others.begin(), others.end());
    size_t n = others.size();
    double median = n % 2 ? others[n / 2] : (others[n / 2 - 1] + others[n / 2]) / 2;
    return Better(median, mine->second, d);
  }

 private:
  PrunerOptions o_;
};

// Asynchronous successive halving: at rungs min_resource * eta^k a trial
// goes on only if it is in the top 1/eta of the trials that reached the rung.
class AshaPruner : public Pruner {
 public:
  explicit AshaPruner(PrunerOptions o) : o_(o) {}
  bool ShouldPrune(const Trial& trial, int64_t step, const std::vector<Trial>& all, Direction d) const override {
    if (step >= o_.max_resource) return false;
    double rung = o_.min_resource;
    while (rung * o_.reduction_factor <= step + 1e-9) rung *= o_.reduction_factor;
    if (std::fabs(rung - step) > 1e-9) return false;
    auto mine = trial.intermediate.find(step);
    if (mine == trial.intermediate.end()) return false;
    std::vector<double> values;
    for (const auto& t : all) {
      auto it = t.intermediate.find(step);
      if (it != t.intermediate.end()) values.push_back(it->second);
    }
    size_t keep = static_cast<size_t>(std::floor(values.size() / o_.reduction_factor));
    if (keep == 0) return false;  // too few trials at this rung yet: go on
    std::sort(values.begin(), values.end(), [&](double a, double b) { return Better(a, b, d); });
    return Better(values[keep - 1], mine->second, d);
  }

 private:
  PrunerOptions o_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const PrunerOptions& options) {
  if (options.kind == "none") return std::unique_ptr<Pruner>(new NoPruner());
  if (options.kind == "median") return std::unique_ptr<Pruner>(new MedianPruner(options));
  if (options.kind == "asha") {
    if (options.max_resource <= 0 || options.min_resource <= 0 || options.reduction_factor <= 1) {
      return absl::InvalidArgumentError("asha needs min_resource >= 1, max_resource >= 1, reduction_factor > 1");
    }
    return std::unique_ptr<Pruner>(new AshaPruner(options));
  }
  return absl::UnimplementedError(absl::StrCat("pruner '", options.kind, "' is not built in (none, median, asha)"));
}

}  // namespace hepml::jobs
