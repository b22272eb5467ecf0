#include "serve/drift.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/npy.h"

namespace hepml::serve {
namespace {

absl::Status ParseCount(const inference::ModelConfig& config, const char* key, int64_t min, int64_t* out) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return absl::OkStatus();
  int64_t n = 0;
  if (!absl::SimpleAtoi(it->second.string_value(), &n) || n < min) {
    return absl::InvalidArgumentError(absl::StrCat("parameter ", key, " '", it->second.string_value(),
                                                   "' is not a count (at least ", min, ")"));
  }
  *out = n;
  return absl::OkStatus();
}

// Calls f(const T* data) with the tensor's elements, for the numeric dtypes
// drift is measured on; false for the others.
template <typename F>
bool VisitNumeric(const Tensor& t, F&& f) {
  switch (t.dtype()) {
    case DType::kFloat32: f(t.data<float>()); return true;
    case DType::kFloat64: f(t.data<double>()); return true;
    case DType::kInt32: f(t.data<int32_t>()); return true;
    case DType::kInt64: f(t.data<int64_t>()); return true;
    case DType::kInt16: f(t.data<int16_t>()); return true;
    case DType::kInt8: f(t.data<int8_t>()); return true;
    case DType::kUInt8: f(t.data<uint8_t>()); return true;
    default: return false;
  }
}

// Index of the bin of v: the number of edges below v.
int BinOf(const std::vector<float>& edges, float v) {
  return static_cast<int>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
}

}  // namespace

absl::StatusOr<DriftOptions> DriftOptionsFor(const inference::ModelConfig& config, const std::string& model_dir,
                                             DriftOptions options) {
  HEPML_RETURN_IF_ERROR(ParseCount(config, "hepml.drift_window", 0, &options.window_events));
  HEPML_RETURN_IF_ERROR(ParseCount(config, "hepml.drift_reference_events", 1, &options.reference_events));
  auto it = config.parameters().find("hepml.drift_reference");
  if (it != config.parameters().end()) {
    std::filesystem::path p(it->second.string_value());
    if (p.empty()) return absl::InvalidArgumentError("parameter hepml.drift_reference is empty");
    options.reference_file = p.is_absolute() ? p.string() : (std::filesystem::path(model_dir) / p).string();
  }
  return options;
}

absl::StatusOr<std::unique_ptr<DriftMonitor>> DriftMonitor::Create(const DriftOptions& options,
                                                                   const inference::ModelConfig& config) {
  if (options.window_events <= 0) return absl::InvalidArgumentError("drift window must be at least one event");
  if (options.bins < 2) return absl::InvalidArgumentError("drift needs at least two bins");
  const bool batched = config.max_batch_size() > 0;
  std::vector<Input> inputs;
  for (const auto& in : config.input()) {
    Input input;
    input.name = in.name();
    int64_t size = 1;
    for (int64_t d : in.dims()) size = d < 0 ? -1 : (size < 0 ? -1 : size * d);
    input.event_size = size < 0 ? 0 : size;  // 0: taken from the first request
    input.features = size < 0 ? 0 : static_cast<int>(std::min<int64_t>(size, options.max_features));
    input.samples.resize(input.features);
    inputs.push_back(std::move(input));
  }
  std::unique_ptr<DriftMonitor> m(new DriftMonitor(options, batched, std::move(inputs)));
  if (!options.reference_file.empty()) {
    HEPML_ASSIGN_OR_RETURN(auto arrays, ReadNpz(options.reference_file));
    int64_t rows = -1;
    for (Input& in : m->inputs_) {
      auto a = std::find_if(arrays.begin(), arrays.end(), [&](const auto& p) { return p.first == in.name; });
      if (a == arrays.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("drift reference ", options.reference_file, " has no array '", in.name, "'"));
      }
      const Tensor& t = a->second;
      if (t.rank() < 1 || t.dim(0) < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("drift reference ", options.reference_file, ": array '", in.name, "' has no rows"));
      }
      if (rows >= 0 && t.dim(0) != rows) {
        return absl::InvalidArgumentError(absl::StrCat("drift reference ", options.reference_file,
                                                       ": arrays have different row counts (", rows, " and ",
                                                       t.dim(0), " in '", in.name, "')"));
      }
      rows = t.dim(0);
      const int64_t per_row = t.size() / rows;
      if (in.event_size == 0) {
        in.event_size = per_row;
        in.features = static_cast<int>(std::min<int64_t>(per_row, options.max_features));
        in.samples.resize(in.features);
      }
      if (per_row != in.event_size) {
        return absl::InvalidArgumentError(absl::StrCat("drift reference ", options.reference_file, ": array '",
                                                       in.name, "' has ", per_row, " values per row; the model's input takes ",
                                                       in.event_size));
      }
      if (!VisitNumeric(t, [](const auto*) {})) {
        return absl::InvalidArgumentError(absl::StrCat("drift reference ", options.reference_file, ": array '",
                                                       in.name, "' is ", DTypeName(t.dtype()), ", not numeric"));
      }
      // At most reference_events rows, spread evenly over the file.
      const int64_t take = std::min(rows, options.reference_events);
      for (int64_t k = 0; k < take; ++k) {
        const int64_t r = k * rows / take;
        m->AddRows(in, t, r, r + 1);
      }
    }
    m->reference_events_ = std::min(rows, options.reference_events);
    m->FinishReference();
  }
  return m;
}

DriftMonitor::DriftMonitor(DriftOptions options, bool batched, std::vector<Input> inputs)
    : options_(std::move(options)), batched_(batched), inputs_(std::move(inputs)) {}

void DriftMonitor::AddRows(Input& in, const Tensor& t, int64_t begin, int64_t end) {
  (reference_ready_ ? in.window_rows : in.reference_rows) += end - begin;
  VisitNumeric(t, [&](const auto* data) {
    for (int64_t r = begin; r < end; ++r) {
      const auto* row = data + r * in.event_size;
      if (!reference_ready_) {
        for (int f = 0; f < in.features; ++f) in.samples[f].push_back(static_cast<float>(row[f]));
      } else {
        for (int f = 0; f < in.features; ++f) ++in.counts[f][BinOf(in.edges[f], static_cast<float>(row[f]))];
      }
    }
  });
}

void DriftMonitor::FinishReference() {
  const int bins = options_.bins;
  for (Input& in : inputs_) {
    in.edges.assign(in.features, {});
    in.ref.assign(in.features, {});
    in.counts.assign(in.features, {});
    for (int f = 0; f < in.features; ++f) {
      std::vector<float>& s = in.samples[f];
      std::sort(s.begin(), s.end());
      std::vector<float>& e = in.edges[f];
      if (!s.empty()) {
        for (int b = 1; b < bins; ++b) e.push_back(s[(s.size() - 1) * b / bins]);
        e.erase(std::unique(e.begin(), e.end()), e.end());
        // A value taken by many events gets a bin of its own: the edge just
        // below it separates smaller values from it.
        std::vector<float> below;
        for (float x : e) {
          float lower = std::nextafter(x, -std::numeric_limits<float>::infinity());
          if (std::binary_search(s.begin(), s.end(), x) && (below.empty() || below.back() < lower) &&
              std::upper_bound(s.begin(), s.end(), x) - std::lower_bound(s.begin(), s.end(), x) >
                  static_cast<std::ptrdiff_t>(s.size() / bins)) {
            below.push_back(lower);
          }
        }
        e.insert(e.end(), below.begin(), below.end());
        std::sort(e.begin(), e.end());
        e.erase(std::unique(e.begin(), e.end()), e.end());
      }
      std::vector<int64_t> counts(e.size() + 1, 0);
      for (float x : s) ++counts[BinOf(e, x)];
      const double n = static_cast<double>(s.size()) + 0.5 * static_cast<double>(counts.size());
      for (int64_t c : counts) in.ref[f].push_back((static_cast<double>(c) + 0.5) / n);
      in.counts[f].assign(counts.size(), 0);
      std::vector<float>().swap(s);
    }
  }
  reference_ready_ = true;
}

DriftReport DriftMonitor::CloseWindow() {
  DriftReport r;
  r.window = ++windows_;
  r.events = window_fill_;
  double sum = 0;
  int64_t n = 0;
  bool first = true;
  for (Input& in : inputs_) {
    // An input never seen in the reference or in this window (an optional
    // input, or one whose tensors were not numeric) has nothing to compare.
    const int64_t rows = in.window_rows;
    in.window_rows = 0;
    if (rows == 0 || in.reference_rows == 0) {
      for (auto& c : in.counts) std::fill(c.begin(), c.end(), 0);
      continue;
    }
    for (int f = 0; f < in.features; ++f) {
      std::vector<int64_t>& c = in.counts[f];
      const double total = static_cast<double>(rows) + 0.5 * static_cast<double>(c.size());
      double psi = 0;
      for (size_t b = 0; b < c.size(); ++b) {
        const double p = (static_cast<double>(c[b]) + 0.5) / total;
        psi += (p - in.ref[f][b]) * std::log(p / in.ref[f][b]);
      }
      std::fill(c.begin(), c.end(), 0);
      sum += psi;
      ++n;
      if (first || psi > r.psi_max) {
        r.psi_max = psi;
        r.worst_input = in.name;
        r.worst_feature = f;
        first = false;
      }
    }
  }
  r.psi_mean = n ? sum / static_cast<double>(n) : 0;
  window_fill_ = 0;
  last_ = r;
  return r;
}

std::optional<DriftReport> DriftMonitor::Observe(const Session::NamedTensors& inputs) {
  // Rows of this request, and each watched input's tensor (skipped when it is
  // not numeric or its events are shorter than the watched features).
  int64_t rows = 1;
  std::vector<const Tensor*> tensors(inputs_.size(), nullptr);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Input& in = inputs_[i];
    for (const auto& [name, t] : inputs) {
      if (name != in.name) continue;
      const int64_t r = batched_ ? (t.rank() > 0 ? t.dim(0) : 0) : 1;
      if (r <= 0) break;
      rows = r;
      const int64_t per_row = t.size() / r;
      if (in.event_size == 0 && !reference_ready_ && reference_events_ == 0) {
        in.event_size = per_row;
        in.features = static_cast<int>(std::min<int64_t>(per_row, options_.max_features));
        in.samples.resize(in.features);
      }
      if (per_row == in.event_size && VisitNumeric(t, [](const auto*) {})) tensors[i] = &t;
      break;
    }
  }
  std::optional<DriftReport> report;
  int64_t done = 0;
  while (done < rows) {
    int64_t take = rows - done;
    if (!reference_ready_) take = std::min(take, options_.reference_events - reference_events_);
    else take = std::min(take, options_.window_events - window_fill_);
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (tensors[i] == nullptr) continue;
      AddRows(inputs_[i], *tensors[i], done, done + take);
    }
    done += take;
    if (!reference_ready_) {
      reference_events_ += take;
      if (reference_events_ >= options_.reference_events) FinishReference();
    } else {
      window_fill_ += take;
      events_ += take;
      if (window_fill_ >= options_.window_events) report = CloseWindow();
    }
  }
  return report;
}

DriftSnapshot DriftMonitor::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  DriftSnapshot s;
  s.enabled = true;
  s.reference_ready = reference_ready_;
  s.reference_events = reference_events_;
  s.events = events_;
  s.windows = windows_;
  s.last = last_;
  return s;
}

}  // namespace hepml::serve
