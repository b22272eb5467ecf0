#include "codegen/analysis.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "graph/passes/shape_propagation.h"

namespace hepml::codegen {
namespace {

// Facts at one batch size: shapes and known small values of every value.
struct Probe {
  absl::flat_hash_map<std::string, Shape> shapes;
  absl::flat_hash_map<std::string, DType> dtypes;
  absl::flat_hash_map<std::string, std::vector<int64_t>> known;
};

// Which dims of which inputs are the batch, and the fixed values of the rest.
struct InputDims {
  std::string name;
  std::vector<int64_t> fixed;    // -1: the batch
};

Probe RunProbe(const Graph& graph, const std::vector<InputDims>& inputs, int64_t batch) {
  Graph copy = graph;
  for (ValueInfo& vi : copy.inputs) {
    for (const InputDims& in : inputs) {
      if (in.name != vi.name) continue;
      vi.type.has_shape = true;
      vi.type.shape.clear();
      for (int64_t d : in.fixed) {
        Dim dim;
        dim.value = d < 0 ? batch : d;
        vi.type.shape.push_back(dim);
      }
    }
  }
  // Declared intermediate types carry the model's symbols; the numbers come
  // from propagation.
  copy.value_info.clear();
  passes::ShapePropagation facts = passes::ShapePropagation::Run(copy);
  Probe p;
  auto record = [&](const std::string& name) {
    if (name.empty()) return;
    const passes::ValueFacts* f = facts.Find(name);
    if (f == nullptr || f->type.kind != TypeInfo::Kind::kTensor) return;
    p.dtypes[name] = f->type.dtype;
    if (auto s = facts.StaticShape(name)) p.shapes[name] = *s;
    if (f->FullyKnown()) {
      std::vector<int64_t> v;
      for (const passes::SymbolicInt& s : *f->value) v.push_back(*s.number);
      p.known[name] = std::move(v);
    }
  };
  for (const ValueInfo& vi : copy.inputs) record(vi.name);
  for (const auto& [name, t] : copy.initializers) record(name);
  for (const Node& n : copy.nodes)
    for (const std::string& o : n.outputs) record(o);
  return p;
}

std::string Producer(const Graph& graph, const std::string& value) {
  for (const Node& n : graph.nodes)
    for (const std::string& o : n.outputs)
      if (o == value) return absl::StrCat(" (output of ", n.Describe(), ")");
  return "";
}

}  // namespace

absl::StatusOr<GraphShapes> ResolveShapes(const Graph& graph, const std::map<std::string, int64_t>& dims,
                                          int64_t max_batch) {
  GraphShapes out;
  std::vector<InputDims> inputs;
  std::set<std::string> used_dims;
  for (const ValueInfo* vi : graph.RequiredInputs()) {
    if (vi->type.kind != TypeInfo::Kind::kTensor) {
      return absl::InvalidArgumentError(absl::StrCat("input '", vi->name, "' is not a tensor (", vi->type.ToString(),
                                                     "): hepml compile handles tensor inputs only"));
    }
    if (!vi->type.has_shape) {
      return absl::InvalidArgumentError(absl::StrCat("input '", vi->name, "' has no declared shape"));
    }
    InputDims in{vi->name, {}};
    for (size_t d = 0; d < vi->type.shape.size(); ++d) {
      const Dim& dim = vi->type.shape[d];
      if (dim.known()) {
        in.fixed.push_back(dim.value);
        continue;
      }
      auto it = dims.find(dim.param);
      if (!dim.param.empty() && it != dims.end()) {
        in.fixed.push_back(it->second);
        used_dims.insert(dim.param);
      } else if (d == 0) {
        in.fixed.push_back(-1);
        out.has_batch = true;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "dimension ", d, " ('", dim.param.empty() ? "?" : dim.param, "') of input '", vi->name,
            "' is not fixed: give --dim ", dim.param.empty() ? "NAME" : dim.param, "=VALUE"));
      }
    }
    inputs.push_back(std::move(in));
  }
  for (const auto& [name, value] : dims) {
    if (!used_dims.count(name)) {
      std::set<std::string> symbols;
      for (const ValueInfo* vi : graph.RequiredInputs())
        for (const Dim& d : vi->type.shape)
          if (!d.known() && !d.param.empty()) symbols.insert(d.param);
      std::string list;
      for (const std::string& s : symbols) absl::StrAppend(&list, list.empty() ? "" : ", ", s);
      return absl::InvalidArgumentError(absl::StrCat("--dim ", name, ": the model's inputs have no dimension '", name,
                                                     "' (symbolic dims: ", list.empty() ? "none" : list, ")"));
    }
  }
  // Two probes fix per_batch and fixed; the others check linearity.
  const int64_t b0 = 2, b1 = 3;
  Probe p0 = RunProbe(graph, inputs, b0);
  std::vector<Probe> checks;
  Probe p1;
  if (out.has_batch) {
    p1 = RunProbe(graph, inputs, b1);
    checks.push_back(RunProbe(graph, inputs, 7));
    std::vector<int64_t> check_batches = {7};
    if (max_batch != 7 && max_batch != b0 && max_batch != b1) {
      checks.push_back(RunProbe(graph, inputs, max_batch));
      check_batches.push_back(max_batch);
    }
    if (max_batch > 1) {
      checks.push_back(RunProbe(graph, inputs, 1));
      check_batches.push_back(1);
    }
    auto lin = [&](const std::vector<int64_t>& v0, const std::vector<int64_t>& v1) {
      std::vector<Lin> l(v0.size());
      for (size_t i = 0; i < v0.size(); ++i) {
        l[i].per_batch = (v1[i] - v0[i]) / (b1 - b0);
        l[i].fixed = v0[i] - l[i].per_batch * b0;
      }
      return l;
    };
    for (const auto& [name, dtype] : p0.dtypes) {
      ValueShape vs;
      vs.dtype = dtype;
      auto s0 = p0.shapes.find(name);
      auto s1 = p1.shapes.find(name);
      if (s0 == p0.shapes.end() || s1 == p1.shapes.end() || s0->second.size() != s1->second.size()) continue;
      vs.shape = lin(std::vector<int64_t>(s0->second.begin(), s0->second.end()),
                     std::vector<int64_t>(s1->second.begin(), s1->second.end()));
      bool linear = true;
      for (size_t c = 0; c < checks.size() && linear; ++c) {
        auto sc = checks[c].shapes.find(name);
        if (sc == checks[c].shapes.end() || sc->second.size() != vs.shape.size()) {
          linear = false;
          break;
        }
        for (size_t d = 0; d < vs.shape.size(); ++d)
          if (vs.shape[d].At(check_batches[c]) != sc->second[d]) linear = false;
      }
      if (!linear) {
        return absl::UnimplementedError(absl::StrCat("the shape of '", name, "'", Producer(graph, name),
                                                     " does not grow linearly with the batch"));
      }
      auto k0 = p0.known.find(name);
      auto k1 = p1.known.find(name);
      if (k0 != p0.known.end() && k1 != p1.known.end() && k0->second.size() == k1->second.size()) {
        std::vector<Lin> k = lin(k0->second, k1->second);
        bool ok = true;
        for (size_t c = 0; c < checks.size() && ok; ++c) {
          auto kc = checks[c].known.find(name);
          if (kc == checks[c].known.end() || kc->second.size() != k.size()) {
            ok = false;
            break;
          }
          for (size_t i = 0; i < k.size(); ++i)
            if (k[i].At(check_batches[c]) != kc->second[i]) ok = false;
        }
        if (ok) vs.known = std::move(k);
      }
      out.values[name] = std::move(vs);
    }
  } else {
    for (const auto& [name, dtype] : p0.dtypes) {
      auto s0 = p0.shapes.find(name);
      if (s0 == p0.shapes.end()) continue;
      ValueShape vs;
      vs.dtype = dtype;
      for (int64_t d : s0->second) vs.shape.push_back(Lin{0, d});
      auto k0 = p0.known.find(name);
      if (k0 != p0.known.end()) {
        vs.known.emplace();
        for (int64_t v : k0->second) vs.known->push_back(Lin{0, v});
      }
      out.values[name] = std::move(vs);
    }
  }
  for (const Node& n : graph.nodes) {
    for (const std::string& o : n.outputs) {
      if (o.empty()) continue;
      if (!out.Find(o)) {
        return absl::UnimplementedError(absl::StrCat("cannot resolve the shape of '", o, "' (output of ",
                                                     n.Describe(), ") for fixed input dims"));
      }
    }
  }
  return out;
}

}  // namespace hepml::codegen
