#include "jobs/sampling_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hepml::jobs::sampling {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t HashString(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t HashCombine(uint64_t a, uint64_t b) {
  uint64_t state = a ^ (b * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
  SplitMix64(state);
  state ^= b;
  return SplitMix64(state);
}

Rng::Rng(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& s : s_) s = SplitMix64(state);
}

static inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::Uniform(double low, double high) {
  double x = low + (high - low) * Uniform01();
  return x < high ? x : low;  // rounding can land on high; keep [low, high)
}

uint64_t Rng::Below(uint64_t n) {
  // Lemire's method would do; plain rejection keeps it obvious.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

double Rng::Normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1;
  do {
    u1 = Uniform01();
  } while (u1 <= 0);
  const double u2 = Uniform01();
  const double r = std::sqrt(-2 * std::log(u1));
  const double a = 2 * M_PI * u2;
  spare_ = r * std::sin(a);
  has_spare_ = true;
  return r * std::cos(a);
}

Rng TrialRng(uint64_t seed, int64_t trial_number, std::string_view stream) {
  return Rng(HashCombine(HashCombine(seed, static_cast<uint64_t>(trial_number)), HashString(stream)));
}

bool IsStepped(const ParamSpec& spec) {
  return spec.kind == ParamKind::kInt || (spec.kind == ParamKind::kFloat && spec.step > 0);
}

double StepOf(const ParamSpec& spec) {
  if (spec.step > 0) return spec.step;
  return spec.kind == ParamKind::kInt ? 1 : 0;
}

int64_t StepCount(const ParamSpec& spec) {
  const double step = StepOf(spec);
  if (step <= 0) return 0;
  if (spec.kind == ParamKind::kInt) {
    return static_cast<int64_t>(std::floor((spec.high - spec.low) / step)) + 1;
  }
  // A little slack so (0.3 - 0.1) / 0.1 = 1.9999999999999998 counts 3 values.
  return static_cast<int64_t>(std::floor((spec.high - spec.low) / step + 1e-9)) + 1;
}

double EffectiveHigh(const ParamSpec& spec) {
  if (!IsStepped(spec)) return spec.high;
  return SteppedValue(spec, StepCount(spec) - 1);
}

double SteppedValue(const ParamSpec& spec, int64_t k) {
  const double step = StepOf(spec);
  if (spec.kind == ParamKind::kInt) {
    return static_cast<double>(static_cast<int64_t>(spec.low) + k * static_cast<int64_t>(step));
  }
  double v = spec.low + static_cast<double>(k) * step;
  // Round to 15 digits of the range's scale (but well below the step): the
  // noise of low + k * step goes, even next to zero (-3 + 4 * 0.775 is
  // 0.1 within 1e-15, not 0.0999999999999996).
  const double scale = std::max({std::abs(spec.low), std::abs(spec.high), step});
  const int digits = std::clamp(std::max(14 - static_cast<int>(std::floor(std::log10(scale))),
                                         6 - static_cast<int>(std::floor(std::log10(step)))),
                                0, 340);
  char text[720];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  v = std::strtod(text, nullptr);
  return std::clamp(v, spec.low, spec.high);
}

std::pair<double, double> InternalBounds(const ParamSpec& spec) {
  double low = spec.low;
  double high = EffectiveHigh(spec);
  if (IsStepped(spec)) {
    const double half = StepOf(spec) / 2;
    low -= half;
    high += half;
  }
  if (spec.log) return {std::log(low), std::log(high)};
  return {low, high};
}

double ToInternal(const ParamSpec& spec, double value) { return spec.log ? std::log(value) : value; }

ParamValue FromInternal(const ParamSpec& spec, double x) {
  const double v = spec.log ? std::exp(x) : x;
  if (IsStepped(spec)) {
    const int64_t count = StepCount(spec);
    double kf = std::round((v - spec.low) / StepOf(spec));
    if (!(kf >= 0)) kf = 0;  // also NaN
    const int64_t k = std::min<int64_t>(count - 1, static_cast<int64_t>(std::min(kf, 9e18)));
    if (spec.kind == ParamKind::kInt) return static_cast<int64_t>(SteppedValue(spec, k));
    return SteppedValue(spec, k);
  }
  if (std::isnan(v)) return spec.low;
  return std::clamp(v, spec.low, spec.high);
}

std::optional<double> NumericValue(const ParamValue& value) {
  if (const double* d = std::get_if<double>(&value)) return *d;
  if (const int64_t* i = std::get_if<int64_t>(&value)) return static_cast<double>(*i);
  return std::nullopt;
}

int64_t ChoiceIndex(const ParamSpec& spec, const ParamValue& value) {
  const std::string text = FormatParam(value);
  for (size_t i = 0; i < spec.choices.size(); ++i) {
    if (spec.choices[i] == text) return static_cast<int64_t>(i);
  }
  return -1;
}

bool InDomain(const ParamSpec& spec, const ParamValue& value) {
  if (spec.kind == ParamKind::kCategorical) return ChoiceIndex(spec, value) >= 0;
  const std::optional<double> v = NumericValue(value);
  if (!v || !std::isfinite(*v)) return false;
  const double tolerance = 1e-9 * std::max(1.0, std::abs(spec.high - spec.low));
  if (*v < spec.low - tolerance || *v > spec.high + tolerance) return false;
  if (spec.kind == ParamKind::kInt && *v != std::round(*v)) return false;
  if (IsStepped(spec)) {
    const double k = (*v - spec.low) / StepOf(spec);
    if (std::abs(k - std::round(k)) > 1e-6) return false;
  }
  return true;
}

ParamValue SampleUniform(const ParamSpec& spec, Rng& rng) {
  if (spec.kind == ParamKind::kCategorical) {
    return spec.choices[rng.Below(spec.choices.size())];
  }
  if (IsStepped(spec) && !spec.log) {
    const int64_t k = static_cast<int64_t>(rng.Below(static_cast<uint64_t>(StepCount(spec))));
    if (spec.kind == ParamKind::kInt) return static_cast<int64_t>(SteppedValue(spec, k));
    return SteppedValue(spec, k);
  }
  const auto [low, high] = InternalBounds(spec);
  return FromInternal(spec, rng.Uniform(low, high));
}

double Loss(double value, Direction direction) {
  return direction == Direction::kMinimize ? value : -value;
}

std::vector<const Trial*> CompletedTrials(const std::vector<Trial>& history) {
  std::vector<const Trial*> out;
  for (const Trial& t : history) {
    if (t.state == TrialState::kComplete && t.value && std::isfinite(*t.value)) out.push_back(&t);
  }
  return out;
}

}  // namespace hepml::jobs::sampling
