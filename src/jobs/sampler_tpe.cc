// The Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for
// Hyper-Parameter Optimization", NeurIPS 2011), as Optuna's default
// (univariate) TPESampler does it:
//   - the first n_startup_trials proposals are random;
//   - then the finished trials are ranked (complete ones by objective, then
//     pruned ones: further step first, then by their value there), and for
//     each parameter the trials where it is active are split into the good
//     ones, the first min(ceil(gamma * n), 25), and the bad rest;
//   - each group is fitted by a Parzen estimator l(x) (good) / g(x) (bad):
//     for numeric parameters a mixture of Gaussians truncated to the range,
//     one per observation on the internal axis (log for log parameters,
//     widened by half a step for stepped ones) plus a wide prior component,
//     bandwidths from the distances to the neighbouring observations clipped
//     to [range / min(100, n + 2), range], weights ramping down for old
//     observations once there are more than 25; for categoricals smoothed
//     counts (each observation's kernel puts 1 + prior/(n+1) on its choice
//     and prior/(n+1) on the others, plus a uniform prior kernel);
//   - n_ei_candidates values are drawn from l(x) and the one maximising
//     l(x) / g(x) (the expected improvement's ordering) is proposed.
// Parameters are modelled independently; a conditional parameter is fitted
// on the trials where it was active. Every draw comes from the stream
// (seed, trial number, "tpe/NAME"): the proposal is a pure function of the
// seed, the history and the trial number.
#include <algorithm>
#include <cmath>
#include <limits>

#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

constexpr double kPriorWeight = 1.0;
constexpr int64_t kMaxGood = 25;
constexpr double kLogFloor = -745;  // log of the smallest double

double LogSumExp(const std::vector<double>& terms) {
  double max = -std::numeric_limits<double>::infinity();
  for (double t : terms) max = std::max(max, t);
  if (!std::isfinite(max)) return kLogFloor;
  double sum = 0;
  for (double t : terms) sum += std::exp(t - max);
  return max + std::log(sum);
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / M_SQRT2); }

// P(a <= Z <= b) for a standard normal Z, accurate in both tails.
double NormalMass(double a, double b) {
  if (a > 0) return 0.5 * (std::erfc(a / M_SQRT2) - std::erfc(b / M_SQRT2));
  if (b < 0) return 0.5 * (std::erfc(-b / M_SQRT2) - std::erfc(-a / M_SQRT2));
  return 1 - NormalCdf(a) - (1 - NormalCdf(b));
}

double SafeLog(double x) { return x > 0 ? std::max(std::log(x), kLogFloor) : kLogFloor; }

// Optuna's default_weights: equal weights up to 25 observations, then the
// oldest ones ramp from 1/n up to 1 and the newest 25 weigh 1.
std::vector<double> ObservationWeights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n < static_cast<size_t>(kMaxGood)) return w;
  const size_t ramp = n - kMaxGood;
  for (size_t i = 0; i < ramp; ++i) {
    w[i] = ramp == 1 ? 1.0 / n : 1.0 / n + (1 - 1.0 / n) * static_cast<double>(i) / (ramp - 1);
  }
  return w;
}

// A mixture of truncated Gaussians on a parameter's internal axis.
class NumericParzen {
 public:
  // `xs`: observations on the internal axis, oldest first.
  NumericParzen(const ParamSpec& spec, const std::vector<double>& xs) : spec_(spec) {
    std::tie(low_, high_) = InternalBounds(spec);
    const double range = high_ - low_;
    const size_t n = xs.size();
    std::vector<double> sigma(n);
    if (n > 0) {
      std::vector<size_t> order(n);
      for (size_t i = 0; i < n; ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return xs[a] < xs[b]; });
      std::vector<double> s(n + 2);
      s[0] = low_;
      s[n + 1] = high_;
      for (size_t i = 0; i < n; ++i) s[i + 1] = xs[order[i]];
      std::vector<double> sorted_sigma(n);
      for (size_t i = 1; i <= n; ++i) sorted_sigma[i - 1] = std::max(s[i] - s[i - 1], s[i + 1] - s[i]);
      if (n >= 2) {  // the range ends are no neighbours of the outermost points
        sorted_sigma[0] = s[2] - s[1];
        sorted_sigma[n - 1] = s[n] - s[n - 1];
      }
      const double min_sigma = range / std::min(100.0, static_cast<double>(n) + 2);
      for (size_t i = 0; i < n; ++i) sigma[order[i]] = std::clamp(sorted_sigma[i], min_sigma, range);
    }
    std::vector<double> w = ObservationWeights(n);
    mu_ = xs;
    sigma_ = sigma;
    weight_ = w;
    mu_.push_back((low_ + high_) / 2);
    sigma_.push_back(range);
    weight_.push_back(kPriorWeight);
    double total = 0;
    for (double x : weight_) total += x;
    for (double& x : weight_) x /= total;
    log_z_.resize(mu_.size());
    for (size_t k = 0; k < mu_.size(); ++k) {
      log_z_[k] = SafeLog(NormalMass((low_ - mu_[k]) / sigma_[k], (high_ - mu_[k]) / sigma_[k]));
    }
  }

  // A value drawn from the mixture: a component by weight, then its Gaussian
  // restricted to the range (by rejection, which accepts at least a third of
  // the draws since every mean lies in the range and sigma <= range).
  ParamValue Draw(Rng& rng) const {
    const size_t k = PickComponent(rng);
    double x = mu_[k];
    for (int tries = 0; tries < 100; ++tries) {
      const double candidate = mu_[k] + sigma_[k] * rng.Normal();
      if (candidate >= low_ && candidate <= high_) {
        x = candidate;
        break;
      }
    }
    return FromInternal(spec_, x);
  }

  // log density (continuous) or log probability (stepped) of a value.
  double LogPdf(const ParamValue& value) const {
    const double v = *NumericValue(value);
    std::vector<double> terms(mu_.size());
    if (IsStepped(spec_)) {
      const double half = StepOf(spec_) / 2;
      const double lo = ToInternal(spec_, v - half);
      const double hi = ToInternal(spec_, v + half);
      for (size_t k = 0; k < mu_.size(); ++k) {
        terms[k] = std::log(weight_[k]) +
                   SafeLog(NormalMass((lo - mu_[k]) / sigma_[k], (hi - mu_[k]) / sigma_[k])) - log_z_[k];
      }
    } else {
      const double x = ToInternal(spec_, v);
      for (size_t k = 0; k < mu_.size(); ++k) {
        const double z = (x - mu_[k]) / sigma_[k];
        terms[k] = std::log(weight_[k]) - 0.5 * z * z - std::log(sigma_[k] * std::sqrt(2 * M_PI)) - log_z_[k];
      }
    }
    return LogSumExp(terms);
  }

 private:
  size_t PickComponent(Rng& rng) const {
    double u = rng.Uniform01();
    for (size_t k = 0; k + 1 < weight_.size(); ++k) {
      if (u < weight_[k]) return k;
      u -= weight_[k];
    }
    return weight_.size() - 1;
  }

  const ParamSpec& spec_;
  double low_ = 0, high_ = 0;
  std::vector<double> mu_, sigma_, weight_, log_z_;
};

// Smoothed counts over a categorical's choices.
class CategoricalParzen {
 public:
  // `indices`: observed choice indices, oldest first.
  CategoricalParzen(const ParamSpec& spec, const std::vector<int64_t>& indices) : spec_(spec) {
    const size_t n_choices = spec.choices.size();
    const size_t n_kernels = indices.size() + 1;
    std::vector<double> w = ObservationWeights(indices.size());
    w.push_back(kPriorWeight);
    double total = 0;
    for (double x : w) total += x;
    prob_.assign(n_choices, 0);
    // Kernel k: prior/n_kernels on every choice, +1 on its observation;
    // the prior kernel is uniform.
    for (size_t k = 0; k < n_kernels; ++k) {
      std::vector<double> row(n_choices, kPriorWeight / n_kernels);
      if (k < indices.size()) row[indices[k]] += 1;
      double row_sum = 0;
      for (double x : row) row_sum += x;
      for (size_t c = 0; c < n_choices; ++c) prob_[c] += (w[k] / total) * row[c] / row_sum;
    }
  }

  ParamValue Draw(Rng& rng) const {
    double u = rng.Uniform01();
    for (size_t c = 0; c + 1 < prob_.size(); ++c) {
      if (u < prob_[c]) return spec_.choices[c];
      u -= prob_[c];
    }
    return spec_.choices.back();
  }

  double LogPdf(const ParamValue& value) const { return SafeLog(prob_[ChoiceIndex(spec_, value)]); }

 private:
  const ParamSpec& spec_;
  std::vector<double> prob_;
};

template <typename Parzen>
ParamValue BestCandidate(const Parzen& good, const Parzen& bad, int64_t n_candidates, Rng& rng) {
  ParamValue best;
  double best_score = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n_candidates; ++i) {
    ParamValue candidate = good.Draw(rng);
    const double score = good.LogPdf(candidate) - bad.LogPdf(candidate);
    if (i == 0 || score > best_score) {
      best = std::move(candidate);
      best_score = score;
    }
  }
  return best;
}

// A finished trial's place in the ranking: complete trials first, by loss;
// then pruned ones, the furthest step first, by loss at that step.
struct Ranked {
  const Trial* trial;
  bool pruned;
  int64_t step;
  double loss;
};

std::vector<Ranked> RankFinished(const std::vector<Trial>& history, Direction direction) {
  std::vector<Ranked> ranked;
  for (const Trial& t : history) {
    if (t.state == TrialState::kComplete && t.value && std::isfinite(*t.value)) {
      ranked.push_back({&t, false, 0, Loss(*t.value, direction)});
    } else if (t.state == TrialState::kPruned && !t.intermediate.empty()) {
      const auto& [step, value] = *t.intermediate.rbegin();
      const double loss = std::isfinite(value) ? Loss(value, direction) : std::numeric_limits<double>::infinity();
      ranked.push_back({&t, true, step, loss});
    }
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.pruned != b.pruned) return !a.pruned;
    if (a.pruned && a.step != b.step) return a.step > b.step;
    if (a.loss != b.loss) return a.loss < b.loss;
    return a.trial->number < b.trial->number;
  });
  return ranked;
}

class TpeSampler : public Sampler {
 public:
  explicit TpeSampler(const SamplerOptions& options) : options_(options) {}

  absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction direction, const std::vector<Trial>& history,
                                  int64_t trial_number) override {
    if (absl::Status status = space.Validate(); !status.ok()) return status;
    const std::vector<Ranked> ranked = RankFinished(history, direction);
    ParamSet params;
    if (static_cast<int64_t>(ranked.size()) < options_.n_startup_trials) {
      FillRandomly(space, options_.seed, trial_number, params);
      return params;
    }
    for (const ParamSpec& spec : space.params) {
      if (!IsActive(spec, params)) continue;
      params[spec.name] = SampleParam(spec, ranked, trial_number);
    }
    return params;
  }

 private:
  ParamValue SampleParam(const ParamSpec& spec, const std::vector<Ranked>& ranked, int64_t trial_number) const {
    // The ranked trials where this parameter was active (with a value the
    // space still allows), split into good and bad, each oldest first.
    std::vector<const Trial*> observed;
    for (const Ranked& r : ranked) {
      auto it = r.trial->params.find(spec.name);
      if (it != r.trial->params.end() && InDomain(spec, it->second)) observed.push_back(r.trial);
    }
    if (observed.empty()) return SampleRandomParam(spec, options_.seed, trial_number);
    const size_t n_good = static_cast<size_t>(std::min<double>(
        kMaxGood, std::ceil(options_.gamma * static_cast<double>(observed.size()))));
    std::vector<const Trial*> good(observed.begin(), observed.begin() + n_good);
    std::vector<const Trial*> bad(observed.begin() + n_good, observed.end());
    auto by_number = [](const Trial* a, const Trial* b) { return a->number < b->number; };
    std::sort(good.begin(), good.end(), by_number);
    std::sort(bad.begin(), bad.end(), by_number);

    Rng rng = TrialRng(options_.seed, trial_number, std::string("tpe/") + spec.name);
    if (spec.kind == ParamKind::kCategorical) {
      auto indices = [&](const std::vector<const Trial*>& trials) {
        std::vector<int64_t> out;
        for (const Trial* t : trials) out.push_back(ChoiceIndex(spec, t->params.at(spec.name)));
        return out;
      };
      return BestCandidate(CategoricalParzen(spec, indices(good)), CategoricalParzen(spec, indices(bad)),
                           options_.n_ei_candidates, rng);
    }
    auto points = [&](const std::vector<const Trial*>& trials) {
      std::vector<double> out;
      for (const Trial* t : trials) out.push_back(ToInternal(spec, *NumericValue(t->params.at(spec.name))));
      return out;
    };
    return BestCandidate(NumericParzen(spec, points(good)), NumericParzen(spec, points(bad)),
                         options_.n_ei_candidates, rng);
  }

  SamplerOptions options_;
};

}  // namespace

std::unique_ptr<Sampler> NewTpeSampler(const SamplerOptions& options) {
  return std::make_unique<TpeSampler>(options);
}

}  // namespace hepml::jobs::sampling
