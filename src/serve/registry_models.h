// Models served from a hepml registry: each reference ("NAME=MODEL@ALIAS",
// "MODEL@tag:TAG:RUN", ...) is resolved to a registry version, pulled into a
// Triton-layout cache folder the model repository serves from, and resolved
// again on request so alias moves and new versions reach the server.
//
//   <cache>/<name>/config.pbtxt   the version's own config.pbtxt if it has
//                                 one, with name, default_model_filename and
//                                 version_policy { specific { V } } set here
//   <cache>/<name>/<V>/...        the version's files
//
// Thread safety: Refresh is called from one thread at a time; registry() may
// be used from any thread (the Registry serializes its calls).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hepml/registry.h"
#include "hepml/server.h"
#include "hepml/status.h"

namespace hepml::serve {

class RegistryModels {
 public:
  // Opens the registry of `options` (registry_dir, or registry_metadata +
  // registry_blobs), resolves and pulls every registry_models reference.
  // Errors name the reference and why (unknown model or alias, a version
  // without an .onnx file, an unusable cache folder); nothing is served then.
  static absl::StatusOr<std::unique_ptr<RegistryModels>> Create(const ServerOptions& options);
  ~RegistryModels();  // removes the cache folder when it was a temporary one

  // True when `options` asks for a registry at all.
  static bool Wanted(const ServerOptions& options);

  registry::Registry* registry() const { return registry_.get(); }
  const std::string& cache_dir() const { return cache_dir_; }
  std::vector<std::string> served_names() const;

  // Resolves every reference again. For each that names another version now,
  // pulls it, points config.pbtxt at it and calls `reload(name)`; on success
  // the replaced version's folder is removed, on failure the config is put
  // back and the old version keeps serving (the failed version is not tried
  // again until the reference moves on). Errors are logged, never returned.
  void Refresh(const std::function<absl::Status(const std::string&)>& reload);

 private:
  struct Served {
    std::string name;  // served as
    std::string ref;   // as given
    std::string model;  // registry model
    int64_t version = 0;  // the version served
    int64_t failed_version = 0;  // last version that failed to pull or load
  };
  RegistryModels(std::unique_ptr<registry::Registry> registry, std::string cache_dir, bool temporary,
                 std::function<void(const std::string&)> log);
  // Pulls `version` of s.model into <cache>/<s.name>/<version> and writes the
  // config for it (kept in *old_config when given).
  absl::Status Materialise(const Served& s, int64_t version, std::string* old_config);
  void Log(const std::string& line) const;

  std::unique_ptr<registry::Registry> registry_;
  std::string cache_dir_;
  bool temporary_ = false;
  std::function<void(const std::string&)> log_;
  std::vector<Served> served_;
};

}  // namespace hepml::serve
