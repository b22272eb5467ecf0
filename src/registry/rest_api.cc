#include "registry/rest_api.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hepml/status.h"
#include "nlohmann/json.hpp"
#include "registry/registry_json.h"

namespace hepml::registry {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------
// Requests: path segments and arguments

std::string UrlDecode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) && absl::ascii_isxdigit(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct Call {
  http::verb method;
  std::vector<std::string> segments;      // decoded path segments, empty ones skipped
  std::vector<std::string> raw_segments;  // the path split at '/', empty ones kept, not decoded
  json args = json::object();             // query parameters, then the JSON body's fields
  const std::string* body = nullptr;      // the raw body of an upload (not parsed as JSON)
};

// Uploads carry bytes, not JSON: PUT /api/v1/runs/ID/artifacts/PATH and
// PUT /api/2.0/mlflow-artifacts/artifacts/PATH.
bool IsUpload(const Call& c) {
  const auto& s = c.segments;
  if (c.method != http::verb::put || s.size() < 4 || s[0] != "api") return false;
  if (s[1] == "v1") return s.size() >= 6 && s[2] == "runs" && s[4] == "artifacts";
  return s[1] == "2.0" && s[2] == "mlflow-artifacts" && s[3] == "artifacts";
}

// The decoded path after the first `skip` non-empty segments, its own empty
// segments kept (so that "a//b" reaches the artifact path check as it was
// sent).
std::string PathTail(const Call& c, size_t skip) {
  std::vector<std::string> parts;
  size_t seen = 0;
  for (const std::string& raw : c.raw_segments) {
    if (seen < skip) {
      if (!raw.empty()) ++seen;
      continue;
    }
    parts.push_back(UrlDecode(raw, false));
  }
  return absl::StrJoin(parts, "/");
}

// Query parameters and a JSON object body, merged (the body wins). A
// repeated query parameter becomes an array (MLflow's GET lists).
absl::StatusOr<Call> ParseCall(const serve::HttpRequest& req) {
  Call call;
  call.method = req.method();
  std::string target(req.target());
  std::string path = target, query;
  if (auto q = target.find('?'); q != std::string::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  for (absl::string_view seg : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    call.segments.push_back(UrlDecode(std::string(seg), false));
  }
  absl::string_view rest(path);
  absl::ConsumePrefix(&rest, "/");
  for (absl::string_view seg : absl::StrSplit(rest, '/')) call.raw_segments.emplace_back(seg);
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    auto eq = pair.find('=');
    std::string key = UrlDecode(std::string(pair.substr(0, eq)), true);
    std::string value = eq == absl::string_view::npos ? "" : UrlDecode(std::string(pair.substr(eq + 1)), true);
    if (!call.args.contains(key)) {
      call.args[key] = value;
    } else {
      if (!call.args[key].is_array()) call.args[key] = json::array({call.args[key]});
      call.args[key].push_back(value);
    }
  }
  const std::string& body = req.body();
  if (IsUpload(call)) {
    call.body = &body;
    return call;
  }
  if (!body.empty() && !absl::StripAsciiWhitespace(body).empty()) {
    json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return absl::InvalidArgumentError("the request body is not valid JSON");
    if (!parsed.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
    // Moved, never copied: a copy of deeply nested JSON would recurse.
    for (auto& [k, v] : parsed.items()) call.args[k] = std::move(v);
  }
  return call;
}

// Typed access to one argument; errors name the field and what it must be.
absl::StatusOr<std::optional<std::string>> OptString(const json& args, const std::string& key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be a string"));
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<std::string> String(const json& args, const std::string& key) {
  HEPML_ASSIGN_OR_RETURN(auto v, OptString(args, key));
  if (!v || v->empty()) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  return *v;
}

// An integer given as a JSON number or as a decimal string (protobuf's JSON
// writes int64 as strings).
absl::StatusOr<std::optional<int64_t>> IntValue(const json* it, const std::string& key) {
  if (it == nullptr || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_integer() && !it->is_number_unsigned()) return std::optional<int64_t>(it->get<int64_t>());
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat("field '", key, "' is out of range (a 64-bit integer)"));
    }
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (it->is_string()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(it->get<std::string>(), &v)) return std::optional<int64_t>(v);
    std::string got = it->get<std::string>();
    if (got.size() > 64) got = absl::StrCat(got.substr(0, 64), "...");
    return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be a 64-bit integer, got '", got, "'"));
  }
  return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be an integer"));
}

absl::StatusOr<std::optional<int64_t>> OptInt(const json& args, const std::string& key) {
  auto it = args.find(key);
  return IntValue(it == args.end() ? nullptr : &*it, key);
}

absl::StatusOr<int64_t> Int(const json& args, const std::string& key) {
  HEPML_ASSIGN_OR_RETURN(auto v, OptInt(args, key));
  if (!v) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  return *v;
}

absl::StatusOr<double> Double(const json& args, const std::string& key) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  if (it->is_number()) return it->get<double>();
  double d = 0;
  if (it->is_string() && absl::SimpleAtod(it->get<std::string>(), &d)) return d;
  return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be a number"));
}

// A list of {"key": ..., "value": ...} objects (MLflow's tags and params).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KeyValues(const json& args, const std::string& key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return out;
  if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be a list"));
  for (const json& item : *it) {
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("each of '", key, "' must be an object {key, value}"));
    }
    HEPML_ASSIGN_OR_RETURN(std::string k, String(item, "key"));
    HEPML_ASSIGN_OR_RETURN(auto v, OptString(item, "value"));
    out.emplace_back(k, v.value_or(""));
  }
  return out;
}

// An id the API hands out as a string ("12"): a positive integer.
absl::StatusOr<int64_t> Id(const json& args, const std::string& key, const std::string& what) {
  HEPML_ASSIGN_OR_RETURN(auto v, OptInt(args, key));
  if (!v) return absl::InvalidArgumentError(absl::StrCat("missing field '", key, "'"));
  if (*v <= 0) return absl::NotFoundError(absl::StrCat("unknown ", what, " ", *v));
  return *v;
}

absl::StatusOr<int64_t> RunId(const json& args) {
  // MLflow clients send run_id, older ones run_uuid.
  if (args.contains("run_id") && !args["run_id"].is_null()) return Id(args, "run_id", "run");
  if (args.contains("run_uuid") && !args["run_uuid"].is_null()) return Id(args, "run_uuid", "run");
  return absl::InvalidArgumentError("missing field 'run_id'");
}

// A boolean given as JSON true/false or as the strings "true"/"false" (a
// query parameter); absent: `fallback`.
absl::StatusOr<bool> Bool(const json& args, const std::string& key, bool fallback) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) return fallback;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    std::string v = absl::AsciiStrToLower(it->get<std::string>());
    if (v == "true") return true;
    if (v == "false") return false;
  }
  return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be true or false"));
}

// MLflow's page tokens are opaque to clients: here the base64 of
// {"offset": N}, the position of the next page in the ordered results.
std::string PageToken(int64_t offset) { return absl::Base64Escape(json{{"offset", offset}}.dump()); }

absl::StatusOr<int64_t> PageOffset(const json& args, const std::string& endpoint) {
  HEPML_ASSIGN_OR_RETURN(auto token, OptString(args, "page_token"));
  if (!token || token->empty()) return 0;
  std::string decoded;
  json j;
  if (absl::Base64Unescape(*token, &decoded) || absl::WebSafeBase64Unescape(*token, &decoded)) {
    j = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  }
  auto it = j.is_object() ? j.find("offset") : j.end();
  // Offsets past a billion are no page of this server's (and would overflow offset + max_results).
  if (!j.is_object() || it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > 1'000'000'000) {
    std::string shown = token->size() > 64 ? absl::StrCat(token->substr(0, 64), "...") : *token;
    return absl::InvalidArgumentError(absl::StrCat(endpoint, ": page_token '", shown,
                                                   "' is not a token this server handed out"
                                                   " (pass next_page_token from the previous page as it came)"));
  }
  return it->get<int64_t>();
}

// max_results: `fallback` when absent, else 1..`limit`.
absl::StatusOr<int64_t> MaxResults(const json& args, const std::string& endpoint, int64_t fallback, int64_t limit) {
  HEPML_ASSIGN_OR_RETURN(auto max, OptInt(args, "max_results"));
  int64_t v = max.value_or(fallback);
  if (v <= 0 || v > limit) {
    return absl::InvalidArgumentError(absl::StrCat(endpoint, ": max_results must be between 1 and ", limit, ", got ", v));
  }
  return v;
}

// One page of `all` (already in order): items [offset, offset + max) under
// `key`, and next_page_token when more follow.
json Page(const char* key, std::vector<json> all, int64_t offset, int64_t max) {
  json list = json::array();
  const int64_t n = static_cast<int64_t>(all.size());
  for (int64_t i = offset; i < n && i < offset + max; ++i) list.push_back(std::move(all[i]));
  json out = {{key, list}};
  if (offset + max < n) out["next_page_token"] = PageToken(offset + max);
  return out;
}

// order_by: a list of strings (a POST body) or one or more query parameters.
absl::StatusOr<std::vector<std::string>> OrderByList(const json& args) {
  std::vector<std::string> out;
  auto it = args.find("order_by");
  if (it == args.end() || it->is_null()) return out;
  if (it->is_string()) {
    if (!it->get<std::string>().empty()) out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) return absl::InvalidArgumentError("field 'order_by' must be a list of strings");
  for (const json& o : *it) {
    if (!o.is_string()) return absl::InvalidArgumentError("field 'order_by' must be a list of strings");
    out.push_back(o.get<std::string>());
  }
  return out;
}

// One order_by clause: "[PREFIX.]KEY [ASC|DESC]", the key bare or in
// backquotes or double quotes. `prefix` is lower-cased ("" when none).
struct OrderClause {
  std::string prefix;
  std::string key;
  bool ascending = true;
};

absl::StatusOr<OrderClause> ParseOrderClause(const std::string& endpoint, const std::string& text) {
  auto fail = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat(endpoint, ": order_by '", text, "': ", why, " (expected e.g. 'metrics.loss ASC')"));
  };
  std::string t(absl::StripAsciiWhitespace(text));
  OrderClause c;
  auto space = t.find_last_of(" \t");
  if (space != std::string::npos) {
    std::string dir = absl::AsciiStrToUpper(t.substr(space + 1));
    if (dir == "ASC" || dir == "DESC") {
      c.ascending = dir == "ASC";
      t = std::string(absl::StripAsciiWhitespace(t.substr(0, space)));
    } else if (t.back() != '`' && t.back() != '"') {
      return fail(absl::StrCat("'", t.substr(space + 1), "' is neither ASC nor DESC"));
    }
  }
  bool quoted = false;
  if (t.empty()) return fail("it names no key");
  if (t.back() == '`' || t.back() == '"') {
    quoted = true;
    auto open = t.rfind(t.back(), t.size() - 2);
    if (open == std::string::npos || t.size() < 2) return fail("a quoted key is not closed");
    c.key = t.substr(open + 1, t.size() - open - 2);
    std::string head = t.substr(0, open);
    if (!head.empty()) {
      if (head.back() != '.') return fail("expected PREFIX.`KEY`");
      c.prefix = absl::AsciiStrToLower(head.substr(0, head.size() - 1));
    }
  } else {
    auto dot = t.find('.');
    if (dot == std::string::npos) {
      c.key = t;
    } else {
      c.prefix = absl::AsciiStrToLower(t.substr(0, dot));
      c.key = t.substr(dot + 1);
    }
  }
  if (c.key.empty()) return fail("it names no key");
  if (!quoted && c.key.find_first_of(" \t") != std::string::npos) return fail("a key with spaces must be quoted");
  return c;
}

// order_by clauses of a search whose keys are attributes only (with or
// without the "attributes." prefix): each key must be one of `keys`; `what`
// names the entities in the error ("experiments order by name, ...").
absl::StatusOr<std::vector<OrderClause>> AttributeOrderBy(const std::string& endpoint,
                                                          const std::vector<std::string>& order_by,
                                                          const std::set<std::string>& keys, const char* what) {
  std::vector<OrderClause> clauses;
  for (const std::string& o : order_by) {
    HEPML_ASSIGN_OR_RETURN(OrderClause c, ParseOrderClause(endpoint, o));
    if ((!c.prefix.empty() && c.prefix != "attribute" && c.prefix != "attributes") || !keys.count(c.key)) {
      return absl::InvalidArgumentError(absl::StrCat(endpoint, ": order_by '", o, "': ", what));
    }
    clauses.push_back(std::move(c));
  }
  return clauses;
}

// Compares optional sort values: present before missing (whatever the
// direction, as MLflow does), then by value in the clause's direction.
// -1, 0, 1.
template <typename T>
int CompareOptional(const std::optional<T>& a, const std::optional<T>& b, bool ascending) {
  if (!a && !b) return 0;
  if (!a) return 1;
  if (!b) return -1;
  if (*a == *b) return 0;
  const bool less = *a < *b;
  return (less == ascending) ? -1 : 1;
}

absl::StatusOr<int64_t> VersionNumber(const std::string& s) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("version '", s, "' is not a positive integer"));
  }
  return v;
}

// ---------------------------------------------------------------------------
// Answers

struct Reply {
  json body = json::object();
  std::string file_path;  // stream this file instead of `body`
  std::string file_name;
  std::function<void()> done;
};

constexpr const char* kHttpStatusPayload = "hepml.dev/http-status";

// A request with the wrong method for an existing path: 405.
absl::Status WrongMethod(const std::string& message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kHttpStatusPayload, absl::Cord("405"));
  return s;
}

int HttpStatusFor(const absl::Status& s) {
  if (s.GetPayload(kHttpStatusPayload)) return 405;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 413;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// MLflow's error codes, which its clients read.
const char* ErrorCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return "INVALID_PARAMETER_VALUE";
    case absl::StatusCode::kNotFound:
      return "RESOURCE_DOES_NOT_EXIST";
    case absl::StatusCode::kAlreadyExists:
      return "RESOURCE_ALREADY_EXISTS";
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return "INVALID_STATE";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kUnavailable:
      return "TEMPORARILY_UNAVAILABLE";
    default:
      return "INTERNAL_ERROR";
  }
}

// ---------------------------------------------------------------------------
// JSON shapes: native

json ModelJson(const ModelInfo& m) {
  return {{"name", m.name},
          {"description", m.description},
          {"latest_version", m.latest_version},
          {"created_at_ms", m.created_at_ms}};
}

json AliasMoveJson(const AliasMove& m) {
  return {{"model", m.model},
          {"alias", m.alias},
          {"from_version", m.from_version ? json(*m.from_version) : json(nullptr)},
          {"to_version", m.to_version ? json(*m.to_version) : json(nullptr)},
          {"moved_by", m.moved_by},
          {"moved_at_ms", m.moved_at_ms}};
}

// ---------------------------------------------------------------------------
// JSON shapes: MLflow

json MlflowNumber(double v) {
  // JSON has no NaN/Infinity; protobuf's JSON writes them as strings.
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

std::string MlflowStatus(const std::string& status) { return absl::AsciiStrToUpper(status); }

json KeyValueList(const std::map<std::string, std::string>& m) {
  json a = json::array();
  for (const auto& [k, v] : m) a.push_back({{"key", k}, {"value", v}});
  return a;
}

json MlflowRunInfo(const RunInfo& r) {
  json info = {{"run_id", absl::StrCat(r.id)},
               {"run_uuid", absl::StrCat(r.id)},
               {"run_name", r.name},
               {"experiment_id", absl::StrCat(r.experiment_id.value_or(0))},
               {"user_id", r.created_by},
               {"status", MlflowStatus(r.status)},
               {"start_time", r.start_ms}};
  if (r.end_ms) info["end_time"] = *r.end_ms;
  // Clients upload and download through the artifact proxy
  // (/api/2.0/mlflow-artifacts/artifacts/...), which stores in the run's record.
  info["artifact_uri"] = absl::StrCat("mlflow-artifacts:/", r.experiment_id.value_or(0), "/", r.id, "/artifacts");
  info["lifecycle_stage"] = r.deleted ? "deleted" : "active";
  return info;
}

json MlflowRun(const RunInfo& r) {
  // data.metrics holds each key's latest value: the highest step (points
  // come sorted by key, then step).
  json metrics = json::array();
  for (size_t i = 0; i < r.metrics.size(); ++i) {
    const MetricPoint& p = r.metrics[i];
    if (i + 1 < r.metrics.size() && r.metrics[i + 1].key == p.key) continue;
    metrics.push_back({{"key", p.key}, {"value", MlflowNumber(p.value)}, {"timestamp", p.time_ms}, {"step", p.step}});
  }
  return {{"info", MlflowRunInfo(r)},
          {"data", {{"metrics", metrics}, {"params", KeyValueList(r.params)}, {"tags", KeyValueList(r.tags)}}},
          {"inputs", json::object()}};
}

json MlflowExperiment(const Experiment& e) {
  return {{"experiment_id", absl::StrCat(e.id)},
          {"name", e.name},
          {"artifact_location", absl::StrCat("mlflow-artifacts:/", e.id)},
          {"lifecycle_stage", e.deleted ? "deleted" : "active"},
          {"creation_time", e.created_at_ms},
          {"last_update_time", e.updated_at_ms},
          {"tags", KeyValueList(e.tags)}};
}

// Runs of no experiment are MLflow's default experiment 0.
json MlflowDefaultExperiment() {
  return {{"experiment_id", "0"},     {"name", "Default"},        {"artifact_location", "mlflow-artifacts:/0"},
          {"lifecycle_stage", "active"}, {"creation_time", 0}, {"last_update_time", 0},
          {"tags", json::array()}};
}

json MlflowModelVersion(const ModelVersion& v) {
  // The source is the model file (the first .onnx one), else the first file.
  const FileEntry* main = v.files.empty() ? nullptr : &v.files[0];
  for (const auto& f : v.files) {
    if (absl::EndsWith(f.name, ".onnx")) {
      main = &f;
      break;
    }
  }
  json j = {{"name", v.model},
            {"version", absl::StrCat(v.version)},
            {"creation_timestamp", v.created_at_ms},
            {"last_updated_timestamp", v.updated_at_ms},
            {"user_id", v.created_by},
            {"current_stage", v.stage},
            {"description", v.description},
            // Where the files can be fetched: the native download endpoint.
            {"source", main == nullptr ? std::string()
                                       : absl::StrCat("/api/v1/models/", v.model, "/versions/", v.version, "/files/",
                                                      main->name)},
            {"run_id", v.source_run ? absl::StrCat(*v.source_run) : std::string()},
            {"status", "READY"},
            {"tags", KeyValueList(v.tags)},
            {"aliases", v.aliases}};
  return j;
}

// ---------------------------------------------------------------------------
// Artifacts

// The entries directly inside folder `dir` ("" = the run's root) of a run's
// artifacts, MLflow's FileInfo: files {path, is_dir: false, file_size},
// folders {path, is_dir: true}. `full_paths`: paths from the run's root
// (artifacts/list), else the entry's own name (the artifact proxy's list).
json ArtifactListing(const std::vector<FileEntry>& artifacts, const std::string& dir, bool full_paths) {
  json files = json::array();
  std::set<std::string> folders;
  const std::string prefix = dir.empty() ? "" : dir + "/";
  for (const FileEntry& f : artifacts) {
    if (!absl::StartsWith(f.name, prefix)) continue;
    std::string rest = f.name.substr(prefix.size());
    auto slash = rest.find('/');
    std::string entry = slash == std::string::npos ? rest : rest.substr(0, slash);
    std::string path = full_paths ? prefix + entry : entry;
    if (slash == std::string::npos) {
      files.push_back({{"path", path}, {"is_dir", false}, {"file_size", f.size}});
    } else if (folders.insert(entry).second) {
      files.push_back({{"path", path}, {"is_dir", true}});
    }
  }
  return files;
}

// ---------------------------------------------------------------------------
// The handler

class Handler {
 public:
  Handler(Registry& reg, const RestApiOptions& options) : reg_(reg), options_(options) {}

  absl::StatusOr<Reply> Dispatch(const Call& c) {
    const auto& s = c.segments;
    if (s.size() >= 2 && s[0] == "api" && s[1] == "v1") return Native(c, {s.begin() + 2, s.end()});
    if (s.size() >= 4 && s[0] == "api" && s[1] == "2.0" && s[2] == "mlflow-artifacts" && s[3] == "artifacts") {
      return ArtifactProxy(c);
    }
    if (s.size() >= 3 && s[0] == "api" && s[1] == "2.0" && s[2] == "mlflow") {
      return Mlflow(c, absl::StrJoin(s.begin() + 3, s.end(), "/"));
    }
    if (s.empty() || (s.size() == 1 && s[0] == "health")) {
      Reply r;
      r.body = {{"status", "ok"}, {"metadata", reg_.metadata_uri()}, {"blobs", reg_.blob_uri()}};
      return r;
    }
    return NoEndpoint(c);
  }

 private:
  static absl::Status NoEndpoint(const Call& c) {
    return absl::NotFoundError(absl::StrCat("no endpoint /", absl::StrJoin(c.segments, "/")));
  }
  static absl::Status Method(const Call& c, http::verb want) {
    if (c.method == want) return absl::OkStatus();
    return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)), " for /",
                                                   absl::StrJoin(c.segments, "/"), ": use ",
                                                   std::string(http::to_string(want))));
  }

  // ------------------------------------------------------------------ native
  absl::StatusOr<Reply> Native(const Call& c, std::vector<std::string> p) {
    Reply r;
    const size_t n = p.size();
    if (n == 1 && p[0] == "models") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
      HEPML_ASSIGN_OR_RETURN(auto models, reg_.ListModels());
      json a = json::array();
      for (const auto& m : models) a.push_back(ModelJson(m));
      r.body = {{"models", a}};
      return r;
    }
    if (n == 2 && p[0] == "models") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
      HEPML_ASSIGN_OR_RETURN(auto m, reg_.GetModel(p[1]));
      HEPML_ASSIGN_OR_RETURN(auto versions, reg_.ListVersions(p[1]));
      r.body = ModelJson(m);
      json vs = json::array();
      for (const auto& v : versions) {
        vs.push_back({{"version", v.version}, {"aliases", v.aliases}, {"created_at_ms", v.created_at_ms}});
      }
      r.body["versions"] = vs;
      return r;
    }
    if (n >= 4 && p[0] == "models" && p[2] == "versions") {
      HEPML_ASSIGN_OR_RETURN(int64_t version, VersionNumber(p[3]));
      if (n == 4) {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetVersion(p[1], version));
        r.body = VersionJson(v);
        return r;
      }
      if (n == 5 && p[4] == "lineage") {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(LineageOptions lo, LineageArgs(c.args));
        HEPML_ASSIGN_OR_RETURN(bool down, Downstream(c.args, /*fallback=*/false, "a model version"));
        HEPML_ASSIGN_OR_RETURN(auto l, down ? reg_.DownstreamOfModel(p[1], version, lo)
                                            : reg_.Upstream(p[1], version, lo));
        r.body = LineageJson(l);
        return r;
      }
      if (n >= 6 && p[4] == "files") {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        return Download(p[1], version, absl::StrJoin(p.begin() + 5, p.end(), "/"));
      }
    }
    if (n >= 3 && p[0] == "models" && p[2] == "aliases") {
      const std::string& model = p[1];
      if (n == 3) {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_RETURN_IF_ERROR(reg_.GetModel(model).status());
        HEPML_ASSIGN_OR_RETURN(auto versions, reg_.ListVersions(model));
        json a = json::object();
        for (const auto& v : versions)
          for (const auto& alias : v.aliases) a[alias] = v.version;
        r.body = {{"model", model}, {"aliases", a}};
        return r;
      }
      const std::string& alias = p[3];
      if (n == 5 && p[4] == "history") {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(auto moves, reg_.AliasHistory(model, alias));
        json a = json::array();
        for (const auto& m : moves) a.push_back(AliasMoveJson(m));
        r.body = {{"model", model}, {"alias", alias}, {"moves", a}};
        return r;
      }
      if (n == 4) {
        if (c.method == http::verb::get) {
          HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetAlias(model, alias));
          r.body = VersionJson(v);
          return r;
        }
        if (c.method == http::verb::put || c.method == http::verb::post) {
          HEPML_ASSIGN_OR_RETURN(int64_t version, Int(c.args, "version"));
          HEPML_RETURN_IF_ERROR(reg_.SetAlias(model, alias, version));
          r.body = {{"model", model}, {"alias", alias}, {"version", version}};
          return r;
        }
        if (c.method == http::verb::delete_) {
          HEPML_RETURN_IF_ERROR(reg_.RemoveAlias(model, alias));
          r.body = {{"model", model}, {"alias", alias}, {"removed", true}};
          return r;
        }
        return WrongMethod(
            absl::StrCat("wrong method ", std::string(http::to_string(c.method)), " for an alias: use GET, PUT or DELETE"));
      }
    }
    if (n == 3 && p[0] == "tags" && p[2] == "intervals") {
      if (c.method == http::verb::get) {
        HEPML_ASSIGN_OR_RETURN(auto ivs, reg_.ListIntervals(p[1]));
        json a = json::array();
        for (const auto& iv : ivs) a.push_back(IntervalJson(iv));
        r.body = {{"tag", p[1]}, {"intervals", a}};
        return r;
      }
      if (c.method == http::verb::post) {
        HEPML_ASSIGN_OR_RETURN(std::string model, String(c.args, "model"));
        HEPML_ASSIGN_OR_RETURN(int64_t version, Int(c.args, "version"));
        IntervalSpec range;
        HEPML_ASSIGN_OR_RETURN(range.first_run, Int(c.args, "first_run"));
        HEPML_ASSIGN_OR_RETURN(range.last_run, Int(c.args, "last_run"));
        HEPML_ASSIGN_OR_RETURN(range.first_time, OptInt(c.args, "first_time"));
        HEPML_ASSIGN_OR_RETURN(range.last_time, OptInt(c.args, "last_time"));
        HEPML_RETURN_IF_ERROR(reg_.AddInterval(p[1], model, version, range));
        Interval iv{p[1], range, model, version, 0};
        r.body = IntervalJson(iv);
        return r;
      }
      return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)),
                                      " for a tag's intervals: use GET or POST"));
    }
    if (n == 1 && p[0] == "resolve") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
      HEPML_ASSIGN_OR_RETURN(std::string tag, String(c.args, "tag"));
      HEPML_ASSIGN_OR_RETURN(int64_t run, Int(c.args, "run"));
      HEPML_ASSIGN_OR_RETURN(auto iv, reg_.Resolve(tag, run));
      r.body = IntervalJson(iv);
      return r;
    }
    if (n == 5 && p[0] == "datasets" && p[2] == "versions" && p[4] == "lineage") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
      HEPML_ASSIGN_OR_RETURN(int64_t version, VersionNumber(p[3]));
      HEPML_ASSIGN_OR_RETURN(LineageOptions lo, LineageArgs(c.args));
      HEPML_ASSIGN_OR_RETURN(bool down, Downstream(c.args, /*fallback=*/true, "a dataset version"));
      if (!down) return absl::InvalidArgumentError("field 'direction': a dataset version's lineage is downstream only");
      HEPML_ASSIGN_OR_RETURN(auto l, reg_.Downstream(p[1], version, lo));
      r.body = LineageJson(l);
      return r;
    }
    if (n == 4 && p[0] == "datasets" && p[2] == "versions") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
      HEPML_ASSIGN_OR_RETURN(int64_t version, VersionNumber(p[3]));
      HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetDatasetVersion(p[1], version));
      r.body = DatasetVersionJson(v);
      return r;
    }
    if (n == 1 && p[0] == "runs") {
      HEPML_RETURN_IF_ERROR(Method(c, http::verb::post));
      HEPML_ASSIGN_OR_RETURN(RunStart start, RunStartArgs(c.args));
      HEPML_ASSIGN_OR_RETURN(int64_t id, reg_.StartRun(start));
      HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
      r.body = RunJson(run);
      return r;
    }
    if (n >= 2 && p[0] == "runs") {
      HEPML_ASSIGN_OR_RETURN(int64_t run, RunNumber(p[1]));
      if (n == 2) {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
        r.body = RunJson(info);
        return r;
      }
      if (n == 3 && p[2] == "lineage") {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(LineageOptions lo, LineageArgs(c.args));
        HEPML_ASSIGN_OR_RETURN(bool down, Downstream(c.args, /*fallback=*/true, "a run"));
        if (!down) return absl::InvalidArgumentError("field 'direction': a run's lineage is downstream only");
        HEPML_ASSIGN_OR_RETURN(auto l, reg_.DownstreamOfRun(run, lo));
        r.body = LineageJson(l);
        return r;
      }
      if (n == 3 && p[2] == "artifacts") {
        HEPML_RETURN_IF_ERROR(Method(c, http::verb::get));
        HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
        json a = json::array();
        for (const auto& f : info.artifacts) a.push_back({{"path", f.name}, {"size", f.size}, {"sha256", f.sha256}});
        r.body = {{"run_id", run}, {"artifacts", a}};
        return r;
      }
      if (n >= 4 && p[2] == "artifacts") {
        // The path as sent (empty segments kept): /api/v1/runs/ID/artifacts/PATH.
        std::string name = PathTail(c, 5);
        if (c.method == http::verb::get) return ArtifactDownload(run, name);
        if (c.method == http::verb::put) {
          HEPML_ASSIGN_OR_RETURN(FileEntry f, reg_.LogArtifactBytes(run, name, *c.body));
          r.body = {{"path", f.name}, {"size", f.size}, {"sha256", f.sha256}};
          return r;
        }
        return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)),
                                        " for a run's artifact: use GET or PUT"));
      }
    }
    return NoEndpoint(c);
  }

  static absl::StatusOr<int64_t> RunNumber(const std::string& s) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(s, &v) || v <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("run id '", s, "' is not a positive integer"));
    }
    return v;
  }

  // ?depth=N&max_nodes=N of the lineage endpoints.
  static absl::StatusOr<LineageOptions> LineageArgs(const json& a) {
    LineageOptions o;
    HEPML_ASSIGN_OR_RETURN(auto depth, OptInt(a, "depth"));
    HEPML_ASSIGN_OR_RETURN(auto max_nodes, OptInt(a, "max_nodes"));
    if (depth) {
      if (*depth < 0 || *depth > 1000000) return absl::InvalidArgumentError("field 'depth' must be between 0 and 1000000");
      o.max_depth = static_cast<int>(*depth);
    }
    if (max_nodes) {
      if (*max_nodes < 1) return absl::InvalidArgumentError("field 'max_nodes' must be at least 1");
      o.max_nodes = *max_nodes;
    }
    return o;
  }

  // ?direction=upstream|downstream of the lineage endpoints: true for
  // downstream; `fallback` when absent.
  static absl::StatusOr<bool> Downstream(const json& a, bool fallback, const char* what) {
    HEPML_ASSIGN_OR_RETURN(auto d, OptString(a, "direction"));
    if (!d) return fallback;
    if (*d == "downstream") return true;
    if (*d == "upstream") return false;
    return absl::InvalidArgumentError(absl::StrCat("field 'direction' of the lineage of ", what, ": '", *d,
                                                   "' is neither 'upstream' nor 'downstream'"));
  }

  // "NAME@V" strings or {"NAME-FIELD": ..., "version": V} objects.
  template <typename Ref>
  static absl::StatusOr<std::vector<Ref>> VersionRefs(const json& a, const std::string& key, const char* name_field) {
    std::vector<Ref> out;
    auto it = a.find(key);
    if (it == a.end() || it->is_null()) return out;
    if (!it->is_array()) return absl::InvalidArgumentError(absl::StrCat("field '", key, "' must be a list"));
    for (const json& item : *it) {
      Ref ref;
      std::string* name = nullptr;
      if constexpr (std::is_same_v<Ref, ModelVersionRef>) name = &ref.model;
      else name = &ref.dataset;
      if (item.is_string()) {
        std::string s = item.get<std::string>();
        auto at = s.rfind('@');
        if (at == std::string::npos || at == 0 || !absl::SimpleAtoi(s.substr(at + 1), &ref.version) || ref.version < 1) {
          return absl::InvalidArgumentError(absl::StrCat("field '", key, "': '", s, "' is not NAME@VERSION"));
        }
        *name = s.substr(0, at);
      } else if (item.is_object()) {
        HEPML_ASSIGN_OR_RETURN(*name, String(item, name_field));
        HEPML_ASSIGN_OR_RETURN(ref.version, Int(item, "version"));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("each of '", key, "' must be \"NAME@VERSION\" or {\"", name_field, "\", \"version\"}"));
      }
      out.push_back(std::move(ref));
    }
    return out;
  }

  // POST /api/v1/runs: {name, experiment_id, params {k: v}, inputs
  // ["DATASET@V"], model_inputs ["MODEL@V"], code_version}.
  static absl::StatusOr<RunStart> RunStartArgs(const json& a) {
    RunStart start;
    HEPML_ASSIGN_OR_RETURN(auto name, OptString(a, "name"));
    start.name = name.value_or("");
    HEPML_ASSIGN_OR_RETURN(auto code, OptString(a, "code_version"));
    start.code_version = code.value_or("");
    HEPML_ASSIGN_OR_RETURN(auto experiment, OptInt(a, "experiment_id"));
    if (experiment && *experiment != 0) start.experiment_id = *experiment;
    if (auto it = a.find("params"); it != a.end() && !it->is_null()) {
      if (!it->is_object()) return absl::InvalidArgumentError("field 'params' must be an object of strings");
      for (const auto& [k, v] : it->items()) {
        if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat("parameter '", k, "' must be a string"));
        start.params[k] = v.get<std::string>();
      }
    }
    HEPML_ASSIGN_OR_RETURN(start.inputs, VersionRefs<DatasetVersionRef>(a, "inputs", "dataset"));
    HEPML_ASSIGN_OR_RETURN(start.model_inputs, VersionRefs<ModelVersionRef>(a, "model_inputs", "model"));
    return start;
  }

  // Fetches the artifact into a private folder and streams it.
  absl::StatusOr<Reply> ArtifactDownload(int64_t run, const std::string& name) {
    HEPML_ASSIGN_OR_RETURN(fs::path dir, StagingDir());
    auto cleanup = [dir] {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    };
    fs::path file = dir / "artifact";
    auto got = reg_.GetArtifact(run, name, file.string());
    if (!got.ok()) {
      cleanup();
      return got.status();
    }
    Reply r;
    r.file_path = file.string();
    r.file_name = fs::path(name).filename().string();
    r.done = cleanup;
    return r;
  }

  absl::StatusOr<fs::path> StagingDir() {
    static std::atomic<uint64_t> counter{0};
    fs::path dir = fs::path(options_.staging_dir) / absl::StrCat("pull-", getpid(), "-", counter.fetch_add(1));
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot create staging folder: ", ec.message()));
    return dir;
  }

  // Pulls the version into a private folder and streams the one file.
  absl::StatusOr<Reply> Download(const std::string& model, int64_t version, const std::string& name) {
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetVersion(model, version));
    bool known = false;
    for (const auto& f : v.files) known = known || f.name == name;
    if (!known) {
      return absl::NotFoundError(absl::StrCat(model, "@", version, " has no file '", name, "'"));
    }
    HEPML_ASSIGN_OR_RETURN(fs::path dir, StagingDir());
    auto cleanup = [dir] {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    };
    auto pulled = reg_.Pull(absl::StrCat(model, "@", version), dir.string() + "/");
    if (!pulled.ok()) {
      cleanup();
      return pulled.status();
    }
    Reply r;
    r.file_path = (dir / name).string();
    r.file_name = name;
    r.done = cleanup;
    return r;
  }

  // ------------------------------------------------------------------ MLflow
  absl::StatusOr<Reply> Mlflow(const Call& c, const std::string& endpoint) {
    using Fn = absl::StatusOr<json> (Handler::*)(const json&);
    struct Route {
      const char* path;
      http::verb method;
      Fn fn;
    };
    static const Route kRoutes[] = {
        {"experiments/create", http::verb::post, &Handler::CreateExperiment},
        {"experiments/get", http::verb::get, &Handler::GetExperiment},
        {"experiments/get-by-name", http::verb::get, &Handler::GetExperimentByName},
        {"experiments/search", http::verb::post, &Handler::SearchExperiments},
        // MLflow 1.x's list (GET, view_type), which older clients call.
        {"experiments/list", http::verb::get, &Handler::ListExperiments},
        {"experiments/update", http::verb::post, &Handler::UpdateExperiment},
        {"experiments/delete", http::verb::post, &Handler::DeleteExperiment},
        {"experiments/restore", http::verb::post, &Handler::RestoreExperiment},
        {"experiments/set-experiment-tag", http::verb::post, &Handler::SetExperimentTag},
        {"runs/create", http::verb::post, &Handler::CreateRun},
        {"runs/get", http::verb::get, &Handler::GetRun},
        {"runs/update", http::verb::post, &Handler::UpdateRun},
        {"runs/search", http::verb::post, &Handler::SearchRuns},
        {"runs/delete", http::verb::post, &Handler::DeleteRun},
        {"runs/restore", http::verb::post, &Handler::RestoreRun},
        {"runs/log-metric", http::verb::post, &Handler::LogMetric},
        {"runs/log-parameter", http::verb::post, &Handler::LogParam},
        {"runs/log-batch", http::verb::post, &Handler::LogBatch},
        {"runs/set-tag", http::verb::post, &Handler::SetTag},
        {"runs/delete-tag", http::verb::post, &Handler::DeleteTag},
        {"metrics/get-history", http::verb::get, &Handler::MetricHistory},
        {"artifacts/list", http::verb::get, &Handler::ListArtifacts},
        {"registered-models/create", http::verb::post, &Handler::CreateRegisteredModel},
        {"registered-models/get", http::verb::get, &Handler::GetRegisteredModel},
        {"registered-models/search", http::verb::get, &Handler::SearchRegisteredModels},
        {"registered-models/update", http::verb::patch, &Handler::UpdateRegisteredModel},
        {"registered-models/rename", http::verb::post, &Handler::RenameRegisteredModel},
        {"registered-models/delete", http::verb::delete_, &Handler::DeleteRegisteredModel},
        {"registered-models/get-latest-versions", http::verb::post, &Handler::GetLatestVersions},
        {"registered-models/get-latest-versions", http::verb::get, &Handler::GetLatestVersions},
        {"registered-models/alias", http::verb::post, &Handler::SetModelAlias},
        {"registered-models/alias", http::verb::get, &Handler::GetModelVersionByAlias},
        {"registered-models/alias", http::verb::delete_, &Handler::DeleteModelAlias},
        {"model-versions/create", http::verb::post, &Handler::CreateModelVersion},
        {"model-versions/get", http::verb::get, &Handler::GetModelVersion},
        {"model-versions/search", http::verb::get, &Handler::SearchModelVersions},
        {"model-versions/update", http::verb::patch, &Handler::UpdateModelVersion},
        {"model-versions/transition-stage", http::verb::post, &Handler::TransitionStage},
        {"model-versions/delete", http::verb::delete_, &Handler::DeleteModelVersion},
        {"model-versions/set-tag", http::verb::post, &Handler::SetModelVersionTag},
        {"model-versions/delete-tag", http::verb::delete_, &Handler::DeleteModelVersionTag},
    };
    std::vector<std::string> methods;
    for (const Route& route : kRoutes) {
      if (endpoint != route.path) continue;
      if (c.method != route.method) {
        methods.push_back(std::string(http::to_string(route.method)));
        continue;
      }
      HEPML_ASSIGN_OR_RETURN(json body, (this->*route.fn)(c.args));
      Reply r;
      r.body = std::move(body);
      return r;
    }
    if (!methods.empty()) {
      return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)), " for /api/2.0/mlflow/",
                                      endpoint, ": use ", absl::StrJoin(methods, " or ")));
    }
    return NoEndpoint(c);
  }

  // A field hepml does not implement: fine when absent or empty, else 400.
  static absl::Status Unsupported(const json& a, const char* endpoint, const char* field, const char* instead) {
    auto it = a.find(field);
    if (it == a.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()) ||
        (it->is_array() && it->empty())) {
      return absl::OkStatus();
    }
    return absl::UnimplementedError(absl::StrCat(endpoint, ": '", field, "' is not supported; ", instead));
  }

  absl::StatusOr<json> CreateExperiment(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(auto e, reg_.CreateExperiment(name));
    return json{{"experiment_id", absl::StrCat(e.id)}};
  }

  absl::StatusOr<json> GetExperiment(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, Int(a, "experiment_id"));
    if (id == 0) return json{{"experiment", MlflowDefaultExperiment()}};
    HEPML_ASSIGN_OR_RETURN(auto e, reg_.GetExperiment(id));
    return json{{"experiment", MlflowExperiment(e)}};
  }

  absl::StatusOr<json> GetExperimentByName(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "experiment_name"));
    auto e = reg_.GetExperimentByName(name);
    if (absl::IsNotFound(e.status()) && name == "Default") return json{{"experiment", MlflowDefaultExperiment()}};
    if (!e.ok()) return e.status();
    return json{{"experiment", MlflowExperiment(*e)}};
  }

  // Experiments in view (the Default experiment 0 is never deleted), in
  // order_by's order: attributes name, experiment_id, creation_time,
  // last_update_time (with or without the "attributes." prefix); by
  // experiment_id when none is given and to break ties.
  absl::StatusOr<std::vector<Experiment>> ExperimentsInOrder(const json& a, const std::string& endpoint,
                                                              LifecycleView view) {
    HEPML_ASSIGN_OR_RETURN(auto order_by, OrderByList(a));
    HEPML_ASSIGN_OR_RETURN(std::vector<OrderClause> clauses,
                           AttributeOrderBy(endpoint, order_by, {"name", "experiment_id", "creation_time", "last_update_time"},
                                            "experiments order by name, experiment_id, creation_time or last_update_time"));
    HEPML_ASSIGN_OR_RETURN(auto stored, reg_.ListExperiments());
    std::vector<Experiment> all;
    if (view != LifecycleView::kDeletedOnly) all.push_back(Experiment{0, "Default", "", 0, 0, false, {}});
    for (auto& e : stored) {
      if (view == LifecycleView::kAll || e.deleted == (view == LifecycleView::kDeletedOnly)) all.push_back(std::move(e));
    }
    std::stable_sort(all.begin(), all.end(), [&](const Experiment& x, const Experiment& y) {
      for (const OrderClause& c : clauses) {
        int r = 0;
        if (c.key == "name") r = CompareOptional<std::string>(x.name, y.name, c.ascending);
        if (c.key == "experiment_id") r = CompareOptional<int64_t>(x.id, y.id, c.ascending);
        if (c.key == "creation_time") r = CompareOptional<int64_t>(x.created_at_ms, y.created_at_ms, c.ascending);
        if (c.key == "last_update_time") r = CompareOptional<int64_t>(x.updated_at_ms, y.updated_at_ms, c.ascending);
        if (r != 0) return r < 0;
      }
      return x.id < y.id;
    });
    return all;
  }

  static json ExperimentJson(const Experiment& e) {
    return e.id == 0 ? MlflowDefaultExperiment() : MlflowExperiment(e);
  }

  absl::StatusOr<json> SearchExperiments(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto filter, OptString(a, "filter"));
    if (filter && !filter->empty()) {
      return absl::UnimplementedError("experiments/search: filter strings are not supported; leave 'filter' empty");
    }
    HEPML_ASSIGN_OR_RETURN(LifecycleView view, View(a, "experiments/search", "view_type"));
    HEPML_ASSIGN_OR_RETURN(int64_t max_results, MaxResults(a, "experiments/search", 1000, 50000));
    HEPML_ASSIGN_OR_RETURN(int64_t offset, PageOffset(a, "experiments/search"));
    HEPML_ASSIGN_OR_RETURN(auto all, ExperimentsInOrder(a, "experiments/search", view));
    std::vector<json> list;
    for (const auto& e : all) list.push_back(ExperimentJson(e));
    return Page("experiments", std::move(list), offset, max_results);
  }

  // MLflow's ViewType (view_type, run_view_type): ACTIVE_ONLY (the default),
  // DELETED_ONLY or ALL; other values are refused.
  static absl::StatusOr<LifecycleView> View(const json& a, const char* endpoint, const std::string& field) {
    HEPML_ASSIGN_OR_RETURN(auto view, OptString(a, field));
    if (!view || view->empty() || *view == "ACTIVE_ONLY") return LifecycleView::kActiveOnly;
    if (*view == "ALL") return LifecycleView::kAll;
    if (*view == "DELETED_ONLY") return LifecycleView::kDeletedOnly;
    return absl::InvalidArgumentError(absl::StrCat(endpoint, ": ", field, " '", *view,
                                                   "': expected ACTIVE_ONLY, DELETED_ONLY or ALL"));
  }

  absl::StatusOr<json> ListExperiments(const json& a) {
    HEPML_ASSIGN_OR_RETURN(LifecycleView view, View(a, "experiments/list", "view_type"));
    HEPML_ASSIGN_OR_RETURN(auto all, ExperimentsInOrder(json::object(), "experiments/list", view));
    json list = json::array();
    for (const auto& e : all) list.push_back(ExperimentJson(e));
    return json{{"experiments", list}};
  }

  static absl::StatusOr<int64_t> StoredExperimentId(const json& a, const char* endpoint) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, Int(a, "experiment_id"));
    if (id == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(endpoint, ": the Default experiment 0 holds the runs of no experiment and cannot be changed"));
    }
    if (id < 0) return absl::NotFoundError(absl::StrCat("unknown experiment ", id));
    return id;
  }

  absl::StatusOr<json> DeleteExperiment(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, StoredExperimentId(a, "experiments/delete"));
    HEPML_RETURN_IF_ERROR(reg_.DeleteExperiment(id));
    return json::object();
  }

  absl::StatusOr<json> RestoreExperiment(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, StoredExperimentId(a, "experiments/restore"));
    HEPML_RETURN_IF_ERROR(reg_.RestoreExperiment(id));
    return json::object();
  }

  absl::StatusOr<json> SetExperimentTag(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, StoredExperimentId(a, "experiments/set-experiment-tag"));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_ASSIGN_OR_RETURN(auto value, OptString(a, "value"));
    if (!value) return absl::InvalidArgumentError("missing field 'value'");
    HEPML_RETURN_IF_ERROR(reg_.SetExperimentTag(id, key, *value));
    return json::object();
  }

  absl::StatusOr<json> DeleteRun(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_RETURN_IF_ERROR(reg_.DeleteRun(id));
    return json::object();
  }

  absl::StatusOr<json> RestoreRun(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_RETURN_IF_ERROR(reg_.RestoreRun(id));
    return json::object();
  }

  // Renames an experiment (MLflow's new_name); experiment 0 is not stored
  // and keeps its name.
  absl::StatusOr<json> UpdateExperiment(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, Int(a, "experiment_id"));
    HEPML_ASSIGN_OR_RETURN(auto new_name, OptString(a, "new_name"));
    if (!new_name) return json::object();
    if (id == 0) return absl::InvalidArgumentError("experiments/update: the Default experiment 0 cannot be renamed");
    HEPML_RETURN_IF_ERROR(reg_.RenameExperiment(id, *new_name));
    return json::object();
  }

  absl::StatusOr<json> CreateRun(const json& a) {
    RunStart start;
    HEPML_ASSIGN_OR_RETURN(auto experiment, OptInt(a, "experiment_id"));
    if (experiment && *experiment < 0) return absl::NotFoundError(absl::StrCat("unknown experiment ", *experiment));
    if (experiment && *experiment != 0) start.experiment_id = *experiment;
    HEPML_ASSIGN_OR_RETURN(auto name, OptString(a, "run_name"));
    HEPML_ASSIGN_OR_RETURN(auto tags, KeyValues(a, "tags"));
    for (const auto& [k, v] : tags)
      if (k == "mlflow.runName" && !name) name = v;
    start.name = name.value_or("");
    HEPML_ASSIGN_OR_RETURN(start.start_ms, OptInt(a, "start_time"));
    HEPML_ASSIGN_OR_RETURN(int64_t id, reg_.StartRun(start));
    for (const auto& [k, v] : tags) HEPML_RETURN_IF_ERROR(reg_.SetRunTag(id, k, v));
    HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
    return json{{"run", MlflowRun(run)}};
  }

  absl::StatusOr<json> GetRun(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
    return json{{"run", MlflowRun(run)}};
  }

  absl::StatusOr<json> UpdateRun(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
    HEPML_ASSIGN_OR_RETURN(auto name, OptString(a, "run_name"));
    if (name && *name != run.name) {
      return absl::UnimplementedError("runs/update: renaming a run is not supported");
    }
    HEPML_ASSIGN_OR_RETURN(auto status, OptString(a, "status"));
    std::string want = absl::AsciiStrToLower(status.value_or(""));
    if (!want.empty() && want != run.status) {
      if (want == "running" || want == "scheduled") {
        return absl::FailedPreconditionError(absl::StrCat("run ", id, " has ended (", run.status,
                                                          "); it cannot run again"));
      }
      if (want != "finished" && want != "failed" && want != "killed") {
        return absl::InvalidArgumentError(absl::StrCat("runs/update: status '", *status,
                                                       "': expected RUNNING, FINISHED, FAILED or KILLED"));
      }
      RunEnd end;
      end.status = want;
      HEPML_ASSIGN_OR_RETURN(end.end_ms, OptInt(a, "end_time"));
      HEPML_RETURN_IF_ERROR(reg_.EndRun(id, end));
      HEPML_ASSIGN_OR_RETURN(run, reg_.GetRun(id));
    }
    return json{{"run_info", MlflowRunInfo(run)}};
  }

  // One comparison of an MLflow search filter: KIND.KEY OP VALUE.
  struct RunCondition {
    enum Kind { kMetric, kParam, kTag, kAttribute } kind;
    std::string key;
    std::string op;  // = != > >= < <= LIKE ILIKE
    std::string text;
    double number = 0;
  };

  // MLflow's run filter: comparisons joined by AND. Identifiers are
  // metrics.KEY, params.KEY, tags.KEY or attributes.NAME (status, run_name,
  // run_id, start_time, end_time; also the singular and `attr`/`run` forms),
  // KEY bare or in backquotes or double quotes. Metrics and times compare
  // numbers (= != > >= < <=); params, tags, status, run_name and run_id
  // compare quoted strings (= != LIKE ILIKE). Anything else is refused with
  // the filter and what was expected.
  static absl::StatusOr<std::vector<RunCondition>> ParseRunFilter(const std::string& filter) {
    std::vector<RunCondition> out;
    size_t i = 0;
    const size_t n = filter.size();
    auto fail = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat("runs/search: filter '", filter, "': ", why,
                                                     " (expected e.g. metrics.auc > 0.9 AND params.lr = '0.001')"));
    };
    auto skip_space = [&] {
      while (i < n && absl::ascii_isspace(static_cast<unsigned char>(filter[i]))) ++i;
    };
    auto word = [&] {
      size_t b = i;
      while (i < n && (absl::ascii_isalnum(static_cast<unsigned char>(filter[i])) || filter[i] == '_' ||
                       filter[i] == '-' || filter[i] == '.' || filter[i] == '/' || filter[i] == ':')) {
        ++i;
      }
      return filter.substr(b, i - b);
    };
    auto quoted = [&](std::string* v) -> bool {
      if (i >= n || (filter[i] != '\'' && filter[i] != '"' && filter[i] != '`')) return false;
      char q = filter[i];
      size_t end = filter.find(q, i + 1);
      if (end == std::string::npos) return false;
      *v = filter.substr(i + 1, end - i - 1);
      i = end + 1;
      return true;
    };
    while (true) {
      skip_space();
      if (i >= n) return fail(out.empty() ? "it is empty" : "it ends after AND");
      RunCondition c;
      size_t dot = filter.find('.', i);
      if (dot == std::string::npos) return fail("an identifier needs a prefix: metrics., params., tags. or attributes.");
      std::string prefix = absl::AsciiStrToLower(filter.substr(i, dot - i));
      if (prefix == "metrics" || prefix == "metric") {
        c.kind = RunCondition::kMetric;
      } else if (prefix == "params" || prefix == "param" || prefix == "parameters" || prefix == "parameter") {
        c.kind = RunCondition::kParam;
      } else if (prefix == "tags" || prefix == "tag") {
        c.kind = RunCondition::kTag;
      } else if (prefix == "attributes" || prefix == "attribute" || prefix == "attr" || prefix == "run") {
        c.kind = RunCondition::kAttribute;
      } else {
        return fail(absl::StrCat("unknown identifier prefix '", filter.substr(i, dot - i), "'"));
      }
      i = dot + 1;
      if (!quoted(&c.key)) {
        // A bare key runs to the next space or operator character.
        size_t b = i;
        while (i < n && !absl::ascii_isspace(static_cast<unsigned char>(filter[i])) && filter[i] != '=' &&
               filter[i] != '!' && filter[i] != '<' && filter[i] != '>') {
          ++i;
        }
        c.key = filter.substr(b, i - b);
      }
      if (c.key.empty()) return fail("an identifier has no key");
      if (c.kind == RunCondition::kAttribute) {
        static const std::set<std::string> kAttributes = {"status", "run_name", "run_id", "start_time", "end_time"};
        if (!kAttributes.count(c.key)) {
          return fail(absl::StrCat("attribute '", c.key, "' is not one of status, run_name, run_id, start_time, end_time"));
        }
      }
      const bool numeric = c.kind == RunCondition::kMetric ||
                           (c.kind == RunCondition::kAttribute && (c.key == "start_time" || c.key == "end_time"));
      skip_space();
      size_t b = i;
      while (i < n && (filter[i] == '=' || filter[i] == '!' || filter[i] == '<' || filter[i] == '>')) ++i;
      c.op = filter.substr(b, i - b);
      if (c.op.empty()) {
        c.op = absl::AsciiStrToUpper(word());
      }
      static const std::set<std::string> kNumericOps = {"=", "!=", ">", ">=", "<", "<="};
      static const std::set<std::string> kStringOps = {"=", "!=", "LIKE", "ILIKE"};
      if (numeric ? !kNumericOps.count(c.op) : !kStringOps.count(c.op)) {
        return fail(absl::StrCat("operator '", c.op, "' after '", c.key, "': expected ",
                                 numeric ? "= != > >= < <=" : "= != LIKE ILIKE"));
      }
      skip_space();
      if (numeric) {
        std::string v = word();
        if (!absl::SimpleAtod(v, &c.number)) return fail(absl::StrCat("'", c.key, "' compares with a number, got '", v, "'"));
      } else if (i >= n || filter[i] == '`' || !quoted(&c.text)) {
        return fail(absl::StrCat("'", c.key, "' compares with a quoted string"));
      }
      out.push_back(std::move(c));
      skip_space();
      if (i >= n) return out;
      std::string conj = absl::AsciiStrToUpper(word());
      if (conj != "AND") return fail(absl::StrCat("expected AND between comparisons, got '", conj, "'"));
    }
  }

  static bool RunMatches(const RunInfo& r, const std::vector<RunCondition>& conditions) {
    for (const RunCondition& c : conditions) {
      std::optional<std::string> text;
      std::optional<double> number;
      switch (c.kind) {
        case RunCondition::kMetric:
          // The latest value: the highest step (points come by key, then step).
          for (const MetricPoint& p : r.metrics)
            if (p.key == c.key) number = p.value;
          break;
        case RunCondition::kParam:
          if (auto it = r.params.find(c.key); it != r.params.end()) text = it->second;
          break;
        case RunCondition::kTag:
          if (auto it = r.tags.find(c.key); it != r.tags.end()) text = it->second;
          break;
        case RunCondition::kAttribute:
          if (c.key == "status") text = MlflowStatus(r.status);
          if (c.key == "run_name") text = r.name;
          if (c.key == "run_id") text = absl::StrCat(r.id);
          if (c.key == "start_time") number = static_cast<double>(r.start_ms);
          if (c.key == "end_time" && r.end_ms) number = static_cast<double>(*r.end_ms);
          break;
      }
      // A run without the key never matches (MLflow's inner join).
      if (number) {
        const double v = *number;
        bool ok = c.op == "=" ? v == c.number
                : c.op == "!=" ? v != c.number
                : c.op == ">" ? v > c.number
                : c.op == ">=" ? v >= c.number
                : c.op == "<" ? v < c.number
                : v <= c.number;
        if (!ok) return false;
      } else if (text) {
        bool ok = c.op == "=" ? *text == c.text
                : c.op == "!=" ? *text != c.text
                : c.op == "LIKE" ? LikeMatch(c.text, *text)
                : LikeMatch(absl::AsciiStrToLower(c.text), absl::AsciiStrToLower(*text));
        if (!ok) return false;
      } else {
        return false;
      }
    }
    return true;
  }

  absl::StatusOr<json> SearchRuns(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto filter, OptString(a, "filter"));
    std::vector<RunCondition> conditions;
    if (filter && !absl::StripAsciiWhitespace(*filter).empty()) {
      HEPML_ASSIGN_OR_RETURN(conditions, ParseRunFilter(*filter));
    }
    HEPML_ASSIGN_OR_RETURN(LifecycleView view, View(a, "runs/search", "run_view_type"));
    HEPML_ASSIGN_OR_RETURN(int64_t offset, PageOffset(a, "runs/search"));
    HEPML_ASSIGN_OR_RETURN(auto order_by, OrderByList(a));
    std::vector<OrderClause> clauses;
    for (const std::string& o : order_by) {
      HEPML_ASSIGN_OR_RETURN(OrderClause c, RunOrderClause(o));
      clauses.push_back(std::move(c));
    }
    std::vector<int64_t> experiments;
    auto it = a.find("experiment_ids");
    if (it == a.end() || it->is_null()) return absl::InvalidArgumentError("missing field 'experiment_ids'");
    auto add = [&](const json& id) -> absl::Status {
      HEPML_ASSIGN_OR_RETURN(auto e, IntValue(&id, "experiment_ids"));
      if (!e) return absl::InvalidArgumentError("field 'experiment_ids' holds a null");
      experiments.push_back(*e);
      return absl::OkStatus();
    };
    if (it->is_array()) {
      for (const json& id : *it) HEPML_RETURN_IF_ERROR(add(id));
    } else {
      HEPML_RETURN_IF_ERROR(add(*it));
    }
    HEPML_ASSIGN_OR_RETURN(int64_t max_results, MaxResults(a, "runs/search", 1000, 50000));
    // A filter or an order is applied to the newest 50000 runs of the
    // experiments; without either only the page and one more are read.
    const int64_t window = conditions.empty() && clauses.empty() ? std::min<int64_t>(offset + max_results + 1, 50000)
                                                                  : 50000;
    HEPML_ASSIGN_OR_RETURN(auto runs, reg_.SearchRuns(experiments, window, view));
    std::vector<const RunInfo*> matched;
    for (const auto& r : runs)
      if (RunMatches(r, conditions)) matched.push_back(&r);
    std::stable_sort(matched.begin(), matched.end(), [&](const RunInfo* x, const RunInfo* y) {
      for (const OrderClause& c : clauses) {
        int r = CompareRuns(*x, *y, c);
        if (r != 0) return r < 0;
      }
      return false;  // the store's order: newest first
    });
    std::vector<json> list;
    for (const RunInfo* r : matched) list.push_back(MlflowRun(*r));
    return Page("runs", std::move(list), offset, max_results);
  }

  // runs/search order_by: metrics.KEY (the latest value), params.KEY,
  // tags.KEY, or attributes start_time, end_time, status, run_name, run_id
  // (with "attributes." or bare).
  static absl::StatusOr<OrderClause> RunOrderClause(const std::string& text) {
    HEPML_ASSIGN_OR_RETURN(OrderClause c, ParseOrderClause("runs/search", text));
    static const std::map<std::string, std::string> kPrefixes = {
        {"metrics", "metrics"}, {"metric", "metrics"},       {"params", "params"},         {"param", "params"},
        {"parameters", "params"}, {"parameter", "params"}, {"tags", "tags"},             {"tag", "tags"},
        {"attributes", "attributes"}, {"attribute", "attributes"}, {"attr", "attributes"}, {"run", "attributes"},
        {"", "attributes"}};
    auto it = kPrefixes.find(c.prefix);
    if (it == kPrefixes.end()) {
      return absl::InvalidArgumentError(absl::StrCat("runs/search: order_by '", text, "': unknown prefix '", c.prefix,
                                                     "' (expected metrics., params., tags. or attributes.)"));
    }
    c.prefix = it->second;
    static const std::set<std::string> kAttributes = {"start_time", "end_time", "status", "run_name", "run_id"};
    if (c.prefix == "attributes" && !kAttributes.count(c.key)) {
      return absl::InvalidArgumentError(absl::StrCat("runs/search: order_by '", text, "': attribute '", c.key,
                                                     "' is not one of start_time, end_time, status, run_name, run_id"));
    }
    return c;
  }

  static int CompareRuns(const RunInfo& x, const RunInfo& y, const OrderClause& c) {
    if (c.prefix == "metrics") {
      auto latest = [&](const RunInfo& r) {
        std::optional<double> v;
        for (const MetricPoint& p : r.metrics)
          if (p.key == c.key) v = p.value;  // points come by key, then step
        return v;
      };
      return CompareOptional(latest(x), latest(y), c.ascending);
    }
    if (c.prefix == "params" || c.prefix == "tags") {
      auto get = [&](const RunInfo& r) {
        const auto& m = c.prefix == "params" ? r.params : r.tags;
        auto it = m.find(c.key);
        return it == m.end() ? std::optional<std::string>() : std::optional<std::string>(it->second);
      };
      return CompareOptional(get(x), get(y), c.ascending);
    }
    if (c.key == "start_time") return CompareOptional<int64_t>(x.start_ms, y.start_ms, c.ascending);
    if (c.key == "end_time") return CompareOptional(x.end_ms, y.end_ms, c.ascending);
    if (c.key == "status") return CompareOptional(std::optional(MlflowStatus(x.status)), std::optional(MlflowStatus(y.status)), c.ascending);
    if (c.key == "run_name") return CompareOptional<std::string>(x.name, y.name, c.ascending);
    return CompareOptional<int64_t>(x.id, y.id, c.ascending);
  }

  absl::StatusOr<json> LogMetric(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_ASSIGN_OR_RETURN(double value, Double(a, "value"));
    HEPML_ASSIGN_OR_RETURN(auto step, OptInt(a, "step"));
    HEPML_ASSIGN_OR_RETURN(auto timestamp, OptInt(a, "timestamp"));
    // The client's timestamp is kept (read back by runs/get and get-history).
    RunBatch batch;
    batch.metrics.push_back({key, step.value_or(0), value, timestamp.value_or(0)});
    HEPML_RETURN_IF_ERROR(reg_.LogBatch(id, batch));
    return json::object();
  }

  // MLflow accepts logging a parameter again with the same value; another
  // value is its INVALID_PARAMETER_VALUE (400), not a conflict.
  absl::Status CheckParamsUnchanged(int64_t run, const std::vector<std::pair<std::string, std::string>>& params) {
    if (params.empty()) return absl::OkStatus();
    HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
    for (const auto& [k, v] : params) {
      auto it = info.params.find(k);
      if (it != info.params.end() && it->second != v) {
        return absl::InvalidArgumentError(absl::StrCat("run ", run, " already has parameter '", k, "' = '",
                                                       it->second, "'; parameters cannot change (got '", v, "')"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status LogParamOnce(int64_t run, const std::string& key, const std::string& value) {
    RunBatch batch;
    batch.params.emplace_back(key, value);
    HEPML_RETURN_IF_ERROR(CheckParamsUnchanged(run, batch.params));
    return reg_.LogBatch(run, batch);
  }

  absl::StatusOr<json> LogParam(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_ASSIGN_OR_RETURN(auto value, OptString(a, "value"));
    if (!value) return absl::InvalidArgumentError("missing field 'value'");
    HEPML_RETURN_IF_ERROR(LogParamOnce(id, key, *value));
    return json::object();
  }

  absl::StatusOr<json> SetTag(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_ASSIGN_OR_RETURN(auto value, OptString(a, "value"));
    if (!value) return absl::InvalidArgumentError("missing field 'value'");
    HEPML_RETURN_IF_ERROR(reg_.SetRunTag(id, key, *value));
    return json::object();
  }

  absl::StatusOr<json> DeleteTag(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_RETURN_IF_ERROR(reg_.DeleteRunTag(id, key));
    return json::object();
  }

  // One transaction: a bad or conflicting item leaves the run as it was.
  absl::StatusOr<json> LogBatch(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    RunBatch batch;
    auto it = a.find("metrics");
    if (it != a.end() && !it->is_null()) {
      if (!it->is_array()) return absl::InvalidArgumentError("field 'metrics' must be a list");
      for (const json& m : *it) {
        if (!m.is_object()) return absl::InvalidArgumentError("each of 'metrics' must be an object {key, value, step}");
        MetricPoint p;
        HEPML_ASSIGN_OR_RETURN(p.key, String(m, "key"));
        HEPML_ASSIGN_OR_RETURN(p.value, Double(m, "value"));
        HEPML_ASSIGN_OR_RETURN(auto step, OptInt(m, "step"));
        p.step = step.value_or(0);
        HEPML_ASSIGN_OR_RETURN(auto timestamp, OptInt(m, "timestamp"));
        p.time_ms = timestamp.value_or(0);
        batch.metrics.push_back(std::move(p));
      }
    }
    HEPML_ASSIGN_OR_RETURN(batch.params, KeyValues(a, "params"));
    HEPML_ASSIGN_OR_RETURN(batch.tags, KeyValues(a, "tags"));
    if (batch.metrics.size() + batch.params.size() + batch.tags.size() > 10000) {
      return absl::InvalidArgumentError("runs/log-batch: at most 10000 metrics, params and tags in one batch");
    }
    HEPML_RETURN_IF_ERROR(CheckParamsUnchanged(id, batch.params));
    HEPML_RETURN_IF_ERROR(reg_.LogBatch(id, batch));
    return json::object();
  }

  absl::StatusOr<json> MetricHistory(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "metric_key"));
    HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
    json list = json::array();
    for (const auto& p : run.metrics) {
      if (p.key != key) continue;
      list.push_back({{"key", p.key}, {"value", MlflowNumber(p.value)}, {"timestamp", p.time_ms}, {"step", p.step}});
    }
    return json{{"metrics", list}};
  }

  // MLflow's artifacts/list: the entries directly under `path` (paths from
  // the run's root).
  absl::StatusOr<json> ListArtifacts(const json& a) {
    HEPML_ASSIGN_OR_RETURN(int64_t id, RunId(a));
    HEPML_ASSIGN_OR_RETURN(auto path, OptString(a, "path"));
    HEPML_RETURN_IF_ERROR(Unsupported(a, "artifacts/list", "page_token", "every entry comes in one answer"));
    std::string dir = path.value_or("");
    if (!dir.empty()) HEPML_RETURN_IF_ERROR(CheckArtifactPath(dir));
    HEPML_ASSIGN_OR_RETURN(auto run, reg_.GetRun(id));
    return json{{"root_uri", MlflowRunInfo(run)["artifact_uri"]}, {"files", ArtifactListing(run.artifacts, dir, true)}};
  }

  // The artifact proxy behind mlflow-artifacts:/EXPERIMENT/RUN/artifacts
  // URIs: PUT and GET .../artifacts/EXPERIMENT/RUN/artifacts/PATH, and GET
  // .../artifacts?path=EXPERIMENT/RUN/artifacts[/FOLDER] (names only).
  absl::StatusOr<Reply> ArtifactProxy(const Call& c) {
    Reply r;
    const bool list = c.segments.size() == 4;
    std::string location;
    if (list) {
      if (c.method != http::verb::get) {
        return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)),
                                        " for an artifact listing: use GET"));
      }
      HEPML_ASSIGN_OR_RETURN(auto path, OptString(c.args, "path"));
      location = std::string(absl::StripSuffix(absl::StripPrefix(path.value_or(""), "/"), "/"));
    } else {
      location = PathTail(c, 4);
    }
    // EXPERIMENT/RUN/artifacts[/PATH]
    std::vector<std::string> parts = absl::StrSplit(location, absl::MaxSplits('/', 3));
    int64_t experiment = -1, run = 0;
    if (parts.size() < 3 || !absl::SimpleAtoi(parts[0], &experiment) || experiment < 0 ||
        !absl::SimpleAtoi(parts[1], &run) || run <= 0 || parts[2] != "artifacts") {
      return absl::InvalidArgumentError(absl::StrCat("artifact location '", location,
                                                     "': expected EXPERIMENT_ID/RUN_ID/artifacts/PATH"));
    }
    std::string name = parts.size() == 4 ? parts[3] : "";
    if (!name.empty() || parts.size() == 4) HEPML_RETURN_IF_ERROR(CheckArtifactPath(name));
    HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
    if (info.experiment_id.value_or(0) != experiment) {
      return absl::NotFoundError(absl::StrCat("run ", run, " is not in experiment ", experiment));
    }
    if (list) {
      r.body = {{"files", ArtifactListing(info.artifacts, name, false)}};
      return r;
    }
    if (c.method == http::verb::get) return ArtifactDownload(run, name);
    if (c.method == http::verb::put) {
      HEPML_RETURN_IF_ERROR(reg_.LogArtifactBytes(run, name, *c.body).status());
      return r;  // MLflow's UploadArtifact.Response: {}
    }
    return WrongMethod(absl::StrCat("wrong method ", std::string(http::to_string(c.method)),
                                    " for an artifact: use GET or PUT"));
  }

  absl::StatusOr<json> RegisteredModel(const std::string& name) {
    HEPML_ASSIGN_OR_RETURN(auto m, reg_.GetModel(name));
    HEPML_ASSIGN_OR_RETURN(auto versions, reg_.ListVersions(name));
    json aliases = json::array(), latest = json::array();
    for (const auto& v : versions) {
      for (const auto& alias : v.aliases) aliases.push_back({{"alias", alias}, {"version", absl::StrCat(v.version)}});
    }
    // MLflow's latest_versions: the newest version of each stage.
    for (const ModelVersion* v : LatestPerStage(versions, {})) latest.push_back(MlflowModelVersion(*v));
    int64_t updated = m.created_at_ms;
    for (const auto& v : versions) updated = std::max(updated, v.updated_at_ms);
    return json{{"name", m.name},
                {"creation_timestamp", m.created_at_ms},
                {"last_updated_timestamp", updated},
                {"description", m.description},
                {"latest_versions", latest},
                {"aliases", aliases},
                {"tags", json::array()}};
  }

  absl::StatusOr<json> CreateRegisteredModel(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(auto description, OptString(a, "description"));
    HEPML_ASSIGN_OR_RETURN(auto tags, KeyValues(a, "tags"));
    if (!tags.empty()) {
      return absl::UnimplementedError("registered-models/create: model tags are not supported (tag versions instead)");
    }
    HEPML_RETURN_IF_ERROR(reg_.CreateModel(name, description.value_or("")).status());
    HEPML_ASSIGN_OR_RETURN(json m, RegisteredModel(name));
    return json{{"registered_model", m}};
  }

  // The newest version in each of `stages` (all stages when empty), in
  // version order.
  static std::vector<const ModelVersion*> LatestPerStage(const std::vector<ModelVersion>& versions,
                                                         const std::set<std::string>& stages) {
    std::map<std::string, const ModelVersion*> newest;
    for (const auto& v : versions) {
      if (!stages.empty() && !stages.count(v.stage)) continue;
      auto& slot = newest[v.stage];
      if (slot == nullptr || slot->version < v.version) slot = &v;
    }
    std::vector<const ModelVersion*> out;
    for (const auto& [stage, v] : newest) out.push_back(v);
    std::sort(out.begin(), out.end(), [](const ModelVersion* x, const ModelVersion* y) { return x->version < y->version; });
    return out;
  }

  // A stage as MLflow spells it (matched case-insensitively).
  static absl::StatusOr<std::string> Stage(const std::string& endpoint, const std::string& stage) {
    for (const char* s : {"None", "Staging", "Production", "Archived"}) {
      if (absl::AsciiStrToLower(stage) == absl::AsciiStrToLower(s)) return std::string(s);
    }
    return absl::InvalidArgumentError(absl::StrCat(endpoint, ": stage '", stage,
                                                   "' is not one of None, Staging, Production, Archived"));
  }

  absl::StatusOr<json> GetLatestVersions(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    std::set<std::string> stages;
    auto it = a.find("stages");
    if (it != a.end() && !it->is_null()) {
      std::vector<json> items = it->is_array() ? std::vector<json>(it->begin(), it->end()) : std::vector<json>{*it};
      for (const json& s : items) {
        if (!s.is_string()) return absl::InvalidArgumentError("field 'stages' must be a list of strings");
        HEPML_ASSIGN_OR_RETURN(std::string stage, Stage("registered-models/get-latest-versions", s.get<std::string>()));
        stages.insert(stage);
      }
    }
    HEPML_RETURN_IF_ERROR(reg_.GetModel(name).status());
    HEPML_ASSIGN_OR_RETURN(auto versions, reg_.ListVersions(name));
    json list = json::array();
    for (const ModelVersion* v : LatestPerStage(versions, stages)) list.push_back(MlflowModelVersion(*v));
    return json{{"model_versions", list}};
  }

  absl::StatusOr<json> UpdateRegisteredModel(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(auto description, OptString(a, "description"));
    if (description) HEPML_RETURN_IF_ERROR(reg_.UpdateModelDescription(name, *description));
    HEPML_ASSIGN_OR_RETURN(json m, RegisteredModel(name));
    return json{{"registered_model", m}};
  }

  absl::StatusOr<json> RenameRegisteredModel(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(std::string new_name, String(a, "new_name"));
    HEPML_RETURN_IF_ERROR(reg_.RenameModel(name, new_name));
    HEPML_ASSIGN_OR_RETURN(json m, RegisteredModel(new_name));
    return json{{"registered_model", m}};
  }

  absl::StatusOr<json> DeleteRegisteredModel(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_RETURN_IF_ERROR(reg_.DeleteModel(name));
    return json::object();
  }

  absl::StatusOr<std::pair<std::string, int64_t>> VersionArgs(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(int64_t version, Int(a, "version"));
    if (version <= 0) return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
    return std::make_pair(name, version);
  }

  absl::StatusOr<json> TransitionStage(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto nv, VersionArgs(a));
    HEPML_ASSIGN_OR_RETURN(std::string stage_arg, String(a, "stage"));
    HEPML_ASSIGN_OR_RETURN(std::string stage, Stage("model-versions/transition-stage", stage_arg));
    HEPML_ASSIGN_OR_RETURN(bool archive, Bool(a, "archive_existing_versions", false));
    if (archive && stage != "Staging" && stage != "Production") {
      return absl::InvalidArgumentError(absl::StrCat("model-versions/transition-stage: archive_existing_versions"
                                                     " applies to stages Staging and Production, not '", stage, "'"));
    }
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.SetVersionStage(nv.first, nv.second, stage, archive));
    return json{{"model_version", MlflowModelVersion(v)}};
  }

  absl::StatusOr<json> UpdateModelVersion(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto nv, VersionArgs(a));
    HEPML_ASSIGN_OR_RETURN(auto description, OptString(a, "description"));
    if (description) HEPML_RETURN_IF_ERROR(reg_.UpdateVersionDescription(nv.first, nv.second, *description));
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetVersion(nv.first, nv.second));
    return json{{"model_version", MlflowModelVersion(v)}};
  }

  // hepml keeps every published version: aliases, validity intervals and
  // lineage refer to it and its files are immutable, so deletion is refused
  // (after checking the version exists); Archived is the way to retire one.
  absl::StatusOr<json> DeleteModelVersion(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto nv, VersionArgs(a));
    HEPML_RETURN_IF_ERROR(reg_.GetVersion(nv.first, nv.second).status());
    return absl::FailedPreconditionError(absl::StrCat(
        "model-versions/delete: ", nv.first, " version ", nv.second,
        " is published and hepml keeps published versions (aliases, validity intervals and lineage refer to them);"
        " retire it with model-versions/transition-stage to Archived instead"));
  }

  absl::StatusOr<json> SetModelVersionTag(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto nv, VersionArgs(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_ASSIGN_OR_RETURN(auto value, OptString(a, "value"));
    if (!value) return absl::InvalidArgumentError("missing field 'value'");
    HEPML_RETURN_IF_ERROR(reg_.SetVersionTag(nv.first, nv.second, key, *value));
    return json::object();
  }

  absl::StatusOr<json> DeleteModelVersionTag(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto nv, VersionArgs(a));
    HEPML_ASSIGN_OR_RETURN(std::string key, String(a, "key"));
    HEPML_RETURN_IF_ERROR(reg_.DeleteVersionTag(nv.first, nv.second, key));
    return json::object();
  }

  // model-versions/search: filter name='X', name LIKE 'P', run_id='R' (or
  // none); order_by name, version_number, creation_timestamp,
  // last_updated_timestamp; by name, then newest version first, when none
  // is given and to break ties.
  absl::StatusOr<json> SearchModelVersions(const json& a) {
    const std::string endpoint = "model-versions/search";
    HEPML_ASSIGN_OR_RETURN(auto filter, OptString(a, "filter"));
    std::string f(absl::StripAsciiWhitespace(filter.value_or("")));
    std::function<bool(const ModelVersion&)> match = [](const ModelVersion&) { return true; };
    if (!f.empty()) {
      absl::string_view fv(f);
      std::string field;
      for (const char* k : {"name", "run_id"}) {
        if (absl::ConsumePrefix(&fv, k)) {
          field = k;
          break;
        }
      }
      fv = absl::StripLeadingAsciiWhitespace(fv);
      bool like = false, ok = !field.empty();
      if (ok && absl::ConsumePrefix(&fv, "=")) {
      } else if (ok && field == "name" && (absl::ConsumePrefix(&fv, "LIKE ") || absl::ConsumePrefix(&fv, "like "))) {
        like = true;
      } else {
        ok = false;
      }
      fv = absl::StripAsciiWhitespace(fv);
      ok = ok && fv.size() >= 2 && (fv.front() == '\'' || fv.front() == '"') && fv.back() == fv.front();
      std::string value = ok ? std::string(fv.substr(1, fv.size() - 2)) : "";
      if (!ok || value.find(fv.front()) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(endpoint, ": filter '", f,
                                                       "' is not supported; use name='X', name LIKE 'pattern'"
                                                       " or run_id='ID'"));
      }
      if (field == "run_id") {
        match = [value](const ModelVersion& v) { return v.source_run && absl::StrCat(*v.source_run) == value; };
      } else if (like) {
        match = [value](const ModelVersion& v) { return LikeMatch(value, v.model); };
      } else {
        match = [value](const ModelVersion& v) { return v.model == value; };
      }
    }
    HEPML_ASSIGN_OR_RETURN(int64_t max_results, MaxResults(a, endpoint, 10000, 200000));
    HEPML_ASSIGN_OR_RETURN(int64_t offset, PageOffset(a, endpoint));
    HEPML_ASSIGN_OR_RETURN(auto order_by, OrderByList(a));
    HEPML_ASSIGN_OR_RETURN(std::vector<OrderClause> clauses,
                           AttributeOrderBy(endpoint, order_by, {"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
                                            "model versions order by name, version_number, creation_timestamp or last_updated_timestamp"));
    HEPML_ASSIGN_OR_RETURN(auto models, reg_.ListModels());
    std::vector<ModelVersion> all;
    for (const auto& m : models) {
      HEPML_ASSIGN_OR_RETURN(auto versions, reg_.ListVersions(m.name));
      for (auto& v : versions)
        if (match(v)) all.push_back(std::move(v));
    }
    std::stable_sort(all.begin(), all.end(), [&](const ModelVersion& x, const ModelVersion& y) {
      for (const OrderClause& c : clauses) {
        int r = 0;
        if (c.key == "name") r = CompareOptional<std::string>(x.model, y.model, c.ascending);
        if (c.key == "version_number") r = CompareOptional<int64_t>(x.version, y.version, c.ascending);
        if (c.key == "creation_timestamp") r = CompareOptional<int64_t>(x.created_at_ms, y.created_at_ms, c.ascending);
        if (c.key == "last_updated_timestamp") {
          r = CompareOptional<int64_t>(x.updated_at_ms, y.updated_at_ms, c.ascending);
        }
        if (r != 0) return r < 0;
      }
      if (x.model != y.model) return x.model < y.model;
      return x.version > y.version;
    });
    std::vector<json> list;
    for (const auto& v : all) list.push_back(MlflowModelVersion(v));
    return Page("model_versions", std::move(list), offset, max_results);
  }

  absl::StatusOr<json> GetRegisteredModel(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(json m, RegisteredModel(name));
    return json{{"registered_model", m}};
  }

  // Filters: none, name='X', or name LIKE 'pattern' (% and _ wildcards).
  absl::StatusOr<json> SearchRegisteredModels(const json& a) {
    HEPML_ASSIGN_OR_RETURN(auto filter, OptString(a, "filter"));
    std::function<bool(const std::string&)> match = [](const std::string&) { return true; };
    std::string f(absl::StripAsciiWhitespace(filter.value_or("")));
    if (!f.empty()) {
      absl::string_view fv(f);
      bool like = false, ok = false;
      std::string value;
      if (absl::ConsumePrefix(&fv, "name")) {
        fv = absl::StripLeadingAsciiWhitespace(fv);
        if (absl::ConsumePrefix(&fv, "=")) {
          ok = true;
        } else if (absl::ConsumePrefix(&fv, "LIKE ") || absl::ConsumePrefix(&fv, "like ")) {
          ok = like = true;
        }
        fv = absl::StripAsciiWhitespace(fv);
        ok = ok && fv.size() >= 2 && (fv.front() == '\'' || fv.front() == '"') && fv.back() == fv.front();
        if (ok) value = std::string(fv.substr(1, fv.size() - 2));
        ok = ok && value.find(fv.front()) == std::string::npos;
      }
      if (!ok) {
        return absl::UnimplementedError(absl::StrCat("registered-models/search: filter '", f,
                                                     "' is not supported; use name='X' or name LIKE 'pattern'"));
      }
      if (like) {
        match = [value](const std::string& name) { return LikeMatch(value, name); };
      } else {
        match = [value](const std::string& name) { return name == value; };
      }
    }
    const std::string endpoint = "registered-models/search";
    HEPML_ASSIGN_OR_RETURN(int64_t max_results, MaxResults(a, endpoint, 100, 50000));
    HEPML_ASSIGN_OR_RETURN(int64_t offset, PageOffset(a, endpoint));
    // order_by: name, creation_timestamp (or timestamp), last_updated_timestamp;
    // by name when none is given and to break ties.
    HEPML_ASSIGN_OR_RETURN(auto order_by, OrderByList(a));
    HEPML_ASSIGN_OR_RETURN(std::vector<OrderClause> clauses,
                           AttributeOrderBy(endpoint, order_by, {"name", "timestamp", "creation_timestamp", "last_updated_timestamp"},
                                            "registered models order by name, creation_timestamp or last_updated_timestamp"));
    for (OrderClause& c : clauses)
      if (c.key == "timestamp") c.key = "creation_timestamp";  // MLflow's older name
    HEPML_ASSIGN_OR_RETURN(auto models, reg_.ListModels());
    std::vector<json> all;
    for (const auto& m : models) {
      if (!match(m.name)) continue;
      HEPML_ASSIGN_OR_RETURN(json rm, RegisteredModel(m.name));
      all.push_back(std::move(rm));
    }
    std::stable_sort(all.begin(), all.end(), [&](const json& x, const json& y) {
      for (const OrderClause& c : clauses) {
        int r = c.key == "name" ? CompareOptional<std::string>(x["name"].get<std::string>(),
                                                               y["name"].get<std::string>(), c.ascending)
                                : CompareOptional<int64_t>(x[c.key].get<int64_t>(), y[c.key].get<int64_t>(),
                                                           c.ascending);
        if (r != 0) return r < 0;
      }
      return x["name"].get<std::string>() < y["name"].get<std::string>();
    });
    return Page("registered_models", std::move(all), offset, max_results);
  }

  // SQL LIKE: % any run, _ any one character.
  static bool LikeMatch(const std::string& pattern, const std::string& s) {
    std::function<bool(size_t, size_t)> at = [&](size_t p, size_t i) -> bool {
      if (p == pattern.size()) return i == s.size();
      if (pattern[p] == '%') {
        for (size_t k = i; k <= s.size(); ++k)
          if (at(p + 1, k)) return true;
        return false;
      }
      if (i == s.size()) return false;
      return (pattern[p] == '_' || pattern[p] == s[i]) && at(p + 1, i + 1);
    };
    return at(0, 0);
  }

  absl::StatusOr<json> SetModelAlias(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(std::string alias, String(a, "alias"));
    HEPML_ASSIGN_OR_RETURN(int64_t version, Int(a, "version"));
    HEPML_RETURN_IF_ERROR(reg_.SetAlias(name, alias, version));
    return json::object();
  }

  absl::StatusOr<json> GetModelVersionByAlias(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(std::string alias, String(a, "alias"));
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetAlias(name, alias));
    return json{{"model_version", MlflowModelVersion(v)}};
  }

  absl::StatusOr<json> DeleteModelAlias(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(std::string alias, String(a, "alias"));
    HEPML_RETURN_IF_ERROR(reg_.RemoveAlias(name, alias));
    return json::object();
  }

  // The files of `source` (a file, or a folder's regular files, sorted), a
  // path under --source-root.
  absl::StatusOr<std::vector<std::string>> SourceFiles(const std::string& source) {
    if (options_.source_root.empty()) {
      return absl::FailedPreconditionError(
          "model-versions/create reads files on the server: start `hepml registry serve` with --source-root DIR");
    }
    std::string path = source;
    if (absl::StartsWith(path, "file://")) path = path.substr(7);
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("model-versions/create: source '", source,
                                                     "' must be an absolute path or file:// URI on the server,"
                                                     " runs:/RUN_ID/PATH or mlflow-artifacts:/EXPERIMENT_ID/RUN_ID/"
                                                     "artifacts/PATH (other remote URIs are not supported)"));
    }
    std::error_code ec;
    fs::path root = fs::weakly_canonical(options_.source_root, ec);
    // Symbolic links resolved first, so none leads out of the root.
    auto under_root = [&](const fs::path& p) -> absl::StatusOr<fs::path> {
      std::error_code e;
      fs::path real = fs::weakly_canonical(p, e);
      auto rel = real.lexically_relative(root);
      if (e || rel.empty() || *rel.begin() == "..") {
        return absl::InvalidArgumentError(absl::StrCat("model-versions/create: source '", p.string(),
                                                       "' is outside the server's --source-root"));
      }
      return real;
    };
    HEPML_ASSIGN_OR_RETURN(fs::path real, under_root(path));
    if (!fs::exists(real, ec)) return absl::NotFoundError(absl::StrCat("source '", source, "' does not exist"));
    std::vector<std::string> files;
    if (fs::is_directory(real, ec)) {
      for (const auto& e : fs::directory_iterator(real, ec)) {
        if (!e.is_regular_file()) continue;
        HEPML_ASSIGN_OR_RETURN(fs::path file, under_root(e.path()));
        files.push_back(file.string());
      }
      std::sort(files.begin(), files.end());
      // The .onnx file first: it gives the version's signature.
      std::stable_partition(files.begin(), files.end(), [](const std::string& f) { return absl::EndsWith(f, ".onnx"); });
      if (files.empty()) return absl::InvalidArgumentError(absl::StrCat("source folder '", source, "' has no files"));
    } else {
      files.push_back(real.string());
    }
    return files;
  }

  absl::StatusOr<json> CreateModelVersion(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(std::string source, String(a, "source"));
    HEPML_ASSIGN_OR_RETURN(auto tags, KeyValues(a, "tags"));
    PushOptions options;
    for (const auto& [k, v] : tags) options.tags[k] = v;
    if (a.contains("run_id") && !a["run_id"].is_null() && a["run_id"] != "") {
      HEPML_ASSIGN_OR_RETURN(int64_t run, Id(a, "run_id", "run"));
      HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
      options.source_run = run;
      options.params = info.params;
      for (const auto& p : info.metrics) options.metrics[p.key] = p.value;  // the latest step wins
    }
    HEPML_RETURN_IF_ERROR(reg_.GetModel(name).status());
    HEPML_ASSIGN_OR_RETURN(auto run_source, RunArtifactSource(source));
    if (!run_source) {
      HEPML_ASSIGN_OR_RETURN(auto files, SourceFiles(source));
      HEPML_ASSIGN_OR_RETURN(auto v, reg_.PushModelVersion(name, files, options));
      return json{{"model_version", MlflowModelVersion(v)}};
    }
    // The files a run logged as artifacts: fetched into a private folder, pushed, removed.
    auto [run, path] = *run_source;
    if (!options.source_run) options.source_run = run;
    HEPML_ASSIGN_OR_RETURN(fs::path dir, StagingDir());
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
      }
    } cleanup{dir};
    HEPML_ASSIGN_OR_RETURN(auto files, FetchRunArtifacts(run, path, dir));
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.PushModelVersion(name, files, options));
    return json{{"model_version", MlflowModelVersion(v)}};
  }

  // runs:/RUN/PATH or mlflow-artifacts:[//HOST]/EXPERIMENT/RUN/artifacts/PATH
  // (what MLflow's clients register): the run and the artifact path (a file
  // or a folder; "" = all). nullopt for any other source.
  absl::StatusOr<std::optional<std::pair<int64_t, std::string>>> RunArtifactSource(const std::string& source) {
    using Out = std::optional<std::pair<int64_t, std::string>>;
    absl::string_view rest(source);
    const bool runs = absl::ConsumePrefix(&rest, "runs:");
    if (!runs && !absl::ConsumePrefix(&rest, "mlflow-artifacts:")) return Out();
    if (!runs && absl::ConsumePrefix(&rest, "//")) rest.remove_prefix(std::min(rest.size(), rest.find('/')));
    while (absl::ConsumePrefix(&rest, "/")) {
    }
    std::vector<std::string> parts = absl::StrSplit(rest, absl::MaxSplits('/', runs ? 1 : 3));
    int64_t experiment = 0, run = 0;
    const size_t run_at = runs ? 0 : 1;
    bool ok = parts.size() > run_at && absl::SimpleAtoi(parts[run_at], &run) && run > 0;
    if (!runs) ok = ok && parts.size() >= 3 && absl::SimpleAtoi(parts[0], &experiment) && parts[2] == "artifacts";
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("model-versions/create: source '", source, "': expected ",
                                                     runs ? "runs:/RUN_ID/PATH"
                                                          : "mlflow-artifacts:/EXPERIMENT_ID/RUN_ID/artifacts/PATH"));
    }
    std::string path = parts.size() > run_at + (runs ? 1 : 2) ? parts.back() : "";
    while (absl::EndsWith(path, "/")) path.pop_back();
    if (!path.empty()) HEPML_RETURN_IF_ERROR(CheckArtifactPath(path));
    HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
    if (!runs && info.experiment_id.value_or(0) != experiment) {
      return absl::NotFoundError(absl::StrCat("run ", run, " is not in experiment ", experiment));
    }
    return Out(std::make_pair(run, path));
  }

  // Writes the artifacts of `run` at `path` (the file, or every file below
  // the folder) into `dir` under their own names, the .onnx ones first.
  absl::StatusOr<std::vector<std::string>> FetchRunArtifacts(int64_t run, const std::string& path, const fs::path& dir) {
    HEPML_ASSIGN_OR_RETURN(auto info, reg_.GetRun(run));
    std::vector<std::string> files;
    std::set<std::string> names;
    for (const FileEntry& f : info.artifacts) {
      if (!path.empty() && f.name != path && !absl::StartsWith(f.name, path + "/")) continue;
      std::string base = fs::path(f.name).filename().string();
      if (!names.insert(base).second) {
        return absl::InvalidArgumentError(absl::StrCat("model-versions/create: run ", run, " has two artifacts named '",
                                                       base, "' under '", path, "'; a version's files have one folder"));
      }
      HEPML_RETURN_IF_ERROR(reg_.GetArtifact(run, f.name, (dir / base).string()).status());
      files.push_back((dir / base).string());
    }
    if (files.empty()) {
      return absl::NotFoundError(absl::StrCat("run ", run, " has no artifacts under '", path, "'"));
    }
    std::stable_partition(files.begin(), files.end(), [](const std::string& f) { return absl::EndsWith(f, ".onnx"); });
    return files;
  }

  absl::StatusOr<json> GetModelVersion(const json& a) {
    HEPML_ASSIGN_OR_RETURN(std::string name, String(a, "name"));
    HEPML_ASSIGN_OR_RETURN(int64_t version, Int(a, "version"));
    HEPML_ASSIGN_OR_RETURN(auto v, reg_.GetVersion(name, version));
    return json{{"model_version", MlflowModelVersion(v)}};
  }

  Registry& reg_;
  const RestApiOptions& options_;
};

}  // namespace

RestApi::RestApi(Registry* registry, RestApiOptions options) : registry_(registry), options_(std::move(options)) {}

void RestApi::Handle(const serve::HttpRequest& req, serve::HttpResponse& res, serve::HttpFileReply* file) {
  absl::StatusOr<Reply> reply;
  try {
    auto call = ParseCall(req);
    if (!call.ok()) {
      reply = call.status();
    } else {
      Handler h(*registry_, options_);
      reply = h.Dispatch(*call);
    }
  } catch (const std::exception& e) {
    // nlohmann's type errors and the like: a bug of ours, answered, never a crash.
    reply = absl::InternalError(absl::StrCat("internal error: ", e.what()));
  }
  res.set(http::field::content_type, "application/json");
  if (!reply.ok()) {
    res.result(static_cast<http::status>(HttpStatusFor(reply.status())));
    json err = {{"error_code", ErrorCodeFor(reply.status())}, {"message", std::string(reply.status().message())}};
    res.body() = err.dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  res.result(http::status::ok);
  if (!reply->file_path.empty()) {
    res.set(http::field::content_type, "application/octet-stream");
    res.set(http::field::content_disposition, absl::StrCat("attachment; filename=\"", reply->file_name, "\""));
    file->path = reply->file_path;
    file->done = reply->done;
    return;
  }
  res.body() = reply->body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace hepml::registry
