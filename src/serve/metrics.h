// Prometheus text exposition of the served models' statistics, with
// Triton's metric names and labels (model, version), so dashboards written
// for Triton read hepml unchanged.
#pragma once

#include <string>

#include "serve/repository.h"

namespace hepml::serve {

// nv_inference_request_success, nv_inference_request_failure,
// nv_inference_count, nv_inference_exec_count (counters) and the
// cumulative durations nv_inference_request_duration_us,
// nv_inference_queue_duration_us, nv_inference_compute_input_duration_us,
// nv_inference_compute_infer_duration_us,
// nv_inference_compute_output_duration_us (microseconds), plus the gauge
// nv_inference_pending_request_count, one sample per loaded model version.
std::string RenderMetrics(const ModelRepository& repository);

}  // namespace hepml::serve
