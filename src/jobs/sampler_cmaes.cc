// CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772),
// with the tutorial's default parameters and positive recombination weights.
//
// The search runs in the unit cube [0, 1]^d of the space's unconditional
// float and int parameters, each mapped linearly from its internal axis (log
// for log parameters; widened by half a step for stepped ones, so each int
// value owns an equal interval; ints and steps rounded when a point is turned
// into values). Categorical and conditional parameters are outside the
// model: they are drawn at random (as the random sampler draws them).
//
// Trials form generations of `population` proposals by number: trial n
// belongs to generation n / population. Nothing is kept between calls: the
// state (mean, step size, covariance, evolution paths) is rebuilt by replaying
// the update of every earlier generation from its complete trials (failed,
// pruned or still running ones are left out of the update; a generation with
// no complete trial leaves the state as it is), and trial n's point is
// m + sigma * B D z with z drawn from the stream (seed, n, "cmaes"). A point
// outside the cube is redrawn (up to 100 times), then clipped.
#include <algorithm>
#include <cmath>

#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

using Vector = std::vector<double>;
using Matrix = std::vector<Vector>;

// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations:
// a = v diag(values) v^T, eigenvectors in the columns of v.
void SymmetricEigen(Matrix a, Vector& values, Matrix& v) {
  const size_t n = a.size();
  v.assign(n, Vector(n, 0));
  for (size_t i = 0; i < n; ++i) v[i][i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        if (std::abs(a[p][q]) < 1e-300) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1);
        const double s = t * c;
        for (size_t k = 0; k < n; ++k) {
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  values.resize(n);
  for (size_t i = 0; i < n; ++i) values[i] = a[i][i];
}

class CmaState {
 public:
  CmaState(size_t d, double sigma0) : n_(d), sigma_(sigma0) {
    mean_.assign(d, 0.5);
    ps_.assign(d, 0);
    pc_.assign(d, 0);
    c_.assign(d, Vector(d, 0));
    for (size_t i = 0; i < d; ++i) c_[i][i] = 1;
    Decompose();
  }

  // One generation's update from its points (in the cube), best first.
  void Update(const std::vector<Vector>& sorted_points) {
    const size_t lambda = sorted_points.size();
    const size_t mu = std::max<size_t>(1, lambda / 2);
    const double n = static_cast<double>(n_);
    Vector w(mu);
    double wsum = 0;
    for (size_t i = 0; i < mu; ++i) {
      w[i] = std::log((lambda + 1) / 2.0) - std::log(static_cast<double>(i + 1));
      if (mu == 1) w[i] = 1;
      wsum += w[i];
    }
    double w2 = 0;
    for (double& x : w) {
      x /= wsum;
      w2 += x * x;
    }
    const double mueff = 1 / w2;
    const double cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n);
    const double cs = (mueff + 2) / (n + mueff + 5);
    const double c1 = 2 / ((n + 1.3) * (n + 1.3) + mueff);
    const double cmu = std::min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) * (n + 2) + mueff));
    const double damps = 1 + 2 * std::max(0.0, std::sqrt((mueff - 1) / (n + 1)) - 1) + cs;
    const double chi_n = std::sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));

    const Vector old_mean = mean_;
    for (size_t j = 0; j < n_; ++j) {
      mean_[j] = 0;
      for (size_t i = 0; i < mu; ++i) mean_[j] += w[i] * sorted_points[i][j];
    }
    Vector step(n_);
    for (size_t j = 0; j < n_; ++j) step[j] = (mean_[j] - old_mean[j]) / sigma_;
    // C^{-1/2} step = B D^{-1} B^T step
    Vector bt(n_, 0), inv_sqrt_step(n_, 0);
    for (size_t i = 0; i < n_; ++i)
      for (size_t j = 0; j < n_; ++j) bt[i] += b_[j][i] * step[j];
    for (size_t i = 0; i < n_; ++i) bt[i] /= d_[i];
    for (size_t i = 0; i < n_; ++i)
      for (size_t j = 0; j < n_; ++j) inv_sqrt_step[i] += b_[i][j] * bt[j];
    const double ks = std::sqrt(cs * (2 - cs) * mueff);
    double ps_norm2 = 0;
    for (size_t i = 0; i < n_; ++i) {
      ps_[i] = (1 - cs) * ps_[i] + ks * inv_sqrt_step[i];
      ps_norm2 += ps_[i] * ps_[i];
    }
    ++generations_;
    const double ps_norm = std::sqrt(ps_norm2);
    const bool hsig =
        ps_norm / std::sqrt(1 - std::pow(1 - cs, 2.0 * generations_)) / chi_n < 1.4 + 2 / (n + 1);
    const double kc = std::sqrt(cc * (2 - cc) * mueff);
    for (size_t i = 0; i < n_; ++i) pc_[i] = (1 - cc) * pc_[i] + (hsig ? kc * step[i] : 0);
    const double keep = 1 - c1 - cmu;
    const double hsig_fix = hsig ? 0 : cc * (2 - cc);
    for (size_t r = 0; r < n_; ++r) {
      for (size_t s = 0; s < n_; ++s) {
        double rank_mu = 0;
        for (size_t i = 0; i < mu; ++i) {
          rank_mu += w[i] * (sorted_points[i][r] - old_mean[r]) * (sorted_points[i][s] - old_mean[s]);
        }
        rank_mu /= sigma_ * sigma_;
        c_[r][s] = keep * c_[r][s] + c1 * (pc_[r] * pc_[s] + hsig_fix * c_[r][s]) + cmu * rank_mu;
      }
    }
    for (size_t r = 0; r < n_; ++r)
      for (size_t s = r + 1; s < n_; ++s) c_[r][s] = c_[s][r] = (c_[r][s] + c_[s][r]) / 2;
    sigma_ *= std::exp((cs / damps) * (ps_norm / chi_n - 1));
    sigma_ = std::clamp(sigma_, 1e-12, 4.0);
    Decompose();
  }

  // m + sigma * B D z
  Vector Point(const Vector& z) const {
    Vector x = mean_;
    for (size_t i = 0; i < n_; ++i)
      for (size_t j = 0; j < n_; ++j) x[i] += sigma_ * b_[i][j] * d_[j] * z[j];
    return x;
  }

  double sigma() const { return sigma_; }

 private:
  void Decompose() {
    Vector values;
    SymmetricEigen(c_, values, b_);
    d_.resize(n_);
    for (size_t i = 0; i < n_; ++i) d_[i] = std::sqrt(std::max(values[i], 1e-20));
  }

  size_t n_;
  double sigma_;
  int64_t generations_ = 0;
  Vector mean_, ps_, pc_, d_;
  Matrix c_, b_;
};

class CmaEsSampler : public Sampler {
 public:
  explicit CmaEsSampler(const SamplerOptions& options) : options_(options) {}

  absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction direction, const std::vector<Trial>& history,
                                  int64_t trial_number) override {
    if (absl::Status status = space.Validate(); !status.ok()) return status;
    std::vector<const ParamSpec*> dims;
    for (const ParamSpec& spec : space.params) {
      if (spec.parent.empty() && spec.kind != ParamKind::kCategorical) dims.push_back(&spec);
    }
    ParamSet params;
    if (!dims.empty()) {
      const size_t d = dims.size();
      const int64_t population =
          options_.population > 0 ? options_.population
                                  : 4 + static_cast<int64_t>(std::floor(3 * std::log(static_cast<double>(d))));
      const int64_t generation = trial_number / population;
      CmaState state(d, options_.sigma0);
      // The complete trials of each earlier generation, as cube points.
      struct Member {
        double loss;
        int64_t number;
        Vector point;
      };
      std::vector<std::vector<Member>> by_generation(generation);
      for (const Trial* t : CompletedTrials(history)) {
        if (t->number < 0 || t->number / population >= generation) continue;
        Vector u(d);
        bool ok = true;
        for (size_t i = 0; i < d && ok; ++i) {
          auto it = t->params.find(dims[i]->name);
          ok = it != t->params.end() && InDomain(*dims[i], it->second);
          if (!ok) break;
          const auto [lo, hi] = InternalBounds(*dims[i]);
          u[i] = (ToInternal(*dims[i], *NumericValue(it->second)) - lo) / (hi - lo);
        }
        if (ok) by_generation[t->number / population].push_back({Loss(*t->value, direction), t->number, std::move(u)});
      }
      for (auto& members : by_generation) {
        if (members.empty()) continue;
        // Best first; ties by number, so the order of `history` does not matter.
        std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
          return a.loss != b.loss ? a.loss < b.loss : a.number < b.number;
        });
        std::vector<Vector> points;
        for (Member& m : members) points.push_back(std::move(m.point));
        state.Update(points);
      }
      Rng rng = TrialRng(options_.seed, trial_number, "cmaes");
      Vector x;
      for (int tries = 0; tries < 100; ++tries) {
        Vector z(d);
        for (double& v : z) v = rng.Normal();
        x = state.Point(z);
        if (std::all_of(x.begin(), x.end(), [](double v) { return v >= 0 && v <= 1; })) break;
      }
      for (size_t i = 0; i < d; ++i) {
        const auto [lo, hi] = InternalBounds(*dims[i]);
        params[dims[i]->name] = FromInternal(*dims[i], lo + std::clamp(x[i], 0.0, 1.0) * (hi - lo));
      }
    }
    FillRandomly(space, options_.seed, trial_number, params);
    return params;
  }

 private:
  SamplerOptions options_;
};

}  // namespace

std::unique_ptr<Sampler> NewCmaEsSampler(const SamplerOptions& options) {
  return std::make_unique<CmaEsSampler>(options);
}

}  // namespace hepml::jobs::sampling
