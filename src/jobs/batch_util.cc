#include "jobs/batch_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/match.h"

extern char** environ;

namespace hepml::jobs::batch {

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, double timeout_s) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run '", CommandLine(argv), "': ", strerror(rc),
                     rc == ENOENT ? " (is the batch system's client installed and on PATH?)" : ""));
  }
  CommandResult result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf, got);
      } else if (got == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("'", CommandLine(argv), "' did not finish within ", timeout_s, " s and was killed"));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::vector<std::string> parts;
  for (const auto& a : argv) {
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`;&|<>*?()") == std::string::npos;
    parts.push_back(plain ? a : ShellQuote(a));
  }
  return absl::StrJoin(parts, " ");
}

absl::Status CommandFailed(const std::vector<std::string>& argv, const CommandResult& r) {
  std::string said(absl::StripAsciiWhitespace(r.err.empty() ? r.out : r.err));
  if (said.size() > 600) said = said.substr(0, 600) + "...";
  for (char& c : said)
    if (c == '\n') c = ';';
  return absl::UnavailableError(absl::StrCat("'", CommandLine(argv), "' failed (exit ", r.exit_code,
                                             said.empty() ? ")" : "): ", said));
}

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string MeasuredCommandScript(const std::string& command, const std::string& work_dir_word) {
  const std::string& wd = work_dir_word;
  std::string cmd = ShellQuote(command);
  return absl::StrCat(
      "cd ", wd, " || exit 1\n",
      "rm -f ", wd, "/hepml-exit ", wd, "/hepml-usage\n",
      "if [ -x /usr/bin/time ]; then\n",
      "  /usr/bin/time -o ", wd, "/hepml-usage -f 'gnu-time %e %U %S %M' /bin/sh -c ", cmd, "\n",
      "  hepml_rc=$?\n",
      "else\n",
      "  hepml_t0=$(date +%s.%N)\n",
      "  /bin/sh -c ", cmd, "\n",
      "  hepml_rc=$?\n",
      "  hepml_t1=$(date +%s.%N)\n",
      "  { echo \"shell $hepml_t0 $hepml_t1\"; times; } > ", wd, "/hepml-usage\n",
      "fi\n",
      "echo $hepml_rc > ", wd, "/hepml-exit\n",
      "exit $hepml_rc\n");
}

namespace {

// dash and bash print `times` as "0m1.230000s 0m0.010000s" (user system),
// the shell's line first, then its children's.
std::optional<double> ParseTimesField(absl::string_view field) {
  auto m = field.find('m');
  if (m == absl::string_view::npos || !absl::EndsWith(field, "s")) return std::nullopt;
  double minutes = 0, seconds = 0;
  if (!absl::SimpleAtod(field.substr(0, m), &minutes)) return std::nullopt;
  if (!absl::SimpleAtod(field.substr(m + 1, field.size() - m - 2), &seconds)) return std::nullopt;
  return minutes * 60 + seconds;
}

}  // namespace

std::optional<Measured> ReadMeasured(const std::string& work_dir) {
  auto exit_text = ReadFile(work_dir + "/hepml-exit");
  if (!exit_text) return std::nullopt;
  Measured m;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*exit_text), &m.exit_code)) return std::nullopt;
  auto usage = ReadFile(work_dir + "/hepml-usage");
  if (!usage) return m;
  std::vector<std::string> lines = absl::StrSplit(*usage, '\n', absl::SkipWhitespace());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ', absl::SkipWhitespace());
    if (f.size() == 5 && f[0] == "gnu-time") {
      double wall = 0, user = 0, sys = 0;
      int64_t rss = 0;
      if (absl::SimpleAtod(f[1], &wall) && absl::SimpleAtod(f[2], &user) && absl::SimpleAtod(f[3], &sys) &&
          absl::SimpleAtoi(f[4], &rss)) {
        m.wall_s = wall;
        m.cpu_s = user + sys;
        m.peak_rss_kb = rss;
      }
    } else if (f.size() == 3 && f[0] == "shell") {
      double t0 = 0, t1 = 0;
      if (absl::SimpleAtod(f[1], &t0) && absl::SimpleAtod(f[2], &t1)) m.wall_s = t1 - t0;
      // `times` follows: the shell's own line, then its children's.
      if (i + 2 < lines.size()) {
        std::vector<std::string> c = absl::StrSplit(lines[i + 2], ' ', absl::SkipWhitespace());
        if (c.size() == 2) {
          auto u = ParseTimesField(c[0]), s = ParseTimesField(c[1]);
          if (u && s) m.cpu_s = *u + *s;
        }
      }
    }
  }
  return m;
}

void ClearJobFiles(const std::string& work_dir) {
  std::error_code ec;
  for (const char* name : {"hepml-exit", "hepml-usage", "hepml-cancelled"}) {
    std::filesystem::remove(std::filesystem::path(work_dir) / name, ec);
  }
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create folder ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path, ": ", ec.message()));
  return absl::OkStatus();
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

std::optional<double> ParseSlurmDuration(const std::string& text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (t.empty()) return std::nullopt;
  double days = 0;
  auto dash = t.find('-');
  if (dash != absl::string_view::npos) {
    if (!absl::SimpleAtod(t.substr(0, dash), &days)) return std::nullopt;
    t = t.substr(dash + 1);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(t, ':');
  if (parts.empty() || parts.size() > 3) return std::nullopt;
  double total = 0;
  for (auto p : parts) {
    double v = 0;
    if (!absl::SimpleAtod(p, &v)) return std::nullopt;
    total = total * 60 + v;
  }
  // "MM:SS.mmm" (TotalCPU under an hour) and "HH:MM:SS"; with days, "D-HH"
  // alone is hours.
  if (dash != absl::string_view::npos && parts.size() == 1) total *= 3600;
  return days * 86400 + total;
}

std::optional<int64_t> ParseSlurmMemoryKb(const std::string& text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (t.empty()) return std::nullopt;
  double scale_kb = 1.0 / 1024;
  switch (t.back()) {
    case 'K': scale_kb = 1; break;
    case 'M': scale_kb = 1024; break;
    case 'G': scale_kb = 1024.0 * 1024; break;
    case 'T': scale_kb = 1024.0 * 1024 * 1024; break;
    default: break;
  }
  if (scale_kb != 1.0 / 1024) t.remove_suffix(1);
  double v = 0;
  if (!absl::SimpleAtod(t, &v)) return std::nullopt;
  return static_cast<int64_t>(v * scale_kb + 0.5);
}

}  // namespace hepml::jobs::batch
