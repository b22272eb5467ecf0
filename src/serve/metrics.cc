#include "serve/metrics.h"

#include "absl/strings/str_cat.h"

namespace hepml::serve {
namespace {

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string RenderMetrics(const ModelRepository& repository) {
  struct Sample {
    std::string labels;
    ModelStats stats;
    size_t pending;
  };
  std::vector<Sample> samples;
  for (const auto& m : repository.Loaded())
    samples.push_back({absl::StrCat("{model=\"", Escape(m->name()), "\",version=\"", m->version(), "\"}"), m->stats(),
                       m->pending()});
  struct Family {
    const char* name;
    const char* help;
    const char* type;
    uint64_t (*value)(const Sample&);
  };
  static const Family kFamilies[] = {
      {"nv_inference_request_success", "Number of successful inference requests, all batch sizes", "counter",
       [](const Sample& s) { return s.stats.success.count; }},
      {"nv_inference_request_failure", "Number of failed inference requests, all batch sizes", "counter",
       [](const Sample& s) { return s.stats.fail.count; }},
      {"nv_inference_count", "Number of inferences performed (does not include cached requests)", "counter",
       [](const Sample& s) { return s.stats.inference_count; }},
      {"nv_inference_exec_count", "Number of model executions performed (does not include cached requests)",
       "counter", [](const Sample& s) { return s.stats.execution_count; }},
      {"nv_inference_request_duration_us", "Cumulative inference request duration in microseconds", "counter",
       [](const Sample& s) { return (s.stats.success.ns + s.stats.fail.ns) / 1000; }},
      {"nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds", "counter",
       [](const Sample& s) { return s.stats.queue.ns / 1000; }},
      {"nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds", "counter",
       [](const Sample& s) { return s.stats.compute_input.ns / 1000; }},
      {"nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds", "counter",
       [](const Sample& s) { return s.stats.compute_infer.ns / 1000; }},
      {"nv_inference_compute_output_duration_us", "Cumulative inference compute output duration in microseconds",
       "counter", [](const Sample& s) { return s.stats.compute_output.ns / 1000; }},
      {"nv_inference_pending_request_count", "Instantaneous number of pending requests awaiting execution per-model.",
       "gauge", [](const Sample& s) { return static_cast<uint64_t>(s.pending); }},
  };
  std::string out;
  for (const Family& f : kFamilies) {
    absl::StrAppend(&out, "# HELP ", f.name, " ", f.help, "\n# TYPE ", f.name, " ", f.type, "\n");
    for (const Sample& s : samples) absl::StrAppend(&out, f.name, s.labels, " ", f.value(s), "\n");
  }
  // Input drift, for the versions that measure it.
  std::string psi, windows, events;
  for (const auto& m : repository.Loaded()) {
    DriftSnapshot d = m->drift();
    if (!d.enabled) continue;
    std::string labels = absl::StrCat("{model=\"", Escape(m->name()), "\",version=\"", m->version(), "\"}");
    if (d.last) absl::StrAppend(&psi, "hepml_input_drift_psi", labels, " ", d.last->psi_max, "\n");
    absl::StrAppend(&windows, "hepml_input_drift_windows_total", labels, " ", d.windows, "\n");
    absl::StrAppend(&events, "hepml_input_drift_events_total", labels, " ", d.events, "\n");
  }
  if (!windows.empty()) {
    absl::StrAppend(&out,
                    "# HELP hepml_input_drift_psi Largest population stability index over the input features in the "
                    "last drift window\n# TYPE hepml_input_drift_psi gauge\n",
                    psi,
                    "# HELP hepml_input_drift_windows_total Drift windows completed\n"
                    "# TYPE hepml_input_drift_windows_total counter\n",
                    windows,
                    "# HELP hepml_input_drift_events_total Events compared with the drift reference\n"
                    "# TYPE hepml_input_drift_events_total counter\n",
                    events);
  }
  return out;
}

}  // namespace hepml::serve
