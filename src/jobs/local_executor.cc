// The local executor: jobs as process groups on this machine, within CPU and
// GPU slots.
//
// How a job runs. Submit forks a small supervisor (a copy of this process
// that only calls async-signal-safe functions), which makes itself a process
// group leader, ignores SIGTERM/SIGINT/SIGHUP, forks `/bin/sh -c COMMAND` in
// the job's work_dir (stdout.log, stderr.log; CUDA_VISIBLE_DEVICES set to the
// GPUs it got), waits for it with wait4 and writes WORK_DIR/.hepml-exit:
//   hepml-exit CODE SIGNAL UTIME_US STIME_US MAXRSS_KB WALL_MS
// then exits the way the command did. The exit file carries the command's
// own rusage (CPU time, peak RSS of the command and its waited-for
// descendants), not the supervisor's, and lets a process that did not start
// the job (a restarted runner) learn how it ended.
//
// Handles. "local:PID:START:WORK_DIR" where PID is the supervisor (the
// group leader) and START its start time in clock ticks since boot
// (/proc/PID/stat field 22), so a recycled PID is not mistaken for the job;
// "local:queued:SEQ:WORK_DIR" for a job that waited for slots at Submit (its
// PID is known once it starts: WORK_DIR/.hepml-job records it, with its
// slots). Polling a handle this executor did not start (a restart): the exit
// file if there is one; else, while /proc/PID is the same process, the job is
// running and is adopted (it holds its CPU and GPU slots here until it ends;
// CPU time and memory are known only at the end); else kLost.
//
// Cancel sends SIGTERM to the job's process group and returns; a later Poll
// (or Cancel) sends SIGKILL to the group once the grace time has passed.
// A job past its time_limit_s is cancelled the same way by Poll.
// GPU use: while jobs holding GPUs run, Poll reads their devices'
// utilisation and memory from nvidia-smi at most once a second.
//
// memory_mb is not enforced locally (an address-space limit breaks CUDA and
// PyTorch); it is recorded only.
//
// Thread safety: all methods may be called from several threads.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hepml/jobs.h"
#include "jobs/executors.h"

extern char** environ;

namespace hepml::jobs {
namespace {

constexpr const char* kExitFile = ".hepml-exit";
constexpr const char* kJobFile = ".hepml-job";

double NowS() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Start time of `pid` in clock ticks since boot, or -1 when it is gone.
int64_t ProcStartTicks(pid_t pid, char* state = nullptr) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return -1;
  std::vector<std::string> f = absl::StrSplit(text.substr(paren + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); field 22 (starttime) is f[19].
  int64_t ticks = -1;
  if (f.size() < 20 || !absl::SimpleAtoi(f[19], &ticks)) return -1;
  if (state != nullptr) *state = f[0].empty() ? '?' : f[0][0];
  return ticks;
}

double UptimeS() {
  std::ifstream in("/proc/uptime");
  double up = 0;
  in >> up;
  return up;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig);
}

// Async-signal-safe decimal formatting for the supervisor.
char* PutInt(char* p, int64_t v) {
  if (v < 0) {
    *p++ = '-';
    v = -v;
  }
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct ExitRecord {
  int code = -1;
  int signal = 0;
  double cpu_s = 0;
  int64_t maxrss_kb = 0;
  double wall_s = 0;
};

std::optional<ExitRecord> ReadExitFile(const std::string& work_dir) {
  std::ifstream in(std::filesystem::path(work_dir) / kExitFile);
  if (!in) return std::nullopt;
  std::string tag;
  int64_t code = 0, sig = 0, ut = 0, st = 0, rss = 0, wall = 0;
  if (!(in >> tag >> code >> sig >> ut >> st >> rss >> wall) || tag != "hepml-exit") return std::nullopt;
  ExitRecord r;
  r.code = static_cast<int>(code);
  r.signal = static_cast<int>(sig);
  r.cpu_s = (ut + st) / 1e6;
  r.maxrss_kb = rss;
  r.wall_s = wall / 1e3;
  return r;
}

struct Handle {
  bool queued = false;
  pid_t pid = 0;
  int64_t start = 0;
  int64_t seq = 0;
  std::string work_dir;
};

absl::StatusOr<Handle> ParseHandle(const std::string& handle) {
  std::vector<std::string> parts = absl::StrSplit(handle, absl::MaxSplits(':', 3));
  Handle h;
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("'", handle, "' is not a local executor handle "
                                                   "(expected local:PID:START:WORK_DIR)"));
  };
  if (parts.size() != 4 || parts[0] != "local" || parts[3].empty()) return bad();
  h.work_dir = parts[3];
  if (parts[1] == "queued") {
    h.queued = true;
    if (!absl::SimpleAtoi(parts[2], &h.seq)) return bad();
    return h;
  }
  int64_t pid = 0;
  if (!absl::SimpleAtoi(parts[1], &pid) || pid <= 1 || !absl::SimpleAtoi(parts[2], &h.start)) return bad();
  h.pid = static_cast<pid_t>(pid);
  return h;
}

std::vector<std::string> DetectGpus() {
  std::vector<std::string> out;
  FILE* p = popen("nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null", "r");
  if (p == nullptr) return out;
  char line[256];
  std::vector<std::string> lines;
  while (fgets(line, sizeof(line), p) != nullptr) lines.push_back(std::string(absl::StripAsciiWhitespace(line)));
  if (pclose(p) != 0) return out;
  for (const auto& l : lines) {
    int64_t idx = 0;
    if (absl::SimpleAtoi(l, &idx)) out.push_back(l);
  }
  return out;
}

class LocalExecutor : public Executor {
 public:
  LocalExecutor(int64_t cpu_slots, std::vector<std::string> gpus)
      : cpu_slots_(cpu_slots), gpus_(std::move(gpus)), gpu_busy_(gpus_.size(), false) {}

  std::string kind() const override { return "local"; }

  int64_t capacity() const override { return cpu_slots_; }

  absl::StatusOr<std::string> Submit(const JobSpec& job) override {
    if (job.command.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': empty command"));
    if (job.work_dir.empty()) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': no work_dir"));
    if (job.resources.cpus < 0 || job.resources.gpus < 0) {
      return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "': negative resources"));
    }
    if (job.resources.cpus > cpu_slots_) {
      return absl::ResourceExhaustedError(absl::StrCat("job '", job.name, "' needs ", job.resources.cpus,
                                                       " CPUs; the local executor has ", cpu_slots_));
    }
    if (job.resources.gpus > static_cast<int64_t>(gpus_.size())) {
      return absl::ResourceExhaustedError(absl::StrCat("job '", job.name, "' needs ", job.resources.gpus,
                                                       " GPUs; the local executor has ", gpus_.size(),
                                                       gpus_.empty() ? " (none detected; give --gpus)" : ""));
    }
    std::error_code ec;
    std::filesystem::create_directories(job.work_dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("job '", job.name, "': cannot create ", job.work_dir, ": ", ec.message()));
    }
    std::string work_dir = std::filesystem::absolute(job.work_dir).lexically_normal().string();
    if (!work_dir.empty() && work_dir.size() > 1 && work_dir.back() == '/') work_dir.pop_back();
    std::filesystem::remove(std::filesystem::path(work_dir) / kExitFile, ec);
    std::filesystem::remove(std::filesystem::path(work_dir) / kJobFile, ec);

    std::lock_guard<std::mutex> lock(mu_);
    auto j = std::make_shared<Job>();
    j->spec = job;
    j->spec.work_dir = work_dir;
    if (Fits(*j) && queue_.empty()) {
      if (absl::Status s = StartLocked(*j); !s.ok()) return s;
      std::string handle = absl::StrCat("local:", j->pid, ":", j->start_ticks, ":", work_dir);
      jobs_[handle] = j;
      return handle;
    }
    std::string handle = absl::StrCat("local:queued:", next_seq_++, ":", work_dir);
    jobs_[handle] = j;
    queue_.push_back(j);
    return handle;
  }

  absl::StatusOr<JobStatus> Poll(const std::string& handle) override {
    std::lock_guard<std::mutex> lock(mu_);
    ReapLocked();
    auto it = jobs_.find(handle);
    if (it == jobs_.end()) {
      absl::StatusOr<Handle> h = ParseHandle(handle);
      if (!h.ok()) return h.status();
      absl::StatusOr<std::shared_ptr<Job>> adopted = AdoptLocked(*h);
      if (!adopted.ok()) return adopted.status();
      it = jobs_.emplace(handle, *adopted).first;
    }
    Job& j = *it->second;
    return StatusOf(j);
  }

  absl::Status Cancel(const std::string& handle, double grace_s) override {
    std::lock_guard<std::mutex> lock(mu_);
    ReapLocked();
    auto it = jobs_.find(handle);
    if (it == jobs_.end()) {
      absl::StatusOr<Handle> h = ParseHandle(handle);
      if (!h.ok()) return h.status();
      absl::StatusOr<std::shared_ptr<Job>> adopted = AdoptLocked(*h);
      if (!adopted.ok()) return adopted.status();
      it = jobs_.emplace(handle, *adopted).first;
    }
    CancelLocked(*it->second, grace_s, "cancelled");
    return absl::OkStatus();
  }

 private:
  struct Job {
    JobSpec spec;
    JobState state = JobState::kQueued;
    pid_t pid = 0;
    int64_t start_ticks = 0;
    double start_s = 0;  // steady clock
    bool own_child = false;
    std::vector<size_t> gpu_slots;
    int64_t cpus_held = 0;
    bool holds_slots = false;
    double kill_at_s = 0;  // SIGKILL the group after this (0: not cancelling)
    bool cancelled = false;
    std::string cancel_reason;
    JobStatus final;  // once finished
    int64_t gpu_samples = 0;
    double gpu_util_sum = 0;
    int64_t gpu_mem_peak_mb = 0;
  };

  // Utilisation and memory of the GPUs running jobs hold, from one
  // nvidia-smi query every kGpuSampleS (a job holds its GPUs alone, so a
  // device's figures are its job's). Without nvidia-smi nothing is recorded.
  void SampleGpusLocked(double now) {
    if (now - last_gpu_sample_s_ < kGpuSampleS) return;
    bool wanted = false;
    for (const auto& [h, j] : jobs_) wanted |= j->state == JobState::kRunning && !j->gpu_slots.empty();
    if (!wanted) return;
    last_gpu_sample_s_ = now;
    FILE* p = popen("nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader,nounits "
                    "2>/dev/null", "r");
    if (p == nullptr) return;
    std::map<std::string, std::pair<double, int64_t>> by_index;
    char line[256];
    while (fgets(line, sizeof(line), p) != nullptr) {
      std::vector<std::string> f = absl::StrSplit(line, ',');
      double util = 0;
      int64_t mem = 0;
      if (f.size() == 3 && absl::SimpleAtod(absl::StripAsciiWhitespace(f[1]), &util) &&
          absl::SimpleAtoi(absl::StripAsciiWhitespace(f[2]), &mem)) {
        by_index[std::string(absl::StripAsciiWhitespace(f[0]))] = {util, mem};
      }
    }
    if (pclose(p) != 0) return;
    for (auto& [h, jp] : jobs_) {
      Job& j = *jp;
      if (j.state != JobState::kRunning || j.gpu_slots.empty()) continue;
      double util = 0;
      int64_t mem = 0;
      size_t seen = 0;
      for (size_t g : j.gpu_slots) {
        auto it = by_index.find(gpus_[g]);
        if (it == by_index.end()) continue;
        util += it->second.first;
        mem += it->second.second;
        ++seen;
      }
      if (seen == 0) continue;
      j.gpu_util_sum += util / static_cast<double>(seen);
      ++j.gpu_samples;
      j.gpu_mem_peak_mb = std::max(j.gpu_mem_peak_mb, mem);
    }
  }

  static void FillGpuUse(const Job& j, JobStatus& s) {
    if (j.gpu_samples > 0) {
      s.gpu_util_mean = j.gpu_util_sum / static_cast<double>(j.gpu_samples);
      s.gpu_mem_peak_mb = j.gpu_mem_peak_mb;
    }
  }

  bool Fits(const Job& j) const {
    int64_t free_gpus = std::count(gpu_busy_.begin(), gpu_busy_.end(), false);
    return cpus_used_ + j.spec.resources.cpus <= cpu_slots_ && j.spec.resources.gpus <= free_gpus;
  }

  void HoldLocked(Job& j, const std::vector<size_t>& gpu_slots) {
    j.cpus_held = j.spec.resources.cpus;
    cpus_used_ += j.cpus_held;
    j.gpu_slots = gpu_slots;
    for (size_t g : gpu_slots) gpu_busy_[g] = true;
    j.holds_slots = true;
  }

  void ReleaseLocked(Job& j) {
    if (!j.holds_slots) return;
    cpus_used_ -= j.cpus_held;
    for (size_t g : j.gpu_slots) gpu_busy_[g] = false;
    j.holds_slots = false;
  }

  std::string GpuList(const Job& j) const {
    std::vector<std::string> ids;
    for (size_t g : j.gpu_slots) ids.push_back(gpus_[g]);
    return absl::StrJoin(ids, ",");
  }

  absl::Status StartLocked(Job& j) {
    std::vector<size_t> chosen;
    for (size_t g = 0; g < gpus_.size() && static_cast<int64_t>(chosen.size()) < j.spec.resources.gpus; ++g) {
      if (!gpu_busy_[g]) chosen.push_back(g);
    }
    j.gpu_slots = chosen;
    std::string gpu_list = GpuList(j);

    // Everything the children need, prepared before fork.
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq != nullptr) env[std::string(*e, eq - *e)] = eq + 1;
    }
    for (const auto& [k, v] : j.spec.env) env[k] = v;
    if (!gpus_.empty()) env["CUDA_VISIBLE_DEVICES"] = gpu_list;
    env["HEPML_JOB_NAME"] = j.spec.name;
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string sh_c = j.spec.command;
    char sh[] = "/bin/sh";
    char dash_c[] = "-c";
    char* argv[] = {sh, dash_c, sh_c.data(), nullptr};
    std::string out_path = j.spec.work_dir + "/stdout.log";
    std::string err_path = j.spec.work_dir + "/stderr.log";
    std::string exit_path = j.spec.work_dir + "/" + kExitFile;
    std::string exit_tmp = exit_path + ".tmp";
    int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) return absl::InternalError(absl::StrCat("cannot write ", out_path, ": ", std::strerror(errno)));
    int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err_fd < 0) {
      close(out_fd);
      return absl::InternalError(absl::StrCat("cannot write ", err_path, ": ", std::strerror(errno)));
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    const char* work_dir = j.spec.work_dir.c_str();

    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      close(out_fd);
      close(err_fd);
      if (null_fd >= 0) close(null_fd);
      return absl::ResourceExhaustedError(absl::StrCat("fork: ", std::strerror(e)));
    }
    if (pid == 0) {
      // The supervisor: async-signal-safe calls only. It keeps none of this
      // process's files (a study lock, a database) open.
      setpgid(0, 0);
      if (null_fd >= 0) dup2(null_fd, 0);
      dup2(out_fd, 1);
      dup2(err_fd, 2);
      close_range(3, ~0U, 0);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGTERM, SIG_IGN);
      signal(SIGINT, SIG_IGN);
      signal(SIGHUP, SIG_IGN);
      signal(SIGPIPE, SIG_DFL);
      int64_t t0 = MonotonicMs();
      pid_t cmd = fork();
      if (cmd == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        if (chdir(work_dir) != 0) _exit(126);
        execve("/bin/sh", argv, envp.data());
        _exit(127);
      }
      int status = 0;
      struct rusage ru;
      std::memset(&ru, 0, sizeof(ru));
      int code = 127, sig = 0;
      if (cmd > 0) {
        while (wait4(cmd, &status, 0, &ru) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(status)) code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) {
          code = -1;
          sig = WTERMSIG(status);
        }
      }
      char buf[256];
      char* p = buf;
      const char tag[] = "hepml-exit ";
      std::memcpy(p, tag, sizeof(tag) - 1);
      p += sizeof(tag) - 1;
      p = PutInt(p, code);
      *p++ = ' ';
      p = PutInt(p, sig);
      *p++ = ' ';
      p = PutInt(p, static_cast<int64_t>(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec);
      *p++ = ' ';
      p = PutInt(p, static_cast<int64_t>(ru.ru_stime.tv_sec) * 1000000 + ru.ru_stime.tv_usec);
      *p++ = ' ';
      p = PutInt(p, ru.ru_maxrss);
      *p++ = ' ';
      p = PutInt(p, MonotonicMs() - t0);
      *p++ = '\n';
      int fd = open(exit_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ssize_t unused = write(fd, buf, p - buf);
        (void)unused;
        close(fd);
        rename(exit_tmp.c_str(), exit_path.c_str());
      }
      if (sig != 0) {
        signal(sig, SIG_DFL);
        kill(getpid(), sig);
      }
      _exit(code < 0 ? 128 : code);
    }
    close(out_fd);
    close(err_fd);
    if (null_fd >= 0) close(null_fd);
    setpgid(pid, pid);  // also here, so the group exists before Cancel can run
    j.pid = pid;
    j.own_child = true;
    j.start_s = NowS();
    j.start_ticks = ProcStartTicks(pid);
    if (j.start_ticks < 0) j.start_ticks = 0;
    j.state = JobState::kRunning;
    HoldLocked(j, chosen);
    // For a runner that restarts: who runs this job and with which slots.
    std::ofstream(j.spec.work_dir + "/" + kJobFile)
        << "pid " << pid << "\nstart " << j.start_ticks << "\ncpus " << j.spec.resources.cpus << "\ngpus "
        << (gpu_list.empty() ? "-" : gpu_list) << "\n";
    return absl::OkStatus();
  }

  // A job this executor did not start: from its work_dir's files and /proc.
  absl::StatusOr<std::shared_ptr<Job>> AdoptLocked(const Handle& h) {
    auto j = std::make_shared<Job>();
    j->spec.work_dir = h.work_dir;
    j->spec.name = std::filesystem::path(h.work_dir).filename().string();
    pid_t pid = h.pid;
    int64_t start = h.start;
    std::string gpu_text;
    int64_t cpus = 0;
    {
      std::ifstream in(h.work_dir + "/" + kJobFile);
      std::string key;
      std::string value;
      while (in >> key >> value) {
        int64_t v = 0;
        if (key == "pid" && absl::SimpleAtoi(value, &v)) {
          if (h.queued) pid = static_cast<pid_t>(v);
        } else if (key == "start" && absl::SimpleAtoi(value, &v)) {
          if (h.queued) start = v;
        } else if (key == "cpus" && absl::SimpleAtoi(value, &v)) {
          cpus = v;
        } else if (key == "gpus") {
          gpu_text = value == "-" ? "" : value;
        }
      }
    }
    if (std::optional<ExitRecord> r = ReadExitFile(h.work_dir)) {
      j->state = r->signal == 0 && r->code == 0 ? JobState::kSucceeded : JobState::kFailed;
      j->pid = pid;
      FillFinal(*j, *r);
      return j;
    }
    if (pid <= 1) {
      j->state = JobState::kLost;
      j->final.state = JobState::kLost;
      j->final.reason = "the job was waiting for slots in a runner that is gone; it never started";
      return j;
    }
    char state = '?';
    int64_t now_start = ProcStartTicks(pid, &state);
    if (now_start < 0 || now_start != start || state == 'Z') {
      j->state = JobState::kLost;
      j->final.state = JobState::kLost;
      j->final.native_id = absl::StrCat(pid);
      j->final.reason = absl::StrCat("process ", pid, " is gone and left no exit status");
      return j;
    }
    // Still running: adopt it, holding its slots here.
    j->pid = pid;
    j->start_ticks = start;
    j->own_child = false;
    j->state = JobState::kRunning;
    double age = UptimeS() - static_cast<double>(start) / sysconf(_SC_CLK_TCK);
    j->start_s = NowS() - std::max(0.0, age);
    j->spec.resources.cpus = std::min(cpus, std::max<int64_t>(0, cpu_slots_ - cpus_used_));
    std::vector<size_t> slots;
    for (const auto& id : absl::StrSplit(gpu_text, ',', absl::SkipEmpty())) {
      for (size_t g = 0; g < gpus_.size(); ++g) {
        if (gpus_[g] == id && !gpu_busy_[g]) slots.push_back(g);
      }
    }
    j->spec.resources.gpus = static_cast<int64_t>(slots.size());
    HoldLocked(*j, slots);
    j->final.gpus = gpu_text;
    return j;
  }

  void FillFinal(Job& j, const ExitRecord& r) {
    JobStatus& s = j.final;
    s.exit_code = r.code;
    s.term_signal = r.signal;
    s.cpu_s = r.cpu_s;
    s.peak_rss_kb = r.maxrss_kb;
    s.wall_s = r.wall_s;
    s.native_id = absl::StrCat(j.pid);
    if (s.gpus.empty()) s.gpus = GpuList(j);
    FillGpuUse(j, s);
    if (j.cancelled) {
      j.state = JobState::kCancelled;
      s.reason = j.cancel_reason;
    } else if (r.signal != 0) {
      j.state = JobState::kFailed;
      s.reason = absl::StrCat("killed by ", SignalName(r.signal));
    } else if (r.code != 0) {
      j.state = JobState::kFailed;
      s.reason = absl::StrCat("exit code ", r.code);
      if (r.code == 127) absl::StrAppend(&s.reason, " (command not found?)");
      if (r.code == 126) absl::StrAppend(&s.reason, " (cannot execute, or no work_dir)");
    } else {
      j.state = JobState::kSucceeded;
    }
    s.state = j.state;
  }

  // Notices finished jobs, escalates cancellations, enforces time limits and
  // starts queued jobs that now fit.
  void ReapLocked() {
    double now = NowS();
    SampleGpusLocked(now);
    for (auto& [handle, jp] : jobs_) {
      Job& j = *jp;
      if (j.state != JobState::kRunning) continue;
      bool ended = false;
      int status = 0;
      if (j.own_child) {
        pid_t r = waitpid(j.pid, &status, WNOHANG);
        ended = r == j.pid || (r < 0 && errno == ECHILD);
      } else {
        char state = '?';
        ended = ProcStartTicks(j.pid, &state) != j.start_ticks || state == 'Z';
      }
      if (ended) {
        std::optional<ExitRecord> rec = ReadExitFile(j.spec.work_dir);
        if (!rec) {
          // The supervisor itself was killed (SIGKILL to the group).
          ExitRecord r;
          if (j.own_child && WIFSIGNALED(status)) r.signal = WTERMSIG(status);
          else if (j.own_child && WIFEXITED(status)) r.code = WEXITSTATUS(status);
          r.wall_s = now - j.start_s;
          rec = r;
        }
        FillFinal(j, *rec);
        if (j.kill_at_s > 0) kill(-j.pid, SIGKILL);  // leftovers of a cancelled group
        ReleaseLocked(j);
        continue;
      }
      if (j.kill_at_s > 0 && now >= j.kill_at_s) {
        kill(-j.pid, SIGKILL);
        j.kill_at_s = now + 3600;  // once
      }
      if (j.spec.resources.time_limit_s > 0 && !j.cancelled && now - j.start_s > j.spec.resources.time_limit_s) {
        CancelLocked(j, 10, absl::StrCat("time limit of ", j.spec.resources.time_limit_s, " s exceeded"));
      }
    }
    while (!queue_.empty() && Fits(*queue_.front())) {
      std::shared_ptr<Job> j = queue_.front();
      queue_.pop_front();
      if (j->cancelled) continue;
      if (absl::Status s = StartLocked(*j); !s.ok()) {
        j->state = JobState::kFailed;
        j->final.state = JobState::kFailed;
        j->final.reason = std::string(s.message());
      }
    }
  }

  void CancelLocked(Job& j, double grace_s, const std::string& reason) {
    if (j.state == JobState::kQueued) {
      j.cancelled = true;
      j.state = JobState::kCancelled;
      j.final.state = JobState::kCancelled;
      j.final.reason = reason;
      queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [&](const auto& q) { return q.get() == &j; }),
                   queue_.end());
      return;
    }
    if (j.state != JobState::kRunning || j.cancelled) return;
    j.cancelled = true;
    j.cancel_reason = reason;
    kill(-j.pid, SIGTERM);
    j.kill_at_s = NowS() + std::max(0.0, grace_s);
    if (grace_s <= 0) {
      kill(-j.pid, SIGKILL);
    }
  }

  JobStatus StatusOf(const Job& j) const {
    if (j.state == JobState::kRunning) {
      JobStatus s;
      s.state = JobState::kRunning;
      s.wall_s = NowS() - j.start_s;
      s.native_id = absl::StrCat(j.pid);
      s.gpus = j.own_child ? GpuList(j) : j.final.gpus;
      FillGpuUse(j, s);
      return s;
    }
    if (j.state == JobState::kQueued) {
      JobStatus s;
      s.state = JobState::kQueued;
      return s;
    }
    JobStatus s = j.final;
    s.state = j.state;
    return s;
  }

  static constexpr double kGpuSampleS = 1.0;
  double last_gpu_sample_s_ = -1e9;
  const int64_t cpu_slots_;
  const std::vector<std::string> gpus_;
  std::mutex mu_;
  std::vector<bool> gpu_busy_;
  int64_t cpus_used_ = 0;
  int64_t next_seq_ = 0;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queue_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Executor>> MakeLocalExecutor(const ExecutorOptions& options) {
  if (options.cpu_slots < 0) return absl::InvalidArgumentError("cpu_slots must be >= 0");
  int64_t cpus = options.cpu_slots > 0 ? options.cpu_slots
                                       : std::max<int64_t>(1, std::thread::hardware_concurrency());
  std::vector<std::string> gpus;
  if (!options.gpus.empty()) {
    std::set<std::string> seen;
    for (absl::string_view id : absl::StrSplit(options.gpus, ',')) {
      id = absl::StripAsciiWhitespace(id);
      int64_t idx = 0;
      if (id.empty() || !absl::SimpleAtoi(id, &idx) || idx < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("gpus '", options.gpus, "': expected GPU indices separated by commas, e.g. 0,1"));
      }
      if (!seen.insert(std::string(id)).second) {
        return absl::InvalidArgumentError(absl::StrCat("gpus '", options.gpus, "': GPU ", id, " listed twice"));
      }
      gpus.emplace_back(id);
    }
  } else if (options.detect_gpus) {
    gpus = DetectGpus();
  }
  return std::unique_ptr<Executor>(new LocalExecutor(cpus, std::move(gpus)));
}

}  // namespace hepml::jobs
