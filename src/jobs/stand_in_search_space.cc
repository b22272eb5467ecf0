// A minimal search_space.cc for building the study runner before the real
// one lands: src/jobs/CMakeLists.txt leaves this file out as soon as
// search_space.cc exists. Delete it then.
#include <cmath>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "hepml/jobs.h"

namespace hepml::jobs {

std::string FormatParam(const ParamValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  double d = std::get<double>(value);
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

bool IsActive(const ParamSpec& spec, const ParamSet& params) {
  if (spec.parent.empty()) return true;
  auto it = params.find(spec.parent);
  if (it == params.end()) return false;
  std::string v = FormatParam(it->second);
  for (const auto& p : spec.parent_values)
    if (p == v) return true;
  return false;
}

const ParamSpec* SearchSpace::Find(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

absl::Status SearchSpace::Validate() const {
  if (params.empty()) return absl::InvalidArgumentError("the search space has no parameters");
  std::set<std::string> seen;
  for (const auto& p : params) {
    if (p.name.empty()) return absl::InvalidArgumentError("a parameter has no name");
    if (!seen.insert(p.name).second) return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "' twice"));
    if (p.kind == ParamKind::kCategorical) {
      if (p.choices.empty()) return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "': no choices"));
    } else {
      if (!(p.low < p.high)) return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "': low >= high"));
      if (p.log && p.low <= 0) return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "': log needs low > 0"));
    }
    if (!p.parent.empty() && (p.parent == p.name || seen.count(p.parent) == 0)) {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "': parent '", p.parent, "' must come first"));
    }
  }
  return absl::OkStatus();
}

}  // namespace hepml::jobs
