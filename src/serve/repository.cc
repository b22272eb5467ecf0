#include "serve/repository.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serve/model_config.h"

namespace hepml::serve {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

uint64_t NanosSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

uint64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DimsString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

// Resolves one -1 of `dims` so that it holds `elements` elements.
absl::StatusOr<Shape> Resolve(const std::vector<int64_t>& dims, int64_t elements) {
  Shape shape(dims.begin(), dims.end());
  int64_t known = 1;
  int unknown = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (unknown >= 0) return absl::InvalidArgumentError("reshape has more than one -1");
      unknown = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (unknown >= 0) {
    if (known == 0 || elements % known != 0)
      return absl::InvalidArgumentError(absl::StrCat(elements, " elements do not fit ", DimsString(dims)));
    shape[unknown] = elements / known;
  } else if (known != elements) {
    return absl::InvalidArgumentError(absl::StrCat(elements, " elements do not fit ", DimsString(dims)));
  }
  return shape;
}

void Log(const ServerOptions& options, const std::string& line) {
  if (options.log)
    options.log(line);
  else
    std::cerr << line << std::endl;
}

}  // namespace

// ---------------------------------------------------------------------------
// ModelVersion

ModelVersion::ModelVersion(int64_t version, inference::ModelConfig config, std::unique_ptr<Session> session)
    : version_(version), config_(std::move(config)), session_(std::move(session)) {
  BatcherOptions options;
  options.max_batch_size = config_.max_batch_size();
  options.dynamic = config_.has_dynamic_batching();
  const auto& db = config_.dynamic_batching();
  options.preferred_batch_sizes.assign(db.preferred_batch_size().begin(), db.preferred_batch_size().end());
  options.max_queue_delay_us = static_cast<int64_t>(db.max_queue_delay_microseconds());
  options.max_queue_size = db.default_queue_policy().max_queue_size();
  if (db.default_queue_policy().timeout_action() == inference::ModelQueuePolicy::REJECT)
    options.queue_timeout_us = static_cast<int64_t>(db.default_queue_policy().default_timeout_microseconds());
  int instances = 0;
  for (const auto& g : config_.instance_group()) instances += std::max(1, g.count());
  options.instances = std::max(1, instances);
  Session* session_ptr = session_.get();
  batcher_ = std::make_unique<Batcher>(
      options,
      [session_ptr](const Session::NamedTensors& inputs, const std::vector<std::string>& outputs, int) {
        return session_ptr->Run(inputs, outputs);
      },
      [this](const ExecutionReport& r) {
        if (!r.ok) return;
        int64_t ns = r.compute_input_ns + r.compute_infer_ns + r.compute_output_ns;
        int64_t prev = recent_execution_ns_.load(std::memory_order_relaxed);
        recent_execution_ns_.store(prev < 0 ? ns : (prev * 7 + ns) / 8, std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.execution_count;
        ModelStats::Batch& b = stats_.batches[r.batch_size];
        b.compute_input.Add(r.compute_input_ns);
        b.compute_infer.Add(r.compute_infer_ns);
        b.compute_output.Add(r.compute_output_ns);
      });
}

ModelVersion::~ModelVersion() { Shutdown(); }

void ModelVersion::Shutdown() {
  if (batcher_) batcher_->Shutdown();
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelVersion::Load(const std::string& path, int64_t version,
                                                                  const inference::ModelConfig& config) {
  SessionOptions options;
  options.num_threads = 1;
  auto it = config.parameters().find("intra_op_thread_count");
  if (it != config.parameters().end()) {
    int n = 0;
    if (!absl::SimpleAtoi(it->second.string_value(), &n) || n < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("parameter intra_op_thread_count '", it->second.string_value(), "' is not a count"));
    options.num_threads = n;
  }
  HEPML_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, Session::Create(path, options));
  inference::ModelConfig completed = config;
  HEPML_RETURN_IF_ERROR(CompleteModelConfig(config.name(), *session, &completed));
  return std::shared_ptr<ModelVersion>(new ModelVersion(version, std::move(completed), std::move(session)));
}

absl::StatusOr<BatchItem> ModelVersion::Prepare(InferRequest& request) const {
  const std::string& model = config_.name();
  const bool batched = config_.max_batch_size() > 0;
  BatchItem item;
  std::set<std::string> known;
  for (const auto& in : config_.input()) known.insert(in.name());
  std::set<std::string> seen;
  for (const auto& [name, t] : request.inputs) {
    if (!known.count(name))
      return absl::InvalidArgumentError(absl::StrCat("unexpected inference input '", name, "' for model '", model, "'"));
    if (!seen.insert(name).second)
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is given more than once"));
  }
  int64_t batch = -1;
  for (const auto& in : config_.input()) {
    auto found = std::find_if(request.inputs.begin(), request.inputs.end(),
                              [&](const auto& p) { return p.first == in.name(); });
    if (found == request.inputs.end()) {
      if (in.optional()) continue;
      return absl::InvalidArgumentError(absl::StrCat("expected ", config_.input_size(), " inputs but got ",
                                                     request.inputs.size(), " inputs for model '", model,
                                                     "': input '", in.name(), "' is missing"));
    }
    Tensor& t = found->second;
    DType want = *DTypeFromConfig(in.data_type());
    if (t.dtype() != want)
      return absl::InvalidArgumentError(absl::StrCat("inference input '", in.name(), "' data-type is '",
                                                     ProtocolDataTypeName(t.dtype()), "', but model '", model,
                                                     "' expects '", ProtocolDataTypeName(want), "'"));
    std::vector<int64_t> expected = ProtocolShape(config_, in.dims());
    bool match = static_cast<size_t>(t.rank()) == expected.size();
    for (size_t i = 0; match && i < expected.size(); ++i)
      if (expected[i] != -1 && expected[i] != t.dim(static_cast<int>(i))) match = false;
    if (!match)
      return absl::InvalidArgumentError(absl::StrCat("unexpected shape for input '", in.name(), "' for model '",
                                                     model, "'. Expected ", DimsString(expected), ", got ",
                                                     ShapeToString(t.shape())));
    if (batched) {
      if (batch >= 0 && t.dim(0) != batch)
        return absl::InvalidArgumentError(
            absl::StrCat("input '", in.name(), "' has batch size ", t.dim(0), " but another input has ", batch));
      batch = t.dim(0);
    }
    if (in.has_reshape()) {
      std::vector<int64_t> dims(in.reshape().shape().begin(), in.reshape().shape().end());
      if (batched) dims.insert(dims.begin(), batch);
      HEPML_ASSIGN_OR_RETURN(Shape shape, Resolve(dims, t.size()));
      t = t.Reshaped(shape);
    }
    item.inputs.emplace_back(in.name(), std::move(t));
  }
  if (batched && (batch < 1 || batch > config_.max_batch_size()))
    return absl::InvalidArgumentError(absl::StrCat("inference request batch-size must be <= ",
                                                   config_.max_batch_size(), " for '", model, "' (got ", batch, ")"));
  if (request.outputs.empty()) {
    for (const auto& out : config_.output()) item.output_names.push_back(out.name());
  } else {
    std::set<std::string> outs;
    for (const auto& out : config_.output()) outs.insert(out.name());
    for (const std::string& name : request.outputs) {
      if (!outs.count(name))
        return absl::InvalidArgumentError(absl::StrCat("unexpected inference output '", name, "' for model '", model, "'"));
      item.output_names.push_back(name);
    }
  }
  return item;
}

void ModelVersion::RecordFailure(uint64_t ns) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  stats_.fail.Add(ns);
  stats_.last_inference_ms = NowMillis();
}

void ModelVersion::EnableDrift(
    std::unique_ptr<DriftMonitor> monitor,
    std::function<void(const std::string& model, int64_t version, const DriftReport&)> on_window) {
  drift_ = std::move(monitor);
  on_drift_ = std::move(on_window);
}

void ModelVersion::InferAsync(InferRequest request, InferCallback done, bool may_run_here) {
  auto start = Clock::now();
  absl::StatusOr<BatchItem> item = Prepare(request);
  if (!item.ok()) {
    RecordFailure(NanosSince(start));
    done(item.status());
    return;
  }
  if (drift_) {
    if (std::optional<DriftReport> report = drift_->Observe(item->inputs); report && on_drift_) {
      on_drift_(config_.name(), version_, *report);
    }
  }
  auto response = std::make_shared<InferResponse>();
  response->model_name = config_.name();
  response->model_version = absl::StrCat(version_);
  response->id = std::move(request.id);
  int64_t batch = config_.max_batch_size() > 0 ? item->inputs.front().second.dim(0) : 1;
  std::vector<std::string> names = item->output_names;
  // The callback runs on a batcher thread; `this` outlives it (the batcher
  // drains before the ModelVersion goes).
  item->done = [this, start, batch, names, response, done](absl::StatusOr<std::vector<Tensor>> outputs,
                                                           const RequestTiming& timing) {
    if (outputs.ok()) {
      for (size_t i = 0; i < names.size() && i < outputs->size(); ++i) {
        Tensor& t = (*outputs)[i];
        for (const auto& out : config_.output()) {
          if (out.name() != names[i] || !out.has_reshape()) continue;
          std::vector<int64_t> dims(out.dims().begin(), out.dims().end());
          if (config_.max_batch_size() > 0) dims.insert(dims.begin(), batch);
          auto shape = Resolve(dims, t.size());
          if (!shape.ok()) {
            outputs = absl::InternalError(absl::StrCat("output '", names[i], "': ", shape.status().message()));
            break;
          }
          t = t.Reshaped(*shape);
        }
        if (!outputs.ok()) break;
        response->outputs.emplace_back(names[i], t);
      }
    }
    uint64_t total = NanosSince(start);
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.last_inference_ms = NowMillis();
      if (outputs.ok()) {
        stats_.success.Add(total);
        stats_.queue.Add(timing.queue_ns);
        stats_.compute_input.Add(timing.compute_input_ns);
        stats_.compute_infer.Add(timing.compute_infer_ns);
        stats_.compute_output.Add(timing.compute_output_ns);
        stats_.inference_count += batch;
      } else {
        stats_.fail.Add(total);
      }
    }
    if (outputs.ok())
      done(std::move(*response));
    else
      done(outputs.status());
  };
  absl::Status submitted = batcher_->Submit(std::move(*item), may_run_here);
  if (!submitted.ok()) {
    RecordFailure(NanosSince(start));
    done(submitted);
  }
}

absl::StatusOr<InferResponse> ModelVersion::Infer(InferRequest request) {
  std::promise<absl::StatusOr<InferResponse>> promise;
  auto future = promise.get_future();
  InferAsync(
      std::move(request), [&promise](absl::StatusOr<InferResponse> r) { promise.set_value(std::move(r)); }, true);
  return future.get();
}

ModelStats ModelVersion::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

// ---------------------------------------------------------------------------
// ModelRepository

std::string ModelFolderSignature(const std::string& dir) {
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    auto size = it->file_size(e2);
    auto time = fs::last_write_time(it->path(), e2).time_since_epoch().count();
    parts.push_back(absl::StrCat(it->path().string(), ":", size, ":", time));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, "|");
}

ModelRepository::ModelRepository(ServerOptions options) : options_(std::move(options)) {}

ModelRepository::~ModelRepository() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Create(const ServerOptions& options) {
  if (options.model_repositories.empty())
    return absl::InvalidArgumentError("no model repository given (--model-repository DIR)");
  for (const std::string& repo : options.model_repositories) {
    std::error_code ec;
    if (!fs::is_directory(repo, ec))
      return absl::NotFoundError(absl::StrCat("model repository '", repo, "' is not a folder"));
  }
  std::unique_ptr<ModelRepository> repo(new ModelRepository(options));
  HEPML_ASSIGN_OR_RETURN(auto found, repo->Scan());
  std::set<std::string> wanted;
  bool all = options.model_control_mode != ModelControlMode::kExplicit;
  for (const std::string& m : options.startup_models) {
    if (m == "*")
      all = true;
    else
      wanted.insert(m);
  }
  bool missing = false;
  for (const std::string& m : wanted)
    if (!found.count(m) && !all) {
      Log(options, absl::StrCat("model '", m, "' (--load-model) is not in any model repository"));
      missing = true;
    }
  {
    std::lock_guard<std::mutex> load_lock(repo->load_mu_);
    for (const auto& [name, dir] : found) {
      if (!all && !wanted.count(name)) continue;
      (void)repo->LoadModel(name, dir);
    }
  }
  {
    std::lock_guard<std::mutex> lock(repo->mu_);
    repo->startup_missing_ = missing;
  }
  if (options.model_control_mode == ModelControlMode::kPoll) {
    ModelRepository* self = repo.get();
    repo->poller_ = std::thread([self] {
      std::unique_lock<std::mutex> lock(self->poll_mu_);
      while (!self->poll_stop_) {
        self->poll_cv_.wait_for(lock, std::chrono::seconds(std::max(1, self->options_.repository_poll_secs)));
        if (self->poll_stop_) break;
        lock.unlock();
        self->Poll();
        lock.lock();
      }
    });
  }
  return repo;
}

absl::StatusOr<std::map<std::string, std::string>> ModelRepository::Scan() const {
  std::map<std::string, std::string> found;
  for (const std::string& repo : options_.model_repositories) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(repo, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code e2;
      if (!it->is_directory(e2)) continue;
      std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      if (found.count(name))
        return absl::InvalidArgumentError(absl::StrCat("model '", name, "' is in two repositories: ", found[name],
                                                       " and ", it->path().string()));
      found[name] = it->path().string();
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("model repository '", repo, "': ", ec.message()));
  }
  return found;
}

absl::Status ModelRepository::LoadModel(const std::string& name, const std::string& dir,
                                        std::map<int64_t, std::shared_ptr<ModelVersion>>* replaced) {
  std::string signature = ModelFolderSignature(dir);
  auto fail = [&](const absl::Status& st) {
    std::string reason(st.message());
    bool serving = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Entry& entry = models_[name];
      serving = !entry.versions.empty();
      if (!serving) {
        entry.state = "UNAVAILABLE";
        entry.reason = reason;
        entry.failed = true;
      }
      entry.signature = signature;  // polling retries once the files change
    }
    // A failed reload leaves the versions already loaded serving.
    Log(options_, absl::StrCat("model '", name, "' failed to load: ", reason,
                               serving ? " (the loaded versions stay in service)" : ""));
    return absl::InvalidArgumentError(absl::StrCat("failed to load '", name, "': ", reason));
  };
  inference::ModelConfig config;
  fs::path config_path = fs::path(dir) / "config.pbtxt";
  std::error_code ec;
  if (fs::exists(config_path, ec)) {
    std::ifstream in(config_path);
    std::stringstream text;
    text << in.rdbuf();
    std::vector<std::string> ignored;
    auto parsed = ParseModelConfig(text.str(), &ignored);
    if (!parsed.ok()) return fail(parsed.status());
    config = std::move(*parsed);
    for (const std::string& w : ignored) Log(options_, absl::StrCat("model '", name, "': config.pbtxt ", w, " (ignored)"));
  }
  if (config.name().empty()) config.set_name(name);
  if (config.name() != name)
    return fail(absl::InvalidArgumentError(
        absl::StrCat("config.pbtxt names the model '", config.name(), "' but its folder is '", name, "'")));
  // Versions on disk: numeric folders.
  std::vector<int64_t> on_disk;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    int64_t v = 0;
    std::error_code e2;
    if (it->is_directory(e2) && absl::SimpleAtoi(it->path().filename().string(), &v) && v >= 0) on_disk.push_back(v);
  }
  std::sort(on_disk.begin(), on_disk.end());
  std::vector<int64_t> chosen;
  const auto& policy = config.version_policy();
  if (policy.has_all()) {
    chosen = on_disk;
  } else if (policy.has_specific()) {
    for (int64_t v : policy.specific().versions()) {
      if (!std::binary_search(on_disk.begin(), on_disk.end(), v))
        return fail(absl::NotFoundError(absl::StrCat("version ", v, " (version_policy specific) has no folder")));
      chosen.push_back(v);
    }
  } else {
    size_t n = policy.has_latest() && policy.latest().num_versions() > 0 ? policy.latest().num_versions() : 1;
    for (size_t i = 0; i < n && i < on_disk.size(); ++i) chosen.push_back(on_disk[on_disk.size() - 1 - i]);
  }
  if (chosen.empty())
    return fail(absl::NotFoundError(absl::StrCat("no version folder (", dir, "/<version>/",
                                                 config.default_model_filename().empty() ? "model.onnx"
                                                                                         : config.default_model_filename(),
                                                 ")")));
  std::string file = config.default_model_filename().empty() ? "model.onnx" : config.default_model_filename();
  std::map<int64_t, std::shared_ptr<ModelVersion>> versions;
  for (int64_t v : chosen) {
    std::string path = (fs::path(dir) / std::to_string(v) / file).string();
    auto loaded = ModelVersion::Load(path, v, config);
    if (!loaded.ok())
      return fail(absl::InvalidArgumentError(absl::StrCat("version ", v, ": ", loaded.status().message())));
    DriftOptions defaults;
    defaults.window_events = options_.drift_window;
    defaults.reference_events = options_.drift_reference_events;
    absl::StatusOr<DriftOptions> drift = DriftOptionsFor(config, dir, defaults);
    if (!drift.ok()) return fail(drift.status());
    if (drift->window_events > 0) {
      auto monitor = DriftMonitor::Create(*drift, (*loaded)->config());
      if (!monitor.ok()) return fail(monitor.status());
      auto on_drift = options_.on_drift;
      (*loaded)->EnableDrift(std::move(*monitor),
                             [on_drift](const std::string& model, int64_t version, const DriftReport& r) {
                               if (on_drift) on_drift(model, version, r.psi_max);
                             });
    }
    versions[v] = std::move(*loaded);
  }
  for (const auto& [v, m] : versions)
    Log(options_, absl::StrCat("model '", name, "' version ", v, " loaded (max_batch_size ",
                               m->config().max_batch_size(),
                               m->config().has_dynamic_batching() ? ", dynamic batching" : "", ")"));
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& entry = models_[name];
    old = std::move(entry.versions);
    entry.versions = std::move(versions);
    entry.state = "READY";
    entry.reason.clear();
    entry.failed = false;
    entry.signature = signature;
  }
  if (replaced) {
    *replaced = std::move(old);
    return absl::OkStatus();
  }
  // The old versions are out of reach now: finish what they queued.
  for (auto& [v, m] : old) m->Shutdown();
  return absl::OkStatus();
}

absl::Status ModelRepository::Reload(const std::string& name, int retire_grace_ms) {
  HEPML_ASSIGN_OR_RETURN(auto found, Scan());
  auto it = found.find(name);
  if (it == found.end())
    return absl::NotFoundError(absl::StrCat("failed to load '", name, "': no model folder of that name in the repositories"));
  std::map<int64_t, std::shared_ptr<ModelVersion>> replaced;
  {
    std::lock_guard<std::mutex> load_lock(load_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shut_down_) return absl::UnavailableError("the server is shutting down");
    }
    HEPML_RETURN_IF_ERROR(LoadModel(name, it->second, &replaced));
  }
  // A request that took a replaced version just before the swap queues on it
  // within this window; then the version finishes what it queued.
  if (!replaced.empty() && retire_grace_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(retire_grace_ms));
  for (auto& [v, m] : replaced) m->Shutdown();
  return absl::OkStatus();
}

void ModelRepository::UnloadModel(const std::string& name, const std::string& reason) {
  std::map<int64_t, std::shared_ptr<ModelVersion>> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& entry = models_[name];
    old = std::move(entry.versions);
    entry.versions.clear();
    entry.state = "UNAVAILABLE";
    entry.reason = reason;
    entry.failed = false;
    entry.signature.clear();
  }
  for (auto& [v, m] : old) m->Shutdown();
}

absl::Status ModelRepository::Load(const std::string& name) {
  if (options_.model_control_mode != ModelControlMode::kExplicit)
    return absl::FailedPreconditionError("explicit model load / unload is not allowed unless the server runs with --model-control-mode explicit");
  HEPML_ASSIGN_OR_RETURN(auto found, Scan());
  auto it = found.find(name);
  if (it == found.end())
    return absl::NotFoundError(absl::StrCat("failed to load '", name, "': no model folder of that name in the repositories"));
  std::lock_guard<std::mutex> load_lock(load_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return absl::UnavailableError("the server is shutting down");
  }
  return LoadModel(name, it->second);
}

absl::Status ModelRepository::Unload(const std::string& name) {
  if (options_.model_control_mode != ModelControlMode::kExplicit)
    return absl::FailedPreconditionError("explicit model load / unload is not allowed unless the server runs with --model-control-mode explicit");
  std::lock_guard<std::mutex> load_lock(load_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end() || it->second.versions.empty())
      return absl::NotFoundError(absl::StrCat("failed to unload '", name, "': the model is not loaded"));
  }
  UnloadModel(name, "unloaded");
  Log(options_, absl::StrCat("model '", name, "' unloaded"));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<ModelVersion>> ModelRepository::Get(const std::string& name,
                                                                   const std::string& version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("Request for unknown model: '", name, "' is not found"));
  const Entry& entry = it->second;
  if (entry.versions.empty())
    return absl::UnavailableError(absl::StrCat("Request for unknown model: '", name, "' is not ready",
                                               entry.reason.empty() ? "" : absl::StrCat(" (", entry.reason, ")")));
  if (version.empty()) return entry.versions.rbegin()->second;
  int64_t v = 0;
  if (!absl::SimpleAtoi(version, &v))
    return absl::InvalidArgumentError(absl::StrCat("model version '", version, "' is not a number"));
  auto vit = entry.versions.find(v);
  if (vit == entry.versions.end())
    return absl::NotFoundError(absl::StrCat("Request for unknown model: '", name, "' version ", version, " is not found"));
  return vit->second;
}

std::vector<int64_t> ModelRepository::Versions(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> out;
  auto it = models_.find(name);
  if (it != models_.end())
    for (const auto& [v, m] : it->second.versions) out.push_back(v);
  return out;
}

std::vector<std::shared_ptr<ModelVersion>> ModelRepository::Loaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ModelVersion>> out;
  for (const auto& [name, entry] : models_)
    for (const auto& [v, m] : entry.versions) out.push_back(m);
  return out;
}

std::vector<ModelIndexEntry> ModelRepository::Index(bool ready_only) const {
  auto found = Scan();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelIndexEntry> out;
  std::set<std::string> names;
  if (found.ok())
    for (const auto& [name, dir] : *found) names.insert(name);
  for (const auto& [name, entry] : models_) names.insert(name);
  for (const std::string& name : names) {
    auto it = models_.find(name);
    if (it == models_.end()) {
      if (!ready_only) out.push_back({name, "", "", ""});
      continue;
    }
    const Entry& entry = it->second;
    if (entry.versions.empty()) {
      if (!ready_only) out.push_back({name, "", entry.state, entry.reason});
      continue;
    }
    for (const auto& [v, m] : entry.versions) out.push_back({name, absl::StrCat(v), "READY", ""});
  }
  return out;
}

bool ModelRepository::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (startup_missing_ || shut_down_) return false;
  for (const auto& [name, entry] : models_)
    if (entry.failed) return false;
  return true;
}

void ModelRepository::Poll() {
  auto found = Scan();
  if (!found.ok()) {
    Log(options_, absl::StrCat("repository poll: ", found.status().message()));
    return;
  }
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::map<std::string, std::string> signatures;
  std::vector<std::string> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    for (const auto& [name, entry] : models_) {
      signatures[name] = entry.signature;
      if (!found->count(name) && !entry.versions.empty()) removed.push_back(name);
    }
  }
  for (const auto& [name, dir] : *found) {
    auto it = signatures.find(name);
    if (it != signatures.end() && it->second == ModelFolderSignature(dir)) continue;
    (void)LoadModel(name, dir);
  }
  for (const std::string& name : removed) {
    UnloadModel(name, "removed from the repository");
    Log(options_, absl::StrCat("model '", name, "' unloaded (removed from the repository)"));
  }
}

void ModelRepository::Flush() {
  for (auto& m : Loaded()) m->Flush();
}

void ModelRepository::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(poll_mu_);
    poll_stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::vector<std::shared_ptr<ModelVersion>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    for (auto& [name, entry] : models_)
      for (auto& [v, m] : entry.versions) all.push_back(m);
  }
  for (auto& m : all) m->Shutdown();
}

}  // namespace hepml::serve
