// MakePruner: checks the options that matter for the chosen kind.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "jobs/sampler_impl.h"

namespace hepml::jobs {
namespace {

class NoPruner : public Pruner {
 public:
  bool ShouldPrune(const Trial&, int64_t, const std::vector<Trial>&, Direction) const override { return false; }
};

absl::Status CheckResources(const PrunerOptions& options) {
  using absl::StrCat;
  const std::string& kind = options.kind;
  if (options.max_resource <= 0) {
    return absl::InvalidArgumentError(StrCat(kind, " pruner: max_resource is required (the steps, e.g. epochs, a "
                                             "trial runs when it is never stopped; got ",
                                             options.max_resource, ")"));
  }
  if (options.min_resource < 1) {
    return absl::InvalidArgumentError(
        StrCat(kind, " pruner: min_resource must be >= 1 (got ", options.min_resource, ")"));
  }
  if (options.min_resource >= options.max_resource) {
    return absl::InvalidArgumentError(StrCat(kind, " pruner: min_resource (", options.min_resource,
                                             ") must be less than max_resource (", options.max_resource, ")"));
  }
  if (!(options.reduction_factor > 1) || !std::isfinite(options.reduction_factor)) {
    return absl::InvalidArgumentError(StrCat(kind, " pruner: reduction_factor must be a number > 1 (got ",
                                             FormatParam(options.reduction_factor), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pruner>> MakePruner(const PrunerOptions& options) {
  using absl::StrCat;
  if (options.kind == "none") return std::unique_ptr<Pruner>(std::make_unique<NoPruner>());
  if (options.kind == "median") {
    if (options.n_startup_trials < 0) {
      return absl::InvalidArgumentError(
          StrCat("median pruner: n_startup_trials must be >= 0 (got ", options.n_startup_trials, ")"));
    }
    if (options.n_warmup_steps < 0) {
      return absl::InvalidArgumentError(
          StrCat("median pruner: n_warmup_steps must be >= 0 (got ", options.n_warmup_steps, ")"));
    }
    return sampling::NewMedianPruner(options);
  }
  if (options.kind == "asha" || options.kind == "hyperband") {
    if (absl::Status status = CheckResources(options); !status.ok()) return status;
    return options.kind == "asha" ? sampling::NewAshaPruner(options) : sampling::NewHyperbandPruner(options);
  }
  return absl::InvalidArgumentError(
      StrCat("unknown pruner '", options.kind, "' (expected none, median, asha or hyperband)"));
}

}  // namespace hepml::jobs
