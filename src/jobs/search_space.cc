// SearchSpace validation, parameter formatting and activity, trial state names.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "hepml/jobs.h"

namespace hepml::jobs {

namespace {

const char* KindName(ParamKind kind) {
  switch (kind) {
    case ParamKind::kFloat:
      return "float";
    case ParamKind::kInt:
      return "int";
    case ParamKind::kCategorical:
      return "categorical";
  }
  return "?";
}

bool Integral(double v) { return std::isfinite(v) && v == std::round(v) && std::abs(v) < 0x1.0p53; }

absl::Status Bad(const ParamSpec& spec, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("search space: parameter '", spec.name, "' (", KindName(spec.kind), "): ", why));
}

absl::Status ValidateNumeric(const ParamSpec& spec) {
  if (!std::isfinite(spec.low) || !std::isfinite(spec.high)) {
    return Bad(spec, "low and high must be finite numbers");
  }
  if (spec.kind == ParamKind::kInt && (!Integral(spec.low) || !Integral(spec.high))) {
    return Bad(spec, absl::StrCat("low and high must be integers (got ", FormatParam(spec.low), ", ",
                                  FormatParam(spec.high), ")"));
  }
  if (!(spec.low < spec.high)) {
    return Bad(spec, absl::StrCat("low (", FormatParam(spec.low), ") must be less than high (",
                                  FormatParam(spec.high), ")"));
  }
  if (!std::isfinite(spec.high - spec.low)) {
    return Bad(spec, "high - low overflows a double");
  }
  if (spec.log && spec.low <= 0) {
    return Bad(spec, absl::StrCat("log scale needs low > 0 (got low = ", FormatParam(spec.low), ")"));
  }
  if (!std::isfinite(spec.step) || spec.step < 0) {
    return Bad(spec, absl::StrCat("step must be >= 0 (got ", FormatParam(spec.step), ")"));
  }
  if (spec.step > 0) {
    if (spec.kind == ParamKind::kInt && !Integral(spec.step)) {
      return Bad(spec, absl::StrCat("step must be an integer (got ", FormatParam(spec.step), ")"));
    }
    if (spec.log && !(spec.kind == ParamKind::kInt && spec.step == 1)) {
      return Bad(spec, "log scale and a step cannot be combined");
    }
    if ((spec.high - spec.low) / spec.step > 0x1.0p53) {
      return Bad(spec, absl::StrCat("step (", FormatParam(spec.step), ") gives more than 2^53 values"));
    }
    if (spec.step > spec.high - spec.low) {
      return Bad(spec, absl::StrCat("step (", FormatParam(spec.step), ") is larger than high - low (",
                                    FormatParam(spec.high - spec.low), ")"));
    }
  }
  if (!spec.choices.empty()) return Bad(spec, "choices are only for categorical parameters");
  return absl::OkStatus();
}

absl::Status ValidateCategorical(const ParamSpec& spec) {
  if (spec.choices.empty()) return Bad(spec, "no choices");
  std::set<std::string> seen;
  for (const std::string& c : spec.choices) {
    if (c.empty()) return Bad(spec, "a choice is the empty string");
    if (!seen.insert(c).second) return Bad(spec, absl::StrCat("choice '", c, "' appears twice"));
  }
  if (spec.log || spec.step != 0) return Bad(spec, "log and step are only for float and int parameters");
  return absl::OkStatus();
}

}  // namespace

absl::Status SearchSpace::Validate() const {
  if (params.empty()) return absl::InvalidArgumentError("search space: no parameters");
  std::set<std::string> names;
  for (const ParamSpec& spec : params) {
    if (spec.name.empty()) return absl::InvalidArgumentError("search space: a parameter has no name");
    for (char c : spec.name) {
      if (std::isspace(static_cast<unsigned char>(c)) || c == '{' || c == '}' || c == '=') {
        return Bad(spec, "names may not contain spaces, '{', '}' or '='");
      }
    }
    if (names.count(spec.name)) {
      return absl::InvalidArgumentError(absl::StrCat("search space: parameter '", spec.name, "' defined twice"));
    }
    absl::Status status =
        spec.kind == ParamKind::kCategorical ? ValidateCategorical(spec) : ValidateNumeric(spec);
    if (!status.ok()) return status;
    if (spec.parent.empty()) {
      if (!spec.parent_values.empty()) return Bad(spec, "parent_values given without a parent");
    } else {
      if (spec.parent == spec.name) return Bad(spec, "it is its own parent");
      if (!names.count(spec.parent)) {
        const ParamSpec* later = Find(spec.parent);
        return Bad(spec, later ? absl::StrCat("parent '", spec.parent, "' must come before it")
                               : absl::StrCat("unknown parent '", spec.parent, "'"));
      }
      if (spec.parent_values.empty()) {
        return Bad(spec, absl::StrCat("no parent_values: under which values of '", spec.parent,
                                      "' is it active?"));
      }
      const ParamSpec* parent = Find(spec.parent);
      if (parent->kind == ParamKind::kCategorical) {
        for (const std::string& v : spec.parent_values) {
          if (std::find(parent->choices.begin(), parent->choices.end(), v) == parent->choices.end()) {
            return Bad(spec, absl::StrCat("parent value '", v, "' is not a choice of '", spec.parent,
                                          "' (", absl::StrJoin(parent->choices, ", "), ")"));
          }
        }
      }
    }
    names.insert(spec.name);
  }
  return absl::OkStatus();
}

const ParamSpec* SearchSpace::Find(const std::string& name) const {
  for (const ParamSpec& spec : params) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string FormatParam(const ParamValue& value) {
  if (const std::string* s = std::get_if<std::string>(&value)) return *s;
  char buffer[64];
  std::to_chars_result result;
  if (const int64_t* i = std::get_if<int64_t>(&value)) {
    result = std::to_chars(buffer, buffer + sizeof buffer, *i);
  } else {
    // The shortest text that parses back to the same double.
    result = std::to_chars(buffer, buffer + sizeof buffer, std::get<double>(value));
  }
  return std::string(buffer, result.ptr);
}

bool IsActive(const ParamSpec& spec, const ParamSet& params) {
  if (spec.parent.empty()) return true;
  auto it = params.find(spec.parent);
  if (it == params.end()) return false;
  const std::string text = FormatParam(it->second);
  for (const std::string& v : spec.parent_values) {
    if (v == text) return true;
  }
  return false;
}

const char* TrialStateName(TrialState state) {
  switch (state) {
    case TrialState::kQueued:
      return "queued";
    case TrialState::kRunning:
      return "running";
    case TrialState::kComplete:
      return "complete";
    case TrialState::kPruned:
      return "pruned";
    case TrialState::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace hepml::jobs
