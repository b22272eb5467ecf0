// hepml::registry::Registry: the metadata store plus the blob store, and the
// hooks fired after commits.
#include "hepml/registry.h"

#include <arpa/inet.h>
#include <poll.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cerrno>
#include <csignal>
#include <pthread.h>
#include <signal.h>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "hepml/status.h"
#include "nlohmann/json.hpp"
#include "onnx/importer.h"
#include "registry/blob_store.h"
#include "registry/metadata_store.h"

extern char** environ;

namespace hepml::registry {
namespace fs = std::filesystem;


namespace {

std::string DefaultUser() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  if (struct passwd* pw = getpwuid(getuid()); pw && pw->pw_name) return pw->pw_name;
  return "unknown";
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string EventJson(const Event& e) {
  nlohmann::json j = {{"id", e.id}, {"kind", e.kind}, {"created_at_ms", e.created_at_ms}};
  j["payload"] = nlohmann::json::parse(e.payload_json, nullptr, false);
  return j.dump();
}

// Runs `command` under /bin/sh with the event on stdin and in the
// environment; OK when it exits 0.
// A command that outlives `timeout_s` is killed with its process group.
absl::Status RunCommandHook(const std::string& command, const Event& e, const std::string& body, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  std::vector<std::string> env_strings;
  for (char** p = environ; *p; ++p) {
    if (!absl::StartsWith(*p, "HEPML_EVENT")) env_strings.push_back(*p);
  }
  env_strings.push_back(absl::StrCat("HEPML_EVENT_KIND=", e.kind));
  env_strings.push_back(absl::StrCat("HEPML_EVENT_ID=", e.id));
  env_strings.push_back(absl::StrCat("HEPML_EVENT=", body));
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
  // Its own process group, so a timeout kills what it started too.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[0]);
  if (rc != 0) {
    close(fds[1]);
    return absl::InternalError(absl::StrCat("cannot start hook command: ", std::strerror(rc)));
  }
  // A command that does not read stdin must not kill us with SIGPIPE: block
  // it in this thread while writing and consume one raised by our write.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  bool broken = false;
  size_t off = 0;
  // Non-blocking, so a command that never reads a large event cannot hold
  // us past the deadline.
  fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  while (off < body.size() && Clock::now() < deadline) {
    ssize_t n = write(fds[1], body.data() + off, body.size() - off);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      pollfd p{fds[1], POLLOUT, 0};
      poll(&p, 1, 50);
      continue;
    }
    if (n <= 0) {
      broken = n < 0 && errno == EPIPE;
      break;
    }
    off += static_cast<size_t>(n);
  }
  close(fds[1]);
  if (broken) {
    timespec zero{0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  int status = 0;
  auto reaped = [&] {
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    return r != 0;
  };
  auto nap = std::chrono::milliseconds(1);
  while (!reaped()) {
    if (Clock::now() >= deadline) {
      kill(-pid, SIGTERM);
      auto grace = Clock::now() + std::chrono::seconds(1);
      while (!reaped()) {
        if (Clock::now() >= grace) {
          kill(-pid, SIGKILL);
          while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      kill(-pid, SIGKILL);  // anything of its group still running
      return absl::DeadlineExceededError(
          absl::StrCat("hook command '", command, "' did not finish within ", timeout_s, " s and was killed"));
    }
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::milliseconds(50));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status)) {
    return absl::InternalError(absl::StrCat("hook command '", command, "' exited with ", WEXITSTATUS(status)));
  }
  return absl::InternalError(absl::StrCat("hook command '", command, "' was killed by signal ", WTERMSIG(status)));
}

// POSTs `body` to an http:// URL; OK on a 2xx answer.
absl::Status PostHook(const std::string& url, const std::string& body, double timeout_s) {
  std::string rest = url.substr(7);
  std::string hostport = rest.substr(0, rest.find('/'));
  std::string path = rest.find('/') == std::string::npos ? "/" : rest.substr(rest.find('/'));
  std::string host = hostport, port = "80";
  if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError(absl::StrCat("hook URL '", url, "' has no host"));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return absl::UnavailableError(absl::StrCat("hook URL '", url, "': ", gai_strerror(rc)));
  }
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - static_cast<time_t>(timeout_s)) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("hook URL '", url, "': cannot connect"));
  std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: ", hostport,
                                 "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                                 "\r\nConnection: close\r\n\r\n", body);
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return absl::UnavailableError(absl::StrCat("hook URL '", url, "': send failed"));
    }
    off += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[1024];
  while (answer.find("\r\n") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  std::vector<std::string> parts = absl::StrSplit(answer.substr(0, answer.find("\r\n")), ' ');
  int code = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[1], &code)) {
    return absl::UnavailableError(absl::StrCat("hook URL '", url, "': no HTTP answer"));
  }
  if (code < 200 || code > 299) {
    return absl::UnavailableError(absl::StrCat("hook URL '", url, "' answered ", code));
  }
  return absl::OkStatus();
}

std::string SignatureType(const TypeInfo& t) { return t.ToString(); }

}  // namespace

struct Registry::Impl {
  std::unique_ptr<MetadataStore> md;
  std::unique_ptr<BlobStore> blobs;
  RegistryOptions options;
  std::string blob_uri;
  std::mutex mu;
  std::vector<HookFailure> hook_failures;

  // Fires the hooks matching the events the last write committed.
  void FireHooks() {
    hook_failures.clear();
    std::vector<Event> events = md->TakeCommittedEvents();
    if (events.empty() || !options.run_hooks) return;
    auto hooks = md->ListHooks();
    if (!hooks.ok()) {
      hook_failures.push_back({0, std::string(hooks.status().message())});
      return;
    }
    for (const Event& e : events) {
      std::string body = EventJson(e);
      for (const Hook& h : *hooks) {
        if (h.event_kind != "*" && h.event_kind != e.kind) continue;
        absl::Status s = h.url.empty() ? RunCommandHook(h.command, e, body, options.hook_timeout_s)
                                     : PostHook(h.url, body, options.hook_timeout_s);
        if (!s.ok()) hook_failures.push_back({h.id, std::string(s.message())});
      }
    }
  }

  // Cheap refusals before any byte is stored: an unknown or ended run, a
  // name the run already has.
  absl::Status CheckArtifactWritable(int64_t run, const std::string& name) {
    HEPML_ASSIGN_OR_RETURN(RunInfo info, md->GetRun(run));
    if (info.status != "running") {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run, " has ended (", info.status, "); its record is closed"));
    }
    for (const FileEntry& f : info.artifacts) {
      if (f.name == name) {
        return absl::AlreadyExistsError(absl::StrCat("run ", run, " already has an artifact named '", name, "'"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<FileEntry> Store(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      return absl::NotFoundError(absl::StrCat("file '", path, "' does not exist or is not a regular file"));
    }
    auto m = blobs->PutFile(path);
    if (!m.ok()) {
      return absl::Status(m.status().code(), absl::StrCat("storing '", path, "': ", m.status().message()));
    }
    return FileEntry{fs::path(path).filename().string(), m->id, m->size, m->id};
  }
};

absl::Status CheckArtifactPath(const std::string& name) {
  auto bad = [&](const char* why) {
    return absl::InvalidArgumentError(absl::StrCat("artifact path '", name, "' ", why));
  };
  if (name.empty()) return absl::InvalidArgumentError("artifact path is empty");
  if (name.size() > 1024) return bad("is longer than 1024 characters");
  if (name[0] == '/') return bad("is absolute; give a path relative to the run's artifacts");
  for (char c : name) {
    if (c == '\\' || c == '\0' || static_cast<unsigned char>(c) < 0x20) return bad("has a backslash or a control character");
  }
  for (absl::string_view seg : absl::StrSplit(name, '/')) {
    if (seg.empty()) return bad("has an empty segment");
    if (seg == "." || seg == "..") return bad("has a '.' or '..' segment");
  }
  return absl::OkStatus();
}

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

absl::StatusOr<std::unique_ptr<Registry>> Registry::OpenDir(const std::string& dir, const RegistryOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("registry directory is empty");
  std::error_code ec;
  fs::path root = fs::absolute(dir, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("registry directory '", dir, "': ", ec.message()));
  if (!options.create_if_missing && !fs::exists(root / "registry.db", ec)) {
    return absl::NotFoundError(absl::StrCat("no registry at '", dir, "' (no registry.db; create one with init)"));
  }
  fs::create_directories(root / "blobs", ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create registry directory '", dir, "': ", ec.message()));
  return Open(absl::StrCat("sqlite://", (root / "registry.db").string()), absl::StrCat("file://", (root / "blobs").string()),
              options);
}

absl::StatusOr<std::unique_ptr<Registry>> Registry::Open(const std::string& metadata_uri, const std::string& blob_uri,
                                                         const RegistryOptions& options) {
  return OpenImpl(metadata_uri, nullptr, blob_uri, options);
}

absl::StatusOr<std::unique_ptr<Registry>> Registry::OpenWithBlobStore(const std::string& metadata_uri,
                                                                      std::unique_ptr<BlobStore> blobs,
                                                                      const RegistryOptions& options) {
  if (!blobs) return absl::InvalidArgumentError("no blob store");
  return OpenImpl(metadata_uri, std::move(blobs), "", options);
}

// The metadata store is opened (and migrated) first: its URI is the one users
// mistype most, and it must be readable before any blob is touched.
absl::StatusOr<std::unique_ptr<Registry>> Registry::OpenImpl(const std::string& metadata_uri,
                                                             std::unique_ptr<BlobStore> blobs,
                                                             const std::string& blob_uri,
                                                             const RegistryOptions& options) {
  RegistryOptions opts = options;
  if (opts.user.empty()) opts.user = DefaultUser();
  HEPML_ASSIGN_OR_RETURN(std::unique_ptr<MetadataStore> md, MetadataStore::Open(metadata_uri, opts.user));
  if (!blobs) {
    auto opened = BlobStore::Open(blob_uri);
    if (!opened.ok()) {
      return absl::Status(opened.status().code(),
                          absl::StrCat("blob store '", blob_uri, "': ", opened.status().message()));
    }
    blobs = std::move(*opened);
  }
  std::unique_ptr<Registry> r(new Registry());
  r->impl_->md = std::move(md);
  r->impl_->blob_uri = blobs->uri();
  r->impl_->blobs = std::move(blobs);
  r->impl_->options = opts;
  return r;
}

const std::string& Registry::metadata_uri() const { return impl_->md->uri(); }
const std::string& Registry::blob_uri() const { return impl_->blob_uri; }

#define LOCKED std::lock_guard<std::mutex> lock(impl_->mu)

absl::StatusOr<ModelInfo> Registry::CreateModel(const std::string& name, const std::string& description) {
  LOCKED;
  return impl_->md->CreateModel(name, description);
}
absl::StatusOr<std::vector<ModelInfo>> Registry::ListModels() {
  LOCKED;
  return impl_->md->ListModels();
}
absl::StatusOr<ModelInfo> Registry::GetModel(const std::string& name) {
  LOCKED;
  return impl_->md->GetModel(name);
}
absl::StatusOr<std::vector<ModelVersion>> Registry::ListVersions(const std::string& model) {
  LOCKED;
  return impl_->md->ListVersions(model);
}
absl::StatusOr<ModelVersion> Registry::GetVersion(const std::string& model, int64_t version) {
  LOCKED;
  return impl_->md->GetVersion(model, version);
}

absl::StatusOr<ModelVersion> Registry::PushModelVersion(const std::string& model,
                                                        const std::vector<std::string>& files,
                                                        const PushOptions& options) {
  LOCKED;
  if (files.empty()) return absl::InvalidArgumentError("push needs at least one file");
  // Cheap checks before any byte is stored.
  HEPML_RETURN_IF_ERROR(impl_->md->GetModel(model).status());
  NewModelVersion v;
  v.options = options;
  v.expected_version = options.version;
  bool have_signature = false;
  for (const std::string& path : files) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      return absl::NotFoundError(absl::StrCat("file '", path, "' does not exist or is not a regular file"));
    }
    if (!have_signature && absl::EndsWithIgnoreCase(path, ".onnx")) {
      ImportOptions io;
      io.onnx_shape_inference = false;
      auto m = LoadModel(path, io);
      if (!m.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", path, "' is not an ONNX model hepml can read: ", m.status().message()));
      }
      for (const ValueInfo& in : m->graph.inputs) v.inputs.push_back({in.name, SignatureType(in.type)});
      for (const ValueInfo& out : m->graph.outputs) v.outputs.push_back({out.name, SignatureType(out.type)});
      have_signature = true;
    }
  }
  // Blobs first (durable on OK), then the metadata in one transaction.
  for (const std::string& path : files) {
    HEPML_ASSIGN_OR_RETURN(FileEntry f, impl_->Store(path));
    v.files.push_back(std::move(f));
  }
  auto out = impl_->md->PublishVersion(model, v);
  impl_->FireHooks();
  return out;
}

absl::StatusOr<ModelVersion> Registry::ResolveRef(const std::string& ref) {
  LOCKED;
  auto at = ref.find('@');
  std::string model = ref.substr(0, at);
  if (model.empty()) return absl::InvalidArgumentError(absl::StrCat("model reference '", ref, "' has no model name"));
  if (at == std::string::npos) {
    HEPML_ASSIGN_OR_RETURN(ModelInfo info, impl_->md->GetModel(model));
    if (info.latest_version == 0) return absl::NotFoundError(absl::StrCat("model '", model, "' has no version yet"));
    return impl_->md->GetVersion(model, info.latest_version);
  }
  std::string what = ref.substr(at + 1);
  if (what.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model reference '", ref, "': expected MODEL@VERSION, MODEL@ALIAS or MODEL@tag:TAG:RUN"));
  }
  int64_t version = 0;
  if (absl::SimpleAtoi(what, &version)) return impl_->md->GetVersion(model, version);
  if (absl::StartsWith(what, "tag:")) {
    std::vector<std::string> parts = absl::StrSplit(what, ':');
    int64_t run = 0;
    if (parts.size() != 3 || parts[1].empty() || !absl::SimpleAtoi(parts[2], &run)) {
      return absl::InvalidArgumentError(absl::StrCat("model reference '", ref, "': expected MODEL@tag:TAG:RUN"));
    }
    HEPML_ASSIGN_OR_RETURN(Interval iv, impl_->md->Resolve(parts[1], run));
    if (iv.model != model) {
      return absl::FailedPreconditionError(absl::StrCat("tag '", parts[1], "' at run ", run, " gives ", iv.model, "@",
                                                        iv.version, ", not a version of '", model, "'"));
    }
    return impl_->md->GetVersion(model, iv.version);
  }
  HEPML_ASSIGN_OR_RETURN(int64_t v, impl_->md->AliasVersion(model, what));
  return impl_->md->GetVersion(model, v);
}

absl::StatusOr<std::vector<std::string>> Registry::Pull(const std::string& ref, const std::string& dest) {
  HEPML_ASSIGN_OR_RETURN(ModelVersion v, ResolveRef(ref));
  LOCKED;
  std::error_code ec;
  std::vector<std::string> written;
  if (v.files.size() == 1 && !fs::is_directory(dest, ec)) {
    fs::path parent = fs::path(dest).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec)) {
      return absl::NotFoundError(absl::StrCat("destination folder '", parent.string(), "' does not exist"));
    }
    HEPML_RETURN_IF_ERROR(impl_->blobs->GetFile(v.files[0].manifest_id, dest));
    written.push_back(dest);
    return written;
  }
  fs::create_directories(dest, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create '", dest, "': ", ec.message()));
  for (const FileEntry& f : v.files) {
    std::string path = (fs::path(dest) / f.name).string();
    HEPML_RETURN_IF_ERROR(impl_->blobs->GetFile(f.manifest_id, path));
    written.push_back(path);
  }
  return written;
}

absl::Status Registry::SetAlias(const std::string& model, const std::string& alias, int64_t version) {
  LOCKED;
  absl::Status s = impl_->md->SetAlias(model, alias, version);
  impl_->FireHooks();
  return s;
}
absl::Status Registry::RemoveAlias(const std::string& model, const std::string& alias) {
  LOCKED;
  absl::Status s = impl_->md->RemoveAlias(model, alias);
  impl_->FireHooks();
  return s;
}
absl::StatusOr<ModelVersion> Registry::GetAlias(const std::string& model, const std::string& alias) {
  LOCKED;
  HEPML_ASSIGN_OR_RETURN(int64_t v, impl_->md->AliasVersion(model, alias));
  return impl_->md->GetVersion(model, v);
}
absl::StatusOr<std::vector<AliasMove>> Registry::AliasHistory(const std::string& model, const std::string& alias) {
  LOCKED;
  return impl_->md->AliasHistory(model, alias);
}

absl::Status Registry::AddInterval(const std::string& tag, const std::string& model, int64_t version,
                                   const IntervalSpec& range) {
  LOCKED;
  return impl_->md->AddInterval(tag, model, version, range);
}
absl::StatusOr<std::vector<Interval>> Registry::ListIntervals(const std::string& tag) {
  LOCKED;
  return impl_->md->ListIntervals(tag);
}
absl::StatusOr<Interval> Registry::Resolve(const std::string& tag, int64_t run) {
  LOCKED;
  return impl_->md->Resolve(tag, run);
}
absl::StatusOr<Interval> Registry::ResolveTime(const std::string& tag, int64_t unix_seconds) {
  LOCKED;
  return impl_->md->ResolveTime(tag, unix_seconds);
}
absl::Status Registry::CreateGlobalTag(const std::string& name, const std::string& description) {
  LOCKED;
  return impl_->md->CreateGlobalTag(name, description);
}
absl::Status Registry::AddToGlobalTag(const std::string& global_tag, const std::string& tag,
                                      const std::string& record) {
  LOCKED;
  return impl_->md->AddToGlobalTag(global_tag, tag, record);
}
absl::StatusOr<std::vector<GlobalTagEntry>> Registry::ListGlobalTag(const std::string& global_tag) {
  LOCKED;
  return impl_->md->ListGlobalTag(global_tag);
}
absl::StatusOr<Interval> Registry::Resolve(const std::string& global_tag, const std::string& record, int64_t run) {
  LOCKED;
  return impl_->md->ResolveGlobal(global_tag, record, run);
}

absl::StatusOr<DatasetVersion> Registry::AddDatasetVersion(const std::string& dataset,
                                                           const std::vector<std::string>& files,
                                                           const DatasetOptions& options) {
  LOCKED;
  HEPML_RETURN_IF_ERROR(CheckName("dataset", dataset));
  if (files.empty()) return absl::InvalidArgumentError("a dataset version needs at least one file");
  std::vector<FileEntry> entries;
  for (const std::string& path : files) {
    HEPML_ASSIGN_OR_RETURN(FileEntry f, impl_->Store(path));
    entries.push_back(std::move(f));
  }
  auto out = impl_->md->AddDatasetVersion(dataset, entries, options);
  impl_->FireHooks();
  return out;
}
absl::StatusOr<DatasetVersion> Registry::GetDatasetVersion(const std::string& dataset, int64_t version) {
  LOCKED;
  return impl_->md->GetDatasetVersion(dataset, version);
}
absl::StatusOr<std::vector<DatasetVersion>> Registry::ListDatasetVersions(const std::string& dataset) {
  LOCKED;
  return impl_->md->ListDatasetVersions(dataset);
}

absl::StatusOr<int64_t> Registry::StartRun(const RunStart& start) {
  LOCKED;
  return impl_->md->StartRun(start, HostName());
}
absl::Status Registry::LogParam(int64_t run, const std::string& key, const std::string& value) {
  LOCKED;
  return impl_->md->LogParam(run, key, value);
}
absl::Status Registry::LogMetric(int64_t run, const std::string& key, double value, int64_t step) {
  LOCKED;
  return impl_->md->LogMetric(run, key, value, step);
}
absl::StatusOr<FileEntry> Registry::LogArtifact(int64_t run, const std::string& path, const std::string& name) {
  LOCKED;
  if (!name.empty()) HEPML_RETURN_IF_ERROR(CheckArtifactPath(name));
  HEPML_RETURN_IF_ERROR(impl_->CheckArtifactWritable(run, name.empty() ? fs::path(path).filename().string() : name));
  HEPML_ASSIGN_OR_RETURN(FileEntry f, impl_->Store(path));
  if (!name.empty()) f.name = name;
  HEPML_RETURN_IF_ERROR(impl_->md->AddArtifact(run, f));
  return f;
}
absl::StatusOr<FileEntry> Registry::LogArtifactBytes(int64_t run, const std::string& name, const std::string& bytes) {
  LOCKED;
  HEPML_RETURN_IF_ERROR(CheckArtifactPath(name));
  HEPML_RETURN_IF_ERROR(impl_->CheckArtifactWritable(run, name));
  auto m = impl_->blobs->PutBytes(bytes);
  if (!m.ok()) {
    return absl::Status(m.status().code(), absl::StrCat("storing artifact '", name, "': ", m.status().message()));
  }
  FileEntry f{name, m->id, m->size, m->id};
  HEPML_RETURN_IF_ERROR(impl_->md->AddArtifact(run, f));
  return f;
}
absl::StatusOr<FileEntry> Registry::GetArtifact(int64_t run, const std::string& name, const std::string& dest) {
  LOCKED;
  HEPML_RETURN_IF_ERROR(CheckArtifactPath(name));
  HEPML_ASSIGN_OR_RETURN(RunInfo info, impl_->md->GetRun(run));
  for (const FileEntry& f : info.artifacts) {
    if (f.name != name) continue;
    HEPML_RETURN_IF_ERROR(impl_->blobs->GetFile(f.manifest_id, dest));
    return f;
  }
  return absl::NotFoundError(absl::StrCat("run ", run, " has no artifact '", name, "'"));
}
absl::Status Registry::EndRun(int64_t run, const RunEnd& end) {
  LOCKED;
  return impl_->md->EndRun(run, end);
}
absl::StatusOr<RunInfo> Registry::GetRun(int64_t run) {
  LOCKED;
  return impl_->md->GetRun(run);
}
absl::Status Registry::LogBatch(int64_t run, const RunBatch& batch) {
  LOCKED;
  return impl_->md->LogBatch(run, batch);
}
absl::Status Registry::SetRunTag(int64_t run, const std::string& key, const std::string& value) {
  LOCKED;
  return impl_->md->SetRunTag(run, key, value);
}
absl::Status Registry::DeleteRunTag(int64_t run, const std::string& key) {
  LOCKED;
  return impl_->md->DeleteRunTag(run, key);
}
absl::StatusOr<std::vector<RunInfo>> Registry::SearchRuns(const std::vector<int64_t>& experiment_ids,
                                                          int64_t max_results, LifecycleView view) {
  LOCKED;
  return impl_->md->SearchRuns(experiment_ids, max_results, view);
}
absl::Status Registry::DeleteRun(int64_t run) {
  LOCKED;
  return impl_->md->SetRunDeleted(run, true);
}
absl::Status Registry::RestoreRun(int64_t run) {
  LOCKED;
  return impl_->md->SetRunDeleted(run, false);
}
absl::Status Registry::DeleteExperiment(int64_t id) {
  LOCKED;
  return impl_->md->SetExperimentDeleted(id, true);
}
absl::Status Registry::RestoreExperiment(int64_t id) {
  LOCKED;
  return impl_->md->SetExperimentDeleted(id, false);
}
absl::Status Registry::SetExperimentTag(int64_t id, const std::string& key, const std::string& value) {
  LOCKED;
  return impl_->md->SetExperimentTag(id, key, value);
}
absl::Status Registry::UpdateModelDescription(const std::string& model, const std::string& description) {
  LOCKED;
  return impl_->md->UpdateModelDescription(model, description);
}
absl::Status Registry::RenameModel(const std::string& model, const std::string& new_name) {
  LOCKED;
  return impl_->md->RenameModel(model, new_name);
}
absl::Status Registry::DeleteModel(const std::string& model) {
  LOCKED;
  return impl_->md->DeleteModel(model);
}
absl::StatusOr<ModelVersion> Registry::SetVersionStage(const std::string& model, int64_t version,
                                                       const std::string& stage, bool archive_existing) {
  LOCKED;
  HEPML_RETURN_IF_ERROR(impl_->md->SetVersionStage(model, version, stage, archive_existing));
  return impl_->md->GetVersion(model, version);
}
absl::Status Registry::UpdateVersionDescription(const std::string& model, int64_t version,
                                                const std::string& description) {
  LOCKED;
  return impl_->md->UpdateVersionDescription(model, version, description);
}
absl::Status Registry::SetVersionTag(const std::string& model, int64_t version, const std::string& key,
                                     const std::string& value) {
  LOCKED;
  return impl_->md->SetVersionTag(model, version, key, value);
}
absl::Status Registry::DeleteVersionTag(const std::string& model, int64_t version, const std::string& key) {
  LOCKED;
  return impl_->md->SetVersionTag(model, version, key, std::nullopt);
}
absl::StatusOr<Experiment> Registry::CreateExperiment(const std::string& name) {
  LOCKED;
  return impl_->md->CreateExperiment(name);
}
absl::Status Registry::RenameExperiment(int64_t id, const std::string& new_name) {
  LOCKED;
  return impl_->md->RenameExperiment(id, new_name);
}
absl::StatusOr<Experiment> Registry::GetExperiment(int64_t id) {
  LOCKED;
  return impl_->md->GetExperiment(id);
}
absl::StatusOr<Experiment> Registry::GetExperimentByName(const std::string& name) {
  LOCKED;
  return impl_->md->GetExperimentByName(name);
}
absl::StatusOr<std::vector<Experiment>> Registry::ListExperiments() {
  LOCKED;
  return impl_->md->ListExperiments();
}

absl::StatusOr<Lineage> Registry::Upstream(const std::string& model, int64_t version, const LineageOptions& options) {
  LOCKED;
  return impl_->md->Upstream(model, version, options);
}
absl::StatusOr<Lineage> Registry::Downstream(const std::string& dataset, int64_t version,
                                             const LineageOptions& options) {
  LOCKED;
  return impl_->md->Downstream(dataset, version, options);
}
absl::StatusOr<Lineage> Registry::DownstreamOfModel(const std::string& model, int64_t version,
                                                    const LineageOptions& options) {
  LOCKED;
  return impl_->md->DownstreamOfModel(model, version, options);
}
absl::StatusOr<Lineage> Registry::DownstreamOfRun(int64_t run, const LineageOptions& options) {
  LOCKED;
  return impl_->md->DownstreamOfRun(run, options);
}

absl::StatusOr<std::vector<Event>> Registry::Events(int64_t after_id) {
  LOCKED;
  return impl_->md->Events(after_id);
}
absl::StatusOr<Hook> Registry::AddHook(const std::string& event_kind, const std::string& command_or_url) {
  LOCKED;
  return impl_->md->AddHook(event_kind, command_or_url);
}
absl::StatusOr<std::vector<Hook>> Registry::ListHooks() {
  LOCKED;
  return impl_->md->ListHooks();
}
std::vector<HookFailure> Registry::last_hook_failures() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->hook_failures;
}

absl::StatusOr<FsckResult> Registry::Fsck() {
  LOCKED;
  HEPML_ASSIGN_OR_RETURN(std::vector<std::string> refs, impl_->md->ReferencedManifests());
  HEPML_ASSIGN_OR_RETURN(FsckReport rep, impl_->blobs->Fsck(refs));
  FsckResult out;
  out.manifests_checked = rep.manifests_checked;
  out.chunks_checked = rep.chunks_checked;
  out.referenced = refs.size();
  out.problems = rep.problems;
  return out;
}

absl::StatusOr<GcResult> Registry::Gc(int64_t grace_seconds) {
  LOCKED;
  HEPML_ASSIGN_OR_RETURN(std::vector<std::string> live, impl_->md->ReferencedManifests());
  HEPML_ASSIGN_OR_RETURN(GcReport rep, impl_->blobs->Gc(live, grace_seconds));
  GcResult out;
  out.live_manifests = live.size();
  out.manifests_removed = rep.manifests_removed;
  out.chunks_removed = rep.chunks_removed;
  out.bytes_freed = rep.bytes_freed;
  return out;
}

}  // namespace hepml::registry
