// hepml::Session: runs an ONNX model.
//
//   auto session = hepml::Session::Create("model.onnx");
//   if (!session.ok()) ...  // the status names what is wrong with the model
//   auto outputs = (*session)->Run({{"x", x}});
//
// Thread safety: after Create, a Session is immutable. Run may be called from
// any number of threads at once on one Session; each call has its own
// intermediate values. Dynamic dimensions (batch, number of particles, graph
// nodes and edges) may change from call to call.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hepml/status.h"
#include "oneapi/tbb/task_arena.h"
#include "hepml/tensor.h"

namespace hepml {

// Precision of a Session's compute. kFloat32 runs the model as written.
// kFloat16 and kBFloat16 are mixed precision: the compute-heavy operators
// (MatMul, Gemm, Conv, ConvTranspose, Einsum; LSTM, GRU and RNN at float16
// only) and simple operators between them (Relu, Add, Mul, MaxPool, Reshape,
// Concat, ...) run in the reduced type, and their float32 weights are stored
// in it (half the memory); everything else (Softmax, reductions,
// normalisation statistics, Exp, Log, Div, integer and bool operators, If/
// Loop/Scan bodies) stays float32. Graph inputs and outputs keep their
// declared types, so callers feed and read the same tensors at every
// precision.
//
// Accuracy: kernels compute in float and round where they store, so values
// carry a relative rounding error of up to 2^-9 (bfloat16) or 2^-12
// (float16) per converted layer; expect outputs within ~1e-2 (bfloat16) or
// ~1e-3 (float16) relative of float32. float16 overflows beyond 65504.
// Speed: until hepml has native reduced-precision kernels, the reduced
// types are converted to float inside each kernel, so they save memory but
// are not faster than float32.
enum class Precision { kFloat32, kFloat16, kBFloat16 };

// "fp32", "fp16", "bf16".
const char* PrecisionName(Precision precision);
// Parses "fp32", "fp16" or "bf16"; anything else is InvalidArgument naming
// the accepted values.
absl::StatusOr<Precision> ParsePrecision(std::string_view name);

struct SessionOptions {
  // Intra-op threads. 0: all of `arena` if given, else one per core.
  int num_threads = 0;
  // Run inside the caller's TBB arena (a framework's): hepml then creates no
  // threads of its own. Not owned; must outlive the Session.
  tbb::task_arena* arena = nullptr;
  // Graph passes (constant folding, dead-node removal, fusion) before
  // planning. `disabled_passes` switches single passes off by name.
  bool optimize = true;
  std::set<std::string> disabled_passes;
  // Plan intermediate memory per input shape (one arena, reused between
  // tensors that are not alive at once); off: one heap buffer per tensor.
  bool plan_memory = true;
  // See Precision. Not fp32: the "mixed-precision" pass runs after the
  // default passes (even with optimize off) and is listed in passes();
  // `disabled_passes` may name it to switch it off.
  Precision precision = Precision::kFloat32;
  // Batch-parallel execution. With more than one thread, a model whose
  // samples are computed independently (see BatchSplitInfo) runs a batch
  // large enough as one contiguous slice of rows per thread, each slice
  // through the whole graph on its own thread, instead of splitting each
  // operator over the threads: one fork/join per call instead of one per
  // layer. Results are bitwise those of one thread. Off: operators split
  // their own work, as for a model that is not separable.
  bool batch_split = true;
  // The fewest rows a slice may get; 0: from the model's estimated work
  // per sample (BatchSplitInfo::min_rows_per_slice). Either is raised to
  // more than two of the GEMM's row tiles (25 rows with AVX-512), which
  // keeps the outputs bitwise those of one thread.
  int64_t batch_split_min_rows = 0;
  // How long, in microseconds, the threads that ran a call's batch slices
  // keep waiting (spinning) for the next call's slices before they go back
  // to the arena. Back-to-back calls then find them awake instead of paying
  // for a wake-up (tens of microseconds on a virtual machine, as much as a
  // small model's slice), at the price of up to that much CPU after each
  // call. While they wait, a thread that finds itself on the calling
  // thread's CPU keeps off that CPU (its affinity without it, given back
  // when it stops waiting), or sleeps where it may run nowhere else.
  // -1: 50 when hepml owns its threads, 0 (no waiting, no affinity
  // changes) inside the caller's `arena`, whose cores stay the framework's.
  int slice_spin_us = -1;
};

// Whether a Session may run a batch as slices of rows (SessionOptions::
// batch_split), decided once at creation from the graph after the passes.
// Separable: every fed input and every output has the samples along axis 0
// and every node computes a sample from that sample alone (Gemm/MatMul with
// constant weights, elementwise operators whose other operands do not vary
// along axis 0, Softmax/LayerNormalization not over axis 0, Concat/Split/
// Slice/Reshape/Flatten/Transpose that keep axis 0, Conv, pooling, ...).
// The analysis is conservative: what it cannot prove is not separable.
struct BatchSplitInfo {
  bool separable = false;
  // Not separable: the input, output or node at fault and why.
  std::string reason;
  // Estimated work per sample (multiply-adds plus elements written).
  double work_per_sample = 0;
  // The fewest rows worth a slice: a smaller batch runs as one slice.
  int64_t min_rows_per_slice = 0;
};

// What one graph pass did when the Session was created.
struct PassInfo {
  std::string name;
  double milliseconds = 0;
  bool changed = false;
  bool skipped = false;
};

// A graph input or output as the caller sees it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  // -1 for a dimension not fixed by the model; dim_names holds its symbol.
  std::vector<int64_t> shape;
  std::vector<std::string> dim_names;
  bool has_shape = false;  // false: rank not declared
  // "tensor", "sequence" or "optional" (the latter two hold element dtype).
  std::string kind = "tensor";
};

// One node execution recorded by a profiled Run.
struct ProfileEvent {
  std::string node;     // node name (or its description when unnamed)
  std::string op_type;  // "Conv", "com.microsoft.FusedGemm", ...
  int depth = 0;        // 0 for the main graph, 1+ inside If/Loop/Scan bodies
  int64_t start_ns = 0;     // since the start of the Run call
  int64_t duration_ns = 0;
};

// Per-call profile: pass one to Run to have every node execution timed.
struct RunProfile {
  std::vector<ProfileEvent> events;
  int64_t total_ns = 0;
  // Greater than 1: the call ran its batch as this many slices of rows in
  // parallel (SessionOptions::batch_split), and `events` are those of the
  // first slice (the first rows) only.
  int batch_slices = 1;
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(const std::string& model_path,
                                                         const SessionOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Session>> CreateFromBytes(std::string_view model_bytes,
                                                                  const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  // The graph passes run at creation, in order, with their times.
  const std::vector<PassInfo>& passes() const;
  // Bytes held by the model's initializers (weights and other constants,
  // subgraphs included) after the passes: what the Session keeps of the model.
  size_t weight_bytes() const;
  // Whether large batches may run as slices on the Session's threads.
  const BatchSplitInfo& batch_split() const;

  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  // Runs the model. `output_names` empty: every graph output, in order.
  // Errors name the input at fault (unknown name, wrong dtype, rank or a
  // dimension the model fixes) or the node that failed.
  absl::StatusOr<std::vector<Tensor>> Run(const NamedTensors& inputs,
                                          const std::vector<std::string>& output_names = {},
                                          RunProfile* profile = nullptr) const;
  // The same for models whose inputs or outputs are sequences or optionals.
  absl::StatusOr<std::vector<Value>> RunValues(const std::vector<std::pair<std::string, Value>>& inputs,
                                               const std::vector<std::string>& output_names = {},
                                               RunProfile* profile = nullptr) const;

  class Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hepml
