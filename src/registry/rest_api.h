// The registry's REST API: JSON over HTTP/1.1, answered by `hepml registry
// serve` on the shared Beast server (serve/http/http_server.h).
//
// Two families of endpoints over one Registry:
//   /api/v1/...            native: models, versions (files, signature,
//                          params, metrics), file download (streamed),
//                          aliases (get, set, remove, history), resolve by
//                          IOV tag and run, lineage (depth and node
//                          limits), dataset versions, runs (start with
//                          input datasets and models, get), run artifacts
//                          (list, streamed download, upload of the body).
//   /api/2.0/mlflow/...    the subset of MLflow's tracking and model
//                          registry REST API a training script uses
//                          (experiments, runs, params, metrics, tags,
//                          artifacts/list, registered models, versions,
//                          aliases), with MLflow's JSON shapes, so MLflow
//                          clients can log to hepml.
//   /api/2.0/mlflow-artifacts/artifacts/...
//                          MLflow's artifact proxy, where clients put and
//                          get the files of runs whose artifact_uri is
//                          mlflow-artifacts:/EXPERIMENT/RUN/artifacts.
// Errors are JSON {"error_code", "message"} with the HTTP status: 400 bad
// request (the reason named), 404 unknown entity or path, 405 wrong method,
// 409 conflict (a published version, an overlapping interval, an ended
// run), 413 a body over the limit (the HTTP server), 500 otherwise.
//
// Thread safety: Handle may run on many threads at once (the Registry
// serializes its calls).
#ifndef HEPML_REGISTRY_REST_API_H_
#define HEPML_REGISTRY_REST_API_H_

#include <string>

#include "hepml/registry.h"
#include "serve/http/http_server.h"

namespace hepml::registry {

struct RestApiOptions {
  // Files are pulled here before they are streamed (removed once sent).
  std::string staging_dir;
  // MLflow model-versions/create reads the version's files from `source`, a
  // path on the server's machine: only sources under this folder are
  // accepted ("" refuses every source), so the API cannot be used to read
  // arbitrary files of the server's user.
  std::string source_root;
};

class RestApi {
 public:
  // REQUIRES: `registry` outlives this object.
  RestApi(Registry* registry, RestApiOptions options);

  // Answers one request; never throws.
  void Handle(const serve::HttpRequest& req, serve::HttpResponse& res, serve::HttpFileReply* file);

 private:
  Registry* registry_;
  RestApiOptions options_;
};

}  // namespace hepml::registry

#endif  // HEPML_REGISTRY_REST_API_H_
