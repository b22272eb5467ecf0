// Helpers shared by the samplers and pruners: a seeded random stream per
// (seed, trial, parameter), the mapping of a parameter between its values and
// a real "internal" axis (log for log parameters, widened by half a step for
// stepped ones), uniform draws, and the ordering of trials by objective.
//
// Determinism: every draw comes from an Rng built from (seed, trial number,
// stream name), and the distributions here are our own (not <random>'s, whose
// algorithms differ between standard libraries), so the same binary, seed,
// history and trial number give the same proposal on any machine.
#ifndef HEPML_SRC_JOBS_SAMPLING_UTIL_H_
#define HEPML_SRC_JOBS_SAMPLING_UTIL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hepml/jobs.h"

namespace hepml::jobs::sampling {

// SplitMix64 step: advances `state` and returns the next output.
uint64_t SplitMix64(uint64_t& state);
// 64-bit FNV-1a of `text`.
uint64_t HashString(std::string_view text);
// A well-mixed 64-bit hash of (a, b).
uint64_t HashCombine(uint64_t a, uint64_t b);

// xoshiro256** seeded through SplitMix64. Not thread-safe; cheap to create.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  double Uniform01();                   // [0, 1), 53 random bits
  double Uniform(double low, double high);  // [low, high)
  uint64_t Below(uint64_t n);           // [0, n), unbiased; REQUIRES: n > 0
  double Normal();                      // standard normal (Box-Muller)

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

// The stream of draws for one purpose (e.g. a parameter's name) of one trial.
Rng TrialRng(uint64_t seed, int64_t trial_number, std::string_view stream);

// ---- parameters on their internal axis

// True for kInt and for kFloat with a step: values low + k * step only.
bool IsStepped(const ParamSpec& spec);
// The step of a stepped parameter (kInt without a step: 1).
double StepOf(const ParamSpec& spec);
// The number of values of a stepped parameter (the last one <= high).
int64_t StepCount(const ParamSpec& spec);
// The largest value a parameter takes (high, or the last step <= high).
double EffectiveHigh(const ParamSpec& spec);
// Bounds of the internal axis: (log) low and high, widened by half a step on
// either side for stepped parameters so every value owns an equal interval.
std::pair<double, double> InternalBounds(const ParamSpec& spec);
// value (as a double) -> internal axis.
double ToInternal(const ParamSpec& spec, double value);
// internal axis -> the nearest value the parameter takes (on its step,
// inside its bounds; int64_t for kInt).
ParamValue FromInternal(const ParamSpec& spec, double x);
// The numeric value of a kFloat/kInt parameter's value (double or int64_t).
std::optional<double> NumericValue(const ParamValue& value);
// True when `value` is one `spec` could have produced (type, bounds, choice).
bool InDomain(const ParamSpec& spec, const ParamValue& value);
// Index of a categorical value among the choices, or -1.
int64_t ChoiceIndex(const ParamSpec& spec, const ParamValue& value);
// A draw uniform over the parameter's values (log-uniform when log).
ParamValue SampleUniform(const ParamSpec& spec, Rng& rng);
// The stepped value low + k * step with floating-point noise removed
// (0.1 + 2 * 0.1 -> 0.3), so its formatted text is the short one when low
// and step are short.
double SteppedValue(const ParamSpec& spec, int64_t k);

// ---- trials and objectives

// Lower is better: the value for kMinimize, its negation for kMaximize.
double Loss(double value, Direction direction);
// The kComplete trials with a finite value, in history order.
std::vector<const Trial*> CompletedTrials(const std::vector<Trial>& history);

}  // namespace hepml::jobs::sampling

#endif  // HEPML_SRC_JOBS_SAMPLING_UTIL_H_
