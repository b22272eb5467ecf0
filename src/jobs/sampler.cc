// MakeSampler: checks the options that matter for the chosen kind.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "jobs/sampler_impl.h"

namespace hepml::jobs {

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const SamplerOptions& options) {
  using absl::InvalidArgumentError;
  using absl::StrCat;
  if (options.kind == "random") return sampling::NewRandomSampler(options);
  if (options.kind == "grid") {
    if (options.grid_points < 1) {
      return InvalidArgumentError(StrCat("grid sampler: grid_points must be >= 1 (got ", options.grid_points, ")"));
    }
    return sampling::NewGridSampler(options);
  }
  if (options.kind == "tpe") {
    if (options.n_startup_trials < 0) {
      return InvalidArgumentError(
          StrCat("tpe sampler: n_startup_trials must be >= 0 (got ", options.n_startup_trials, ")"));
    }
    if (options.n_ei_candidates < 1) {
      return InvalidArgumentError(
          StrCat("tpe sampler: n_ei_candidates must be >= 1 (got ", options.n_ei_candidates, ")"));
    }
    if (!(options.gamma > 0 && options.gamma < 1)) {
      return InvalidArgumentError(StrCat("tpe sampler: gamma (the good fraction of trials) must be in (0, 1) (got ",
                                         FormatParam(options.gamma), ")"));
    }
    return sampling::NewTpeSampler(options);
  }
  if (options.kind == "cmaes") {
    if (!(options.sigma0 > 0 && options.sigma0 <= 1)) {
      return InvalidArgumentError(StrCat("cmaes sampler: sigma0 (the initial step as a fraction of each range) must be "
                                         "in (0, 1] (got ",
                                         FormatParam(options.sigma0), ")"));
    }
    if (options.population < 0 || options.population == 1) {
      return InvalidArgumentError(StrCat("cmaes sampler: population must be >= 2, or 0 for 4 + 3 ln(d) (got ",
                                         options.population, ")"));
    }
    return sampling::NewCmaEsSampler(options);
  }
  return InvalidArgumentError(
      StrCat("unknown sampler '", options.kind, "' (expected random, grid, tpe or cmaes)"));
}

}  // namespace hepml::jobs
