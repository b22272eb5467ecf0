// Input drift of a served model: how far the inputs it receives now have
// moved from a reference distribution, per input feature.
//
// Reference: the rows of `reference_file` (an .npz with one array per model
// input, [N, ...] like a batch; at most `reference_events` rows, spread
// evenly over the file) when given, else the first
// `reference_events` events the model serves. From it each feature (one
// element of an event's flattened input, the first `max_features` of each
// numeric input) gets decile bin edges and the reference share of each bin.
// Then every `window_events` events form a window whose bin shares are
// compared with the reference by the population stability index,
//   PSI = sum over bins of (p_window - p_ref) * ln(p_window / p_ref),
// shares smoothed by half an event per bin so an empty bin stays finite.
// PSI < 0.1 reads as stable, 0.1-0.25 as a moderate shift, above 0.25 as a
// significant one. A window's report carries the largest PSI over the
// features (the model's drift figure) with the feature that gave it, and
// the mean.
//
// Thread safety: Observe and Snapshot may be called from any thread.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hepml/session.h"
#include "hepml/status.h"
#include "model_config.pb.h"

namespace hepml::serve {

struct DriftOptions {
  int64_t window_events = 0;  // 0: drift is not measured
  int64_t reference_events = 10000;
  std::string reference_file;  // .npz; empty: the first events served
  int max_features = 256;      // per input
  int bins = 10;
};

// Reads the per-model settings from config.pbtxt `parameters`
// (hepml.drift_window, hepml.drift_reference_events, hepml.drift_reference:
// an .npz path relative to the model folder) over the server's defaults.
absl::StatusOr<DriftOptions> DriftOptionsFor(const inference::ModelConfig& config, const std::string& model_dir,
                                             DriftOptions defaults);

struct DriftReport {
  int64_t window = 0;  // 1 for the first window after the reference
  int64_t events = 0;  // in this window
  double psi_max = 0;
  double psi_mean = 0;
  std::string worst_input;
  int64_t worst_feature = 0;
};

struct DriftSnapshot {
  bool enabled = false;
  bool reference_ready = false;
  int64_t reference_events = 0;  // collected so far (or read from the file)
  int64_t events = 0;            // observed since the reference was complete
  int64_t windows = 0;
  std::optional<DriftReport> last;
};

class DriftMonitor {
 public:
  // The config's inputs fix which inputs are watched (numeric ones) and their
  // per-event size; `batched` when the config has max_batch_size > 0.
  static absl::StatusOr<std::unique_ptr<DriftMonitor>> Create(const DriftOptions& options,
                                                              const inference::ModelConfig& config);

  // Counts the events of one checked request (inputs by name, batch-first
  // when batched). Returns the report of the window this call completed.
  std::optional<DriftReport> Observe(const Session::NamedTensors& inputs);
  DriftSnapshot Snapshot() const;

 private:
  struct Input {
    std::string name;
    int64_t event_size = 0;  // elements per event
    int features = 0;        // watched: min(event_size, max_features)
    std::vector<std::vector<float>> samples;  // reference phase, per feature
    std::vector<std::vector<float>> edges;    // per feature, ascending
    std::vector<std::vector<double>> ref;     // per feature, share per bin
    std::vector<std::vector<int64_t>> counts; // per feature, window counts per bin
    int64_t reference_rows = 0;  // events of this input in the reference
    int64_t window_rows = 0;     // events of this input in the current window
  };
  DriftMonitor(DriftOptions options, bool batched, std::vector<Input> inputs);
  // Adds events [begin, end) of `t` (as float) to the reference or window.
  void AddRows(Input& in, const Tensor& t, int64_t begin, int64_t end);
  void FinishReference();
  DriftReport CloseWindow();

  const DriftOptions options_;
  const bool batched_;
  mutable std::mutex mu_;
  std::vector<Input> inputs_;
  bool reference_ready_ = false;
  int64_t reference_events_ = 0;
  int64_t window_fill_ = 0;
  int64_t events_ = 0;
  int64_t windows_ = 0;
  std::optional<DriftReport> last_;
};

}  // namespace hepml::serve
