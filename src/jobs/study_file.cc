// The study file (YAML), strictly: every key is known, every value has the
// right type and range, and each error names the file, the line and the key.
//
//   name: jet-mlp
//   command: python3 train.py --lr {lr} --hidden {hidden} --out {trial_dir}
//   space:
//     lr: {type: float, low: 1.0e-4, high: 0.1, log: true}
//     hidden: {type: int, low: 16, high: 128, step: 16}
//     optimizer: {type: categorical, choices: [adam, sgd]}
//     momentum: {type: float, low: 0.0, high: 0.99, condition: {optimizer: [sgd]}}
//   objective: {metric: val_loss, direction: minimize}
//   metrics: {source: stdout}            # or {source: jsonl, file: metrics.jsonl}
//   sampler: {kind: tpe, seed: 1}
//   pruner: {kind: asha, min_resource: 1, max_resource: 9, reduction_factor: 3}
//   budget: {trials: 30, parallel: 2, max_failures: 5, wall_time: 20m}
//   resources: {cpus: 1, gpus: 0, memory_mb: 2000, time_limit: 10m}
//   executor: {kind: local}
//   registry: hepml-registry             # or {metadata: postgresql://..., blobs: file:///...}
//   work_dir: hpo-work
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "jobs/study.h"

namespace hepml::jobs {
namespace {

namespace fs = std::filesystem;

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  absl::Status Error(const YAML::Node& node, const std::string& what) const {
    if (node.IsDefined() && node.Mark().line >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(origin_, ":", node.Mark().line + 1, ": ", what));
    }
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", what));
  }

  // The keys of a mapping, each checked against `known`, in order.
  absl::StatusOr<std::vector<std::pair<std::string, YAML::Node>>> Map(const YAML::Node& node, const std::string& where,
                                                                      const std::set<std::string>& known) const {
    if (!node.IsMap()) return Error(node, absl::StrCat(where, ": expected a mapping"));
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) return Error(kv.first, absl::StrCat(where, ": keys must be plain names"));
      std::string key = kv.first.Scalar();
      if (!known.empty() && known.count(key) == 0) {
        return Error(kv.first, absl::StrCat("unknown key '", key, "' in ", where, " (known: ",
                                            absl::StrJoin(known, ", "), ")"));
      }
      if (!seen.insert(key).second) return Error(kv.first, absl::StrCat("key '", key, "' given twice in ", where));
      out.emplace_back(key, kv.second);
    }
    return out;
  }

  absl::StatusOr<std::string> String(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Error(n, absl::StrCat(key, ": expected a single value"));
    return n.Scalar();
  }
  absl::StatusOr<double> Double(const YAML::Node& n, const std::string& key) const {
    double d = 0;
    if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &d) || !std::isfinite(d)) {
      return Error(n, absl::StrCat(key, ": expected a number", n.IsScalar() ? absl::StrCat(", got '", n.Scalar(), "'") : ""));
    }
    return d;
  }
  absl::StatusOr<int64_t> Int(const YAML::Node& n, const std::string& key) const {
    int64_t v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) {
      return Error(n, absl::StrCat(key, ": expected an integer", n.IsScalar() ? absl::StrCat(", got '", n.Scalar(), "'") : ""));
    }
    return v;
  }
  absl::StatusOr<bool> Bool(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      std::string s = absl::AsciiStrToLower(n.Scalar());
      if (s == "true" || s == "yes") return true;
      if (s == "false" || s == "no") return false;
    }
    return Error(n, absl::StrCat(key, ": expected true or false"));
  }
  // Seconds: a number, or a duration such as 90s, 10m, 1h30m.
  absl::StatusOr<double> Seconds(const YAML::Node& n, const std::string& key) const {
    double d = 0;
    absl::Duration dur;
    if (n.IsScalar() && absl::SimpleAtod(n.Scalar(), &d) && std::isfinite(d) && d >= 0) return d;
    if (n.IsScalar() && absl::ParseDuration(n.Scalar(), &dur) && dur >= absl::ZeroDuration()) {
      return absl::ToDoubleSeconds(dur);
    }
    return Error(n, absl::StrCat(key, ": expected seconds or a duration such as 90s, 10m, 2h"));
  }
  // A list of scalars (a single scalar counts as a list of one).
  absl::StatusOr<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
      return out;
    }
    if (!n.IsSequence()) return Error(n, absl::StrCat(key, ": expected a list"));
    for (const auto& item : n) {
      if (!item.IsScalar()) return Error(item, absl::StrCat(key, ": expected plain values in the list"));
      out.push_back(item.Scalar());
    }
    return out;
  }

 private:
  std::string origin_;
};

#define HEPML_ASSIGN(lhs, expr)            \
  do {                                     \
    auto _v = (expr);                      \
    if (!_v.ok()) return _v.status();      \
    lhs = *std::move(_v);                  \
  } while (0)

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  return s[0] != '.' && s[0] != '-';
}

bool ValidParamName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(c) && c != '_') return false;
  return true;
}

absl::Status ParseParam(const Parser& p, const std::string& name, const YAML::Node& node, SearchSpace* space) {
  std::string where = absl::StrCat("space.", name);
  std::vector<std::pair<std::string, YAML::Node>> keys;
  HEPML_ASSIGN(keys, p.Map(node, where, {"type", "low", "high", "log", "step", "choices", "condition"}));
  ParamSpec spec;
  spec.name = name;
  if (!ValidParamName(name)) {
    return p.Error(node, absl::StrCat("parameter name '", name, "': use letters, digits and _ only"));
  }
  std::string type;
  bool has_low = false, has_high = false, has_log = false, has_step = false, has_choices = false;
  YAML::Node low_node, high_node, step_node, choices_node, log_node;
  for (const auto& [key, v] : keys) {
    std::string k = absl::StrCat(where, ".", key);
    if (key == "type") {
      HEPML_ASSIGN(type, p.String(v, k));
    } else if (key == "low") {
      HEPML_ASSIGN(spec.low, p.Double(v, k));
      has_low = true;
      low_node = v;
    } else if (key == "high") {
      HEPML_ASSIGN(spec.high, p.Double(v, k));
      has_high = true;
      high_node = v;
    } else if (key == "log") {
      HEPML_ASSIGN(spec.log, p.Bool(v, k));
      log_node = v;
      has_log = true;
    } else if (key == "step") {
      HEPML_ASSIGN(spec.step, p.Double(v, k));
      step_node = v;
      has_step = true;
    } else if (key == "choices") {
      HEPML_ASSIGN(spec.choices, p.Strings(v, k));
      choices_node = v;
      has_choices = true;
    } else if (key == "condition") {
      std::vector<std::pair<std::string, YAML::Node>> cond;
      HEPML_ASSIGN(cond, p.Map(v, k, {}));
      if (cond.size() != 1) return p.Error(v, absl::StrCat(k, ": expected one parameter and its values, e.g. {optimizer: [sgd]}"));
      spec.parent = cond[0].first;
      HEPML_ASSIGN(spec.parent_values, p.Strings(cond[0].second, absl::StrCat(k, ".", spec.parent)));
      const ParamSpec* parent = space->Find(spec.parent);
      if (parent == nullptr) {
        return p.Error(v, absl::StrCat(k, ": parameter '", spec.parent, "' is not defined before '", name, "'"));
      }
      if (spec.parent_values.empty()) return p.Error(v, absl::StrCat(k, ": no values"));
      if (parent->kind == ParamKind::kCategorical) {
        for (const auto& pv : spec.parent_values) {
          if (std::find(parent->choices.begin(), parent->choices.end(), pv) == parent->choices.end()) {
            return p.Error(v, absl::StrCat(k, ": '", pv, "' is not a choice of '", spec.parent, "'"));
          }
        }
      }
    }
  }
  if (type == "float") {
    spec.kind = ParamKind::kFloat;
  } else if (type == "int") {
    spec.kind = ParamKind::kInt;
  } else if (type == "categorical") {
    spec.kind = ParamKind::kCategorical;
  } else if (type.empty()) {
    return p.Error(node, absl::StrCat(where, ": no type (float, int or categorical)"));
  } else {
    return p.Error(node, absl::StrCat(where, ": unknown type '", type, "' (expected float, int or categorical)"));
  }
  if (spec.kind == ParamKind::kCategorical) {
    if (has_low || has_high || has_log || has_step) {
      return p.Error(node, absl::StrCat(where, ": a categorical parameter takes choices, not low/high/log/step"));
    }
    if (spec.choices.empty()) return p.Error(node, absl::StrCat(where, ": no choices"));
    std::set<std::string> unique(spec.choices.begin(), spec.choices.end());
    if (unique.size() != spec.choices.size()) return p.Error(choices_node, absl::StrCat(where, ": a choice is listed twice"));
  } else {
    if (has_choices) return p.Error(choices_node, absl::StrCat(where, ": choices are for categorical parameters"));
    if (!has_low || !has_high) return p.Error(node, absl::StrCat(where, ": needs low and high"));
    if (!(spec.low < spec.high)) {
      return p.Error(low_node, absl::StrCat(where, ": low (", low_node.Scalar(), ") must be below high (",
                                            high_node.Scalar(), ")"));
    }
    if (spec.log && spec.low <= 0) return p.Error(low_node, absl::StrCat(where, ": log needs low > 0"));
    if (spec.kind == ParamKind::kInt && (spec.low != std::floor(spec.low) || spec.high != std::floor(spec.high))) {
      return p.Error(node, absl::StrCat(where, ": int bounds must be integers"));
    }
    if (has_step) {
      if (spec.step <= 0 || spec.step > spec.high - spec.low) {
        return p.Error(step_node, absl::StrCat(where, ": step must be > 0 and at most high - low"));
      }
      if (spec.kind == ParamKind::kInt && spec.step != std::floor(spec.step)) {
        return p.Error(step_node, absl::StrCat(where, ": an int step must be an integer"));
      }
      if (spec.log) return p.Error(step_node, absl::StrCat(where, ": step and log do not go together"));
    }
  }
  space->params.push_back(std::move(spec));
  return absl::OkStatus();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base_dir) / p;
  return p.lexically_normal().string();
}

}  // namespace

absl::StatusOr<StudyConfig> ParseStudyConfig(const std::string& text, const std::string& origin,
                                             const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  Parser p(origin);
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(origin, ": expected a mapping of study keys"));
  StudyConfig c;
  c.text = text;
  c.base_dir = base_dir;
  c.sampler.kind = "random";
  c.pruner.kind = "none";
  std::vector<std::pair<std::string, YAML::Node>> top;
  HEPML_ASSIGN(top, p.Map(root, "the study", {"name", "command", "space", "objective", "metrics", "sampler", "pruner",
                                              "budget", "resources", "executor", "registry", "work_dir"}));
  YAML::Node command_node, space_node;
  bool has_space = false;
  bool has_objective = false, has_budget = false;
  std::string work_dir;
  try {
    for (const auto& [key, v] : top) {
      if (key == "name") {
        HEPML_ASSIGN(c.name, p.String(v, key));
        if (!ValidName(c.name)) {
          return p.Error(v, absl::StrCat("name '", c.name, "': use letters, digits, '_', '-' and '.' (at most 100)"));
        }
      } else if (key == "command") {
        HEPML_ASSIGN(c.command, p.String(v, key));
        command_node = v;
      } else if (key == "space") {
        space_node = v;
        has_space = true;
        std::vector<std::pair<std::string, YAML::Node>> params;
        HEPML_ASSIGN(params, p.Map(v, "space", {}));
        for (const auto& [name, spec] : params) {
          if (absl::Status s = ParseParam(p, name, spec, &c.space); !s.ok()) return s;
        }
      } else if (key == "objective") {
        has_objective = true;
        std::vector<std::pair<std::string, YAML::Node>> o;
        HEPML_ASSIGN(o, p.Map(v, "objective", {"metric", "direction"}));
        for (const auto& [k, ov] : o) {
          if (k == "metric") {
            HEPML_ASSIGN(c.objective, p.String(ov, "objective.metric"));
          } else {
            std::string d;
            HEPML_ASSIGN(d, p.String(ov, "objective.direction"));
            if (d == "minimize" || d == "minimise") {
              c.direction = Direction::kMinimize;
            } else if (d == "maximize" || d == "maximise") {
              c.direction = Direction::kMaximize;
            } else {
              return p.Error(ov, absl::StrCat("objective.direction: '", d, "' (expected minimize or maximize)"));
            }
          }
        }
        if (c.objective.empty()) return p.Error(v, "objective: no metric");
      } else if (key == "metrics") {
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "metrics", {"source", "file"}));
        for (const auto& [k, mv] : m) {
          if (k == "source") {
            HEPML_ASSIGN(c.metrics_source, p.String(mv, "metrics.source"));
            if (c.metrics_source != "stdout" && c.metrics_source != "jsonl") {
              return p.Error(mv, absl::StrCat("metrics.source: '", c.metrics_source, "' (expected stdout or jsonl)"));
            }
          } else {
            HEPML_ASSIGN(c.metrics_file, p.String(mv, "metrics.file"));
          }
        }
        if (c.metrics_source == "jsonl" && c.metrics_file.empty()) return p.Error(v, "metrics: source jsonl needs a file");
        if (c.metrics_source == "stdout" && !c.metrics_file.empty()) {
          return p.Error(v, "metrics: a file goes with source jsonl (stdout is read from the trial's stdout.log)");
        }
      } else if (key == "sampler") {
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "sampler", {"kind", "seed", "n_startup_trials", "n_ei_candidates", "gamma", "sigma0",
                                             "population", "grid_points"}));
        SamplerOptions& s = c.sampler;
        for (const auto& [k, sv] : m) {
          std::string kk = absl::StrCat("sampler.", k);
          int64_t i = 0;
          if (k == "kind") {
            HEPML_ASSIGN(s.kind, p.String(sv, kk));
            if (s.kind != "random" && s.kind != "grid" && s.kind != "tpe" && s.kind != "cmaes") {
              return p.Error(sv, absl::StrCat("sampler.kind: unknown sampler '", s.kind,
                                              "' (expected random, grid, tpe or cmaes)"));
            }
          } else if (k == "seed") {
            HEPML_ASSIGN(i, p.Int(sv, kk));
            if (i < 0) return p.Error(sv, "sampler.seed: must be >= 0");
            s.seed = static_cast<uint64_t>(i);
          } else if (k == "n_startup_trials") {
            HEPML_ASSIGN(s.n_startup_trials, p.Int(sv, kk));
          } else if (k == "n_ei_candidates") {
            HEPML_ASSIGN(s.n_ei_candidates, p.Int(sv, kk));
            if (s.n_ei_candidates < 1) return p.Error(sv, "sampler.n_ei_candidates: must be >= 1");
          } else if (k == "gamma") {
            HEPML_ASSIGN(s.gamma, p.Double(sv, kk));
            if (s.gamma <= 0 || s.gamma >= 1) return p.Error(sv, "sampler.gamma: must be in (0, 1)");
          } else if (k == "sigma0") {
            HEPML_ASSIGN(s.sigma0, p.Double(sv, kk));
            if (s.sigma0 <= 0) return p.Error(sv, "sampler.sigma0: must be > 0");
          } else if (k == "population") {
            HEPML_ASSIGN(s.population, p.Int(sv, kk));
          } else if (k == "grid_points") {
            HEPML_ASSIGN(s.grid_points, p.Int(sv, kk));
            if (s.grid_points < 2) return p.Error(sv, "sampler.grid_points: must be >= 2");
          }
        }
      } else if (key == "pruner") {
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "pruner", {"kind", "n_startup_trials", "n_warmup_steps", "min_resource", "max_resource",
                                            "reduction_factor"}));
        PrunerOptions& s = c.pruner;
        for (const auto& [k, sv] : m) {
          std::string kk = absl::StrCat("pruner.", k);
          if (k == "kind") {
            HEPML_ASSIGN(s.kind, p.String(sv, kk));
            if (s.kind != "none" && s.kind != "median" && s.kind != "asha" && s.kind != "hyperband") {
              return p.Error(sv, absl::StrCat("pruner.kind: unknown pruner '", s.kind,
                                              "' (expected none, median, asha or hyperband)"));
            }
          } else if (k == "n_startup_trials") {
            HEPML_ASSIGN(s.n_startup_trials, p.Int(sv, kk));
          } else if (k == "n_warmup_steps") {
            HEPML_ASSIGN(s.n_warmup_steps, p.Int(sv, kk));
          } else if (k == "min_resource") {
            HEPML_ASSIGN(s.min_resource, p.Int(sv, kk));
            if (s.min_resource < 1) return p.Error(sv, "pruner.min_resource: must be >= 1");
          } else if (k == "max_resource") {
            HEPML_ASSIGN(s.max_resource, p.Int(sv, kk));
          } else if (k == "reduction_factor") {
            HEPML_ASSIGN(s.reduction_factor, p.Double(sv, kk));
            if (s.reduction_factor <= 1) return p.Error(sv, "pruner.reduction_factor: must be > 1");
          }
        }
        if ((s.kind == "asha" || s.kind == "hyperband") && s.max_resource < s.min_resource) {
          return p.Error(v, absl::StrCat("pruner: ", s.kind, " needs max_resource (the steps of a full trial) >= min_resource"));
        }
      } else if (key == "budget") {
        has_budget = true;
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "budget", {"trials", "parallel", "max_failures", "wall_time"}));
        for (const auto& [k, bv] : m) {
          std::string kk = absl::StrCat("budget.", k);
          if (k == "trials") {
            HEPML_ASSIGN(c.budget.trials, p.Int(bv, kk));
            if (c.budget.trials < 1) return p.Error(bv, "budget.trials: must be >= 1");
          } else if (k == "parallel") {
            HEPML_ASSIGN(c.budget.parallel, p.Int(bv, kk));
            if (c.budget.parallel < 1) return p.Error(bv, "budget.parallel: must be >= 1");
          } else if (k == "max_failures") {
            HEPML_ASSIGN(c.budget.max_failures, p.Int(bv, kk));
            if (c.budget.max_failures < 0) return p.Error(bv, "budget.max_failures: must be >= 0");
          } else {
            HEPML_ASSIGN(c.budget.wall_time_s, p.Seconds(bv, kk));
          }
        }
        if (c.budget.trials == 0) return p.Error(v, "budget: trials is required");
      } else if (key == "resources") {
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "resources", {"cpus", "gpus", "memory_mb", "time_limit"}));
        for (const auto& [k, rv] : m) {
          std::string kk = absl::StrCat("resources.", k);
          if (k == "cpus") {
            HEPML_ASSIGN(c.resources.cpus, p.Int(rv, kk));
            if (c.resources.cpus < 1) return p.Error(rv, "resources.cpus: must be >= 1");
          } else if (k == "gpus") {
            HEPML_ASSIGN(c.resources.gpus, p.Int(rv, kk));
            if (c.resources.gpus < 0) return p.Error(rv, "resources.gpus: must be >= 0");
          } else if (k == "memory_mb") {
            HEPML_ASSIGN(c.resources.memory_mb, p.Int(rv, kk));
            if (c.resources.memory_mb < 0) return p.Error(rv, "resources.memory_mb: must be >= 0");
          } else {
            double s = 0;
            HEPML_ASSIGN(s, p.Seconds(rv, kk));
            c.resources.time_limit_s = static_cast<int64_t>(std::ceil(s));
          }
        }
      } else if (key == "executor") {
        std::vector<std::pair<std::string, YAML::Node>> m;
        HEPML_ASSIGN(m, p.Map(v, "executor", {"kind", "cpu_slots", "gpus", "partition", "account", "extra_args", "bin_dir"}));
        for (const auto& [k, ev] : m) {
          std::string kk = absl::StrCat("executor.", k);
          if (k == "kind") {
            HEPML_ASSIGN(c.executor.kind, p.String(ev, kk));
            if (c.executor.kind != "local" && c.executor.kind != "slurm" && c.executor.kind != "htcondor") {
              return p.Error(ev, absl::StrCat("executor.kind: unknown executor '", c.executor.kind,
                                              "' (expected local, slurm or htcondor)"));
            }
          } else if (k == "cpu_slots") {
            HEPML_ASSIGN(c.executor.cpu_slots, p.Int(ev, kk));
            if (c.executor.cpu_slots < 0) return p.Error(ev, "executor.cpu_slots: must be >= 0");
          } else if (k == "gpus") {
            std::vector<std::string> g;
            HEPML_ASSIGN(g, p.Strings(ev, kk));
            c.executor.gpus = absl::StrJoin(g, ",");
          } else if (k == "partition") {
            HEPML_ASSIGN(c.executor.partition, p.String(ev, kk));
          } else if (k == "account") {
            HEPML_ASSIGN(c.executor.account, p.String(ev, kk));
          } else if (k == "extra_args") {
            HEPML_ASSIGN(c.executor.extra_args, p.Strings(ev, kk));
          } else {
            HEPML_ASSIGN(c.executor.bin_dir, p.String(ev, kk));
          }
        }
      } else if (key == "registry") {
        if (v.IsScalar()) {
          c.registry_dir = Resolve(base_dir, v.Scalar());
        } else {
          std::vector<std::pair<std::string, YAML::Node>> m;
          HEPML_ASSIGN(m, p.Map(v, "registry", {"metadata", "blobs"}));
          for (const auto& [k, rv] : m) {
            if (k == "metadata") HEPML_ASSIGN(c.registry_metadata, p.String(rv, "registry.metadata"));
            else HEPML_ASSIGN(c.registry_blobs, p.String(rv, "registry.blobs"));
          }
          if (c.registry_metadata.empty() || c.registry_blobs.empty()) {
            return p.Error(v, "registry: give a folder, or both metadata and blobs URIs");
          }
        }
      } else if (key == "work_dir") {
        HEPML_ASSIGN(work_dir, p.String(v, key));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (c.name.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no name"));
  if (c.command.empty()) return absl::InvalidArgumentError(absl::StrCat(origin, ": no command"));
  if (!has_space || c.space.params.empty()) {
    return p.Error(space_node, "the search space is empty: give at least one parameter under space");
  }
  if (!has_objective) return absl::InvalidArgumentError(absl::StrCat(origin, ": no objective (metric and direction)"));
  if (!has_budget) return absl::InvalidArgumentError(absl::StrCat(origin, ": no budget (at least budget.trials)"));
  if (absl::Status s = c.space.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": space: ", s.message()));
  }
  // Every placeholder of the command must be something a trial can fill in.
  if (auto cmd = ExpandCommand(c.command, c.space, ParamSet{}, "/t", 0, c.name); !cmd.ok()) {
    return p.Error(command_node, absl::StrCat("command: ", cmd.status().message()));
  }
  c.work_dir = Resolve(base_dir, work_dir.empty() ? absl::StrCat("hepml-hpo/", c.name) : work_dir);
  if (c.registry_dir.empty() && c.registry_metadata.empty()) c.registry_dir = Resolve(base_dir, "hepml-registry");
  return c;
}

absl::StatusOr<StudyConfig> LoadStudyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the study file '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  return ParseStudyConfig(ss.str(), path, abs.parent_path().lexically_normal().string());
}

}  // namespace hepml::jobs
