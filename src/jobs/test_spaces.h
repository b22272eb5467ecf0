// Builders of ParamSpecs for the jobs tests and the sampler benchmark.
#ifndef HEPML_SRC_JOBS_TEST_SPACES_H_
#define HEPML_SRC_JOBS_TEST_SPACES_H_

#include <string>
#include <utility>
#include <vector>

#include "hepml/jobs.h"

namespace hepml::jobs::testing {

inline ParamSpec Float(const std::string& name, double low, double high, bool log = false, double step = 0) {
  ParamSpec p;
  p.name = name;
  p.kind = ParamKind::kFloat;
  p.low = low;
  p.high = high;
  p.log = log;
  p.step = step;
  return p;
}

inline ParamSpec Int(const std::string& name, double low, double high, bool log = false, double step = 0) {
  ParamSpec p = Float(name, low, high, log, step);
  p.kind = ParamKind::kInt;
  return p;
}

inline ParamSpec Choice(const std::string& name, std::vector<std::string> choices) {
  ParamSpec p;
  p.name = name;
  p.kind = ParamKind::kCategorical;
  p.choices = std::move(choices);
  return p;
}

inline ParamSpec Under(ParamSpec p, const std::string& parent, std::vector<std::string> values) {
  p.parent = parent;
  p.parent_values = std::move(values);
  return p;
}

}  // namespace hepml::jobs::testing

#endif  // HEPML_SRC_JOBS_TEST_SPACES_H_
