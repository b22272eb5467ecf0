// Grid search: trial n takes point n of the cartesian product of every
// parameter's grid values, in lexicographic order (the first parameter varies
// slowest, each parameter's values in increasing order or in choice order).
// A conditional parameter expands the grid only under the parent values that
// activate it, so the grid is a tree and its points are its leaves. Points are
// located by counting leaves, without listing the grid.
#include <limits>

#include "absl/strings/str_cat.h"
#include "jobs/sampler_impl.h"

namespace hepml::jobs::sampling {
namespace {

constexpr uint64_t kSaturated = uint64_t{1} << 62;

uint64_t SatAdd(uint64_t a, uint64_t b) { return a + b >= kSaturated ? kSaturated : a + b; }
uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : a * b;
}

// The grid values of one parameter: every choice, every step, or
// `grid_points` points spread evenly over the (log) range, ends included.
std::vector<ParamValue> GridValues(const ParamSpec& spec, int64_t grid_points) {
  std::vector<ParamValue> values;
  if (spec.kind == ParamKind::kCategorical) {
    for (const std::string& c : spec.choices) values.push_back(c);
    return values;
  }
  if (IsStepped(spec)) {
    const int64_t count = StepCount(spec);
    for (int64_t k = 0; k < count; ++k) {
      const double v = SteppedValue(spec, k);
      if (spec.kind == ParamKind::kInt) {
        values.push_back(static_cast<int64_t>(v));
      } else {
        values.push_back(v);
      }
    }
    return values;
  }
  const double low = ToInternal(spec, spec.low);
  const double high = ToInternal(spec, spec.high);
  if (grid_points == 1) {
    values.push_back(FromInternal(spec, (low + high) / 2));
    return values;
  }
  for (int64_t i = 0; i < grid_points; ++i) {
    if (i == 0) {
      values.push_back(spec.low);
    } else if (i == grid_points - 1) {
      values.push_back(spec.high);
    } else {
      values.push_back(FromInternal(spec, low + (high - low) * static_cast<double>(i) / (grid_points - 1)));
    }
  }
  return values;
}

class Grid {
 public:
  Grid(const SearchSpace& space, int64_t grid_points) : space_(space) {
    for (const ParamSpec& spec : space.params) {
      values_.push_back(GridValues(spec, grid_points));
      bool has_children = false;
      for (const ParamSpec& other : space.params) has_children |= other.parent == spec.name;
      has_children_.push_back(has_children);
    }
  }

  // The number of grid points below parameter i given the values assigned
  // so far (saturating at kSaturated).
  uint64_t Count(size_t i, const ParamSet& assigned) const {
    for (; i < space_.params.size(); ++i) {
      const ParamSpec& spec = space_.params[i];
      if (!IsActive(spec, assigned)) continue;
      if (!has_children_[i]) return SatMul(values_[i].size(), Count(i + 1, assigned));
      uint64_t total = 0;
      ParamSet with = assigned;
      for (const ParamValue& v : values_[i]) {
        with[spec.name] = v;
        total = SatAdd(total, Count(i + 1, with));
      }
      return total;
    }
    return 1;
  }

  // Grid point n, n < Count(0, {}).
  ParamSet Point(uint64_t n) const {
    ParamSet assigned;
    for (size_t i = 0; i < space_.params.size(); ++i) {
      const ParamSpec& spec = space_.params[i];
      if (!IsActive(spec, assigned)) continue;
      if (!has_children_[i]) {
        const uint64_t rest = Count(i + 1, assigned);
        assigned[spec.name] = values_[i][n / rest];
        n %= rest;
        continue;
      }
      for (const ParamValue& v : values_[i]) {
        ParamSet with = assigned;
        with[spec.name] = v;
        const uint64_t below = Count(i + 1, with);
        if (n < below) {
          assigned = std::move(with);
          break;
        }
        n -= below;
      }
    }
    return assigned;
  }

 private:
  const SearchSpace& space_;
  std::vector<std::vector<ParamValue>> values_;
  std::vector<bool> has_children_;
};

class GridSampler : public Sampler {
 public:
  explicit GridSampler(int64_t grid_points) : grid_points_(grid_points) {}

  absl::StatusOr<ParamSet> Sample(const SearchSpace& space, Direction, const std::vector<Trial>&,
                                  int64_t trial_number) override {
    if (absl::Status status = space.Validate(); !status.ok()) return status;
    if (trial_number < 0) {
      return absl::InvalidArgumentError(absl::StrCat("grid sampler: negative trial number ", trial_number));
    }
    Grid grid(space, grid_points_);
    const uint64_t size = grid.Count(0, {});
    if (size >= kSaturated) {
      return absl::InvalidArgumentError(
          "grid sampler: the grid has more than 2^62 points; give float parameters a step or fewer grid points");
    }
    if (static_cast<uint64_t>(trial_number) >= size) {
      return absl::OutOfRangeError(absl::StrCat("grid sampler: all ", size, " grid points are taken (trial ",
                                                trial_number, " would be point ", trial_number + 1, ")"));
    }
    return grid.Point(static_cast<uint64_t>(trial_number));
  }

 private:
  int64_t grid_points_;
};

}  // namespace

std::unique_ptr<Sampler> NewGridSampler(const SamplerOptions& options) {
  return std::make_unique<GridSampler>(options.grid_points);
}

}  // namespace hepml::jobs::sampling
