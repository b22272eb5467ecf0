// Random search: every active parameter drawn independently and uniformly
// (log-uniformly for log parameters, uniformly over the values of stepped
// ones). Learns nothing from the history.
#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {

ParamValue SampleRandomParam(const ParamSpec& spec, uint64_t seed, int64_t trial_number) {
  Rng rng = TrialRng(seed, trial_number, std::string("random/") + spec.name);
  return SampleUniform(spec, rng);
}

void FillRandomly(const SearchSpace& space, uint64_t seed, int64_t trial_number, ParamSet& params) {
  for (const ParamSpec& spec : space.params) {
    if (params.count(spec.name) || !IsActive(spec, params)) continue;
    params[spec.name] = SampleRandomParam(spec, seed, trial_number);
  }
}

namespace {

class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}

  absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction, const std::vector<Trial>&,
                                  int64_t trial_number) override {
    if (absl::Status status = space.Validate(); !status.ok()) return status;
    ParamSet params;
    FillRandomly(space, seed_, trial_number, params);
    return params;
  }

 private:
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Sampler> NewRandomSampler(const SamplerOptions& options) {
  return std::make_unique<RandomSampler>(options.seed);
}

}  // namespace hepml::jobs::sampling
