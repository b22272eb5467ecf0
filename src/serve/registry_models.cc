#include "serve/registry_models.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "serve/model_config.h"

namespace hepml::serve {
namespace fs = std::filesystem;

namespace {

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to `path` through a temporary sibling and a rename, so a
// repository scan never sees half a config.
absl::Status WriteAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += absl::StrCat(".tmp-", getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write '", tmp.string(), "'"));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot write '", path.string(), "': ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

bool RegistryModels::Wanted(const ServerOptions& options) {
  return !options.registry_dir.empty() || !options.registry_metadata.empty() || !options.registry_models.empty();
}

RegistryModels::RegistryModels(std::unique_ptr<registry::Registry> registry, std::string cache_dir, bool temporary,
                               std::function<void(const std::string&)> log)
    : registry_(std::move(registry)), cache_dir_(std::move(cache_dir)), temporary_(temporary), log_(std::move(log)) {}

RegistryModels::~RegistryModels() {
  if (!temporary_) return;
  std::error_code ec;
  fs::remove_all(cache_dir_, ec);
}

void RegistryModels::Log(const std::string& line) const {
  if (log_)
    log_(line);
  else
    std::cerr << "hepml serve: " << line << std::endl;
}

std::vector<std::string> RegistryModels::served_names() const {
  std::vector<std::string> names;
  for (const Served& s : served_) names.push_back(s.name);
  return names;
}

absl::StatusOr<std::unique_ptr<RegistryModels>> RegistryModels::Create(const ServerOptions& options) {
  if (!options.registry_dir.empty() && !options.registry_metadata.empty())
    return absl::InvalidArgumentError("give the registry as a folder or as metadata and blob URIs, not both");
  if (options.registry_dir.empty() && options.registry_metadata.empty())
    return absl::InvalidArgumentError("registry models given but no registry (--registry DIR or --registry-metadata URI)");
  if (!options.registry_metadata.empty() && options.registry_blobs.empty())
    return absl::InvalidArgumentError("--registry-metadata needs --registry-blobs");
  std::unique_ptr<registry::Registry> reg;
  if (!options.registry_dir.empty()) {
    registry::RegistryOptions ro;
    ro.create_if_missing = false;  // a mistyped folder is an error, not a new registry
    auto opened = registry::Registry::OpenDir(options.registry_dir, ro);
    if (!opened.ok())
      return absl::Status(opened.status().code(),
                          absl::StrCat("registry '", options.registry_dir, "': ", opened.status().message()));
    reg = std::move(*opened);
  } else {
    auto opened = registry::Registry::Open(options.registry_metadata, options.registry_blobs);
    if (!opened.ok())
      return absl::Status(opened.status().code(), absl::StrCat("registry '", options.registry_metadata,
                                                               "': ", opened.status().message()));
    reg = std::move(*opened);
  }

  std::string cache = options.registry_cache_dir;
  bool temporary = cache.empty();
  std::error_code ec;
  if (temporary) {
    std::string pattern = (fs::temp_directory_path(ec) / "hepml-serve-registry-XXXXXX").string();
    if (!mkdtemp(pattern.data())) return absl::UnavailableError("cannot create a temporary registry cache folder");
    cache = pattern;
  } else {
    fs::create_directories(cache, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("registry cache '", cache, "': ", ec.message()));
  }
  std::unique_ptr<RegistryModels> models(new RegistryModels(std::move(reg), cache, temporary, options.log));

  for (const std::string& spec : options.registry_models) {
    Served s;
    auto eq = spec.find('=');
    s.ref = eq == std::string::npos ? spec : spec.substr(eq + 1);
    auto resolved = models->registry_->ResolveRef(s.ref);
    if (!resolved.ok())
      return absl::Status(resolved.status().code(),
                          absl::StrCat("registry model '", spec, "': ", resolved.status().message()));
    s.model = resolved->model;
    s.name = eq == std::string::npos ? s.model : spec.substr(0, eq);
    if (s.name.empty() || s.name.find('/') != std::string::npos || s.name[0] == '.')
      return absl::InvalidArgumentError(absl::StrCat("registry model '", spec, "': '", s.name,
                                                     "' cannot name a model folder"));
    for (const Served& other : models->served_)
      if (other.name == s.name)
        return absl::InvalidArgumentError(
            absl::StrCat("registry models '", other.ref, "' and '", s.ref, "' are both served as '", s.name,
                         "' (give one another name: NAME=REF)"));
    absl::Status st = models->Materialise(s, resolved->version, nullptr);
    if (!st.ok()) return absl::Status(st.code(), absl::StrCat("registry model '", spec, "': ", st.message()));
    s.version = resolved->version;
    models->Log(absl::StrCat("registry model '", s.ref, "' is ", s.model, "@", s.version, ", served as '", s.name, "'"));
    models->served_.push_back(std::move(s));
  }
  return models;
}

absl::Status RegistryModels::Materialise(const Served& s, int64_t version, std::string* old_config) {
  fs::path model_dir = fs::path(cache_dir_) / s.name;
  fs::path final_dir = model_dir / std::to_string(version);
  fs::path tmp = model_dir / absl::StrCat(".pull-", version, "-", getpid());
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create '", model_dir.string(), "': ", ec.message()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create '", tmp.string(), "': ", ec.message()));
  auto cleanup = [&] { fs::remove_all(tmp, ec); };
  auto pulled = registry_->Pull(absl::StrCat(s.model, "@", version), tmp.string());
  if (!pulled.ok()) {
    cleanup();
    return pulled.status();
  }
  std::string onnx;
  bool has_config = false;
  for (const std::string& path : *pulled) {
    std::string name = fs::path(path).filename().string();
    if (name == "config.pbtxt") has_config = true;
    if (onnx.empty() && absl::EndsWith(name, ".onnx")) onnx = name;
  }
  if (onnx.empty()) {
    cleanup();
    return absl::FailedPreconditionError(absl::StrCat(s.model, "@", version, " has no .onnx file"));
  }
  inference::ModelConfig config;
  if (has_config) {
    auto parsed = ParseModelConfig(ReadAll(tmp / "config.pbtxt"));
    if (!parsed.ok()) {
      cleanup();
      return absl::InvalidArgumentError(
          absl::StrCat(s.model, "@", version, ": its config.pbtxt: ", parsed.status().message()));
    }
    config = std::move(*parsed);
  }
  config.set_name(s.name);
  if (onnx != "model.onnx") config.set_default_model_filename(onnx);
  config.mutable_version_policy()->mutable_specific()->clear_versions();
  config.mutable_version_policy()->mutable_specific()->add_versions(version);
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);

  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    cleanup();
    return absl::UnavailableError(absl::StrCat("cannot move the pulled files to '", final_dir.string(), "': ", ec.message()));
  }
  fs::path config_path = model_dir / "config.pbtxt";
  if (old_config) *old_config = ReadAll(config_path);
  return WriteAtomically(config_path, text);
}

void RegistryModels::Refresh(const std::function<absl::Status(const std::string&)>& reload) {
  for (Served& s : served_) {
    auto resolved = registry_->ResolveRef(s.ref);
    if (!resolved.ok()) {
      // An alias removed or the registry unreachable: keep serving what we have.
      if (s.failed_version != -1)
        Log(absl::StrCat("registry model '", s.ref, "' does not resolve (", resolved.status().message(),
                         "); ", s.model, "@", s.version, " stays in service"));
      s.failed_version = -1;
      continue;
    }
    int64_t v = resolved->version;
    if (v == s.version || v == s.failed_version) continue;
    std::string old_config;
    absl::Status st = Materialise(s, v, &old_config);
    if (st.ok()) st = reload(s.name);
    std::error_code ec;
    fs::path model_dir = fs::path(cache_dir_) / s.name;
    if (!st.ok()) {
      Log(absl::StrCat("registry model '", s.ref, "' moved to version ", v, " but it cannot be served (",
                       st.message(), "); version ", s.version, " stays in service"));
      if (!old_config.empty()) (void)WriteAtomically(model_dir / "config.pbtxt", old_config);
      fs::remove_all(model_dir / std::to_string(v), ec);
      s.failed_version = v;
      continue;
    }
    Log(absl::StrCat("registry model '", s.ref, "' moved: version ", s.version, " -> ", v, " (served as '", s.name,
                     "')"));
    fs::remove_all(model_dir / std::to_string(s.version), ec);
    s.version = v;
    s.failed_version = 0;
  }
}

}  // namespace hepml::serve
