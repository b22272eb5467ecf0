// A minimal sampler set (random only) for building the study runner before
// the real samplers land: src/jobs/CMakeLists.txt leaves this file out as
// soon as a sampler*.cc exists. Delete it then.
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "hepml/jobs.h"

namespace hepml::jobs {
namespace {

class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}
  absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction, const std::vector<Trial>&,
                                  int64_t trial_number) override {
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(trial_number) + 1);
    std::uniform_real_distribution<double> u(0, 1);
    ParamSet out;
    for (const auto& p : space.params) {
      if (!IsActive(p, out)) continue;
      if (p.kind == ParamKind::kCategorical) {
        out[p.name] = p.choices[static_cast<size_t>(u(rng) * p.choices.size()) % p.choices.size()];
        continue;
      }
      double x = p.log ? std::exp(std::log(p.low) + u(rng) * (std::log(p.high) - std::log(p.low)))
                       : p.low + u(rng) * (p.high - p.low);
      double step = p.step > 0 ? p.step : (p.kind == ParamKind::kInt ? 1 : 0);
      if (step > 0) x = std::min(p.high, p.low + std::round((x - p.low) / step) * step);
      if (p.kind == ParamKind::kInt) out[p.name] = static_cast<int64_t>(std::llround(x));
      else out[p.name] = x;
    }
    return out;
  }

 private:
  uint64_t seed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(const SamplerOptions& options) {
  if (options.kind != "random") {
    return absl::UnimplementedError(absl::StrCat("sampler '", options.kind, "' is not built in (only random)"));
  }
  return std::unique_ptr<Sampler>(new RandomSampler(options.seed));
}

}  // namespace hepml::jobs
