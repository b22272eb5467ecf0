// The sampler and pruner implementations behind MakeSampler / MakePruner.
// Each factory expects options already checked by MakeSampler / MakePruner.
#ifndef HEPML_SRC_JOBS_SAMPLER_IMPL_H_
#define HEPML_SRC_JOBS_SAMPLER_IMPL_H_

#include <memory>

#include "hepml/jobs.h"
#include "jobs/sampling_util.h"

namespace hepml::jobs::sampling {

std::unique_ptr<Sampler> NewRandomSampler(const SamplerOptions& options);
std::unique_ptr<Sampler> NewGridSampler(const SamplerOptions& options);
std::unique_ptr<Sampler> NewTpeSampler(const SamplerOptions& options);
std::unique_ptr<Sampler> NewCmaEsSampler(const SamplerOptions& options);

// One parameter drawn uniformly from the stream (seed, trial, "random/NAME"),
// so a parameter's draw does not depend on which others the space has.
ParamValue SampleRandomParam(const ParamSpec& spec, uint64_t seed, int64_t trial_number);
// Every parameter of `space` not yet in `params` and active under it, drawn
// by SampleRandomParam, in the space's order.
void FillRandomly(const SearchSpace& space, uint64_t seed, int64_t trial_number, ParamSet& params);

// Successive halving's decision for `trial` at `step`: rungs at steps
// round(min_resource * eta^(k + min_early_stopping_rate)) below max_resource;
// at each rung the trial crossed with this report (its previous report was
// before the rung, this one at or after it), it goes on only when its value
// is among the best floor(n / eta) (at least the best one) of the n trials
// of `competitors` (the trial included) whose reports reached that rung,
// each with its value at the first step at or after the rung.
bool SuccessiveHalvingPrunes(const Trial& trial, int64_t step, const std::vector<const Trial*>& competitors,
                             Direction direction, int64_t min_resource, int64_t max_resource, double eta,
                             int64_t min_early_stopping_rate);

std::unique_ptr<Pruner> NewMedianPruner(const PrunerOptions& options);
std::unique_ptr<Pruner> NewAshaPruner(const PrunerOptions& options);
std::unique_ptr<Pruner> NewHyperbandPruner(const PrunerOptions& options);
// The Hyperband bracket (0 = the most aggressive) of a trial.
// REQUIRES: options checked by MakePruner.
int64_t HyperbandBracket(const PrunerOptions& options, int64_t trial_number);

}  // namespace hepml::jobs::sampling

#endif  // HEPML_SRC_JOBS_SAMPLER_IMPL_H_
