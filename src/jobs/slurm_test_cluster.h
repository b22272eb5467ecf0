// A real one-node Slurm cluster for tests: its own munged, slurmctld and
// slurmd, on free loopback ports, with every file (configuration, state,
// spool, logs, the munge socket) in a temporary folder, so several can run
// side by side and nothing of the machine's own Slurm or munge setup is
// touched. Start() exports SLURM_CONF for this process, so sbatch, squeue,
// sacct, scontrol and scancel talk to it. The daemons are stopped by pid
// (they run in the foreground as this process's children) when the object
// is destroyed.
//
// Needs slurm-wlm and munge (Debian packages) and root (SlurmUser=root).
// Header-only: it is test support, not part of hepml_jobs.
//
// The node: NodeName=$(hostname) NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024,
// no GPUs (GresTypes unset, so --gres=gpu:N is refused), proctrack/linuxproc,
// task/none, select/cons_tres, no accounting storage (sacct has nothing,
// so the executor's scontrol and exit-file paths are the ones exercised),
// jobcomp/filetxt, KillWait=2 s.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace hepml::jobs::testing {

class SlurmTestCluster {
 public:
  // True when the Slurm daemons and munged are installed.
  static bool Installed() {
    return access("/usr/sbin/slurmctld", X_OK) == 0 && access("/usr/sbin/slurmd", X_OK) == 0 &&
           access("/usr/sbin/munged", X_OK) == 0 && access("/etc/munge/munge.key", R_OK) == 0;
  }
  static constexpr const char* kNotInstalled =
      "Slurm is not installed (apt-get install slurm-wlm munge; scripts/install-deps.sh does it)";

  struct Options {
    // Seconds a finished job stays in the controller's memory (Slurm's
    // default 300; 2 makes it forget within about 10 s, with sched/builtin,
    // to test what happens after).
    int min_job_age_s = 300;
  };

  SlurmTestCluster() = default;
  explicit SlurmTestCluster(const Options& options) : options_(options) {}
  SlurmTestCluster(const SlurmTestCluster&) = delete;
  SlurmTestCluster& operator=(const SlurmTestCluster&) = delete;
  ~SlurmTestCluster() { Stop(); }

  // Writes the configuration, starts the daemons and waits (up to 60 s)
  // until the node is idle.
  absl::Status Start() {
    char tmpl[] = "/tmp/hepml-slurm-XXXXXX";
    if (!mkdtemp(tmpl)) return absl::InternalError("mkdtemp failed");
    dir_ = tmpl;
    for (const char* sub : {"state", "spool", "munge"}) std::filesystem::create_directories(dir_ + "/" + sub);
    chmod((dir_ + "/munge").c_str(), 0700);
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    host_ = host;
    ctld_port_ = FreePort();
    slurmd_port_ = FreePort();
    conf_ = dir_ + "/slurm.conf";
    {
      std::ofstream f(conf_);
      f << Config(ctld_port_);
    }
    munge_pid_ = Spawn({"/usr/sbin/munged", "-F", "--force", "--socket=" + dir_ + "/munge/munge.socket",
                        "--pid-file=" + dir_ + "/munge/munged.pid", "--log-file=" + dir_ + "/munge/munged.log",
                        "--seed-file=" + dir_ + "/munge/seed"},
                       dir_ + "/munged.out");
    for (int i = 0; i < 100 && access((dir_ + "/munge/munge.socket").c_str(), F_OK) != 0; ++i) Sleep(0.05);
    if (access((dir_ + "/munge/munge.socket").c_str(), F_OK) != 0) {
      return absl::InternalError(absl::StrCat("munged did not start: ", Tail(dir_ + "/munged.out")));
    }
    setenv("SLURM_CONF", conf_.c_str(), 1);
    ctld_pid_ = Spawn({"/usr/sbin/slurmctld", "-D", "-f", conf_}, dir_ + "/slurmctld.out");
    slurmd_pid_ = Spawn({"/usr/sbin/slurmd", "-D", "-f", conf_}, dir_ + "/slurmd.out");
    for (int i = 0; i < 600; ++i) {
      std::string state = Capture("sinfo -h -o %T 2>/dev/null");
      if (state == "idle") return absl::OkStatus();
      Sleep(0.1);
    }
    return absl::InternalError(absl::StrCat("the test Slurm node did not become idle: ",
                                            Tail(dir_ + "/slurmctld.log"), " / ", Tail(dir_ + "/slurmd.log")));
  }

  // A slurm.conf for this cluster's node whose controller port has nothing
  // listening: clients reading it find the controller down.
  std::string WriteDownConfig() const {
    std::string path = dir_ + "/down.conf";
    std::ofstream f(path);
    f << Config(FreePort());
    return path;
  }

  // Cancels every job, stops slurmd, slurmctld and munged, removes the folder.
  void Stop() {
    if (ctld_pid_ > 0) (void)system("scancel --user=root >/dev/null 2>&1");
    for (pid_t* pid : {&slurmd_pid_, &ctld_pid_, &munge_pid_}) {
      if (*pid <= 0) continue;
      kill(*pid, SIGTERM);
      bool gone = false;
      for (int i = 0; i < 100 && !gone; ++i) {
        gone = waitpid(*pid, nullptr, WNOHANG) == *pid;
        if (!gone) Sleep(0.05);
      }
      if (!gone) {
        kill(*pid, SIGKILL);
        waitpid(*pid, nullptr, 0);
      }
      *pid = -1;
    }
    if (!dir_.empty() && getenv("HEPML_KEEP_SLURM_DIR") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
    dir_.clear();
  }

  const std::string& dir() const { return dir_; }
  const std::string& conf() const { return conf_; }
  const std::string& host() const { return host_; }

 private:
  std::string Config(int ctld_port) const {
    return absl::StrCat("ClusterName=hepmltest\n", "SlurmctldHost=", host_, "(127.0.0.1)\n",
                        "SlurmctldPort=", ctld_port, "\n", "SlurmdPort=", slurmd_port_, "\n",
                        "SlurmUser=root\nSlurmdUser=root\n", "AuthType=auth/munge\nCredType=cred/munge\n",
                        "AuthInfo=socket=", dir_, "/munge/munge.socket\n",
                        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n",
                        "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n",
                        "AccountingStorageType=accounting_storage/none\n",
                        "JobAcctGatherType=jobacct_gather/linux\n", "JobCompType=jobcomp/filetxt\n",
                        "JobCompLoc=", dir_, "/jobcomp.txt\n", "StateSaveLocation=", dir_, "/state\n",
                        "SlurmdSpoolDir=", dir_, "/spool\n", "SlurmctldPidFile=", dir_, "/slurmctld.pid\n",
                        "SlurmdPidFile=", dir_, "/slurmd.pid\n", "SlurmctldLogFile=", dir_, "/slurmctld.log\n",
                        "SlurmdLogFile=", dir_, "/slurmd.log\n", "ReturnToService=2\nMpiDefault=none\n",
                        "KillWait=2\nMessageTimeout=4\nSchedulerParameters=sched_interval=1\n",
                        "MinJobAge=", options_.min_job_age_s, "\n",
                        options_.min_job_age_s < 300 ? "SchedulerType=sched/builtin\n" : "",
                        "NodeName=", host_, " NodeAddr=127.0.0.1 CPUs=2 RealMemory=1024 State=UNKNOWN\n",
                        "PartitionName=debug Nodes=", host_, " Default=YES MaxTime=INFINITE State=UP\n");
  }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

  static pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
    pid_t pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    return pid;
  }

  static std::string Capture(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    if (!p) return out;
    char buf[256];
    while (fgets(buf, sizeof(buf), p)) out += buf;
    pclose(p);
    return std::string(absl::StripAsciiWhitespace(out));
  }

  static std::string Tail(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    return s.size() > 800 ? s.substr(s.size() - 800) : s;
  }

  static void Sleep(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

  Options options_;
  std::string dir_, conf_, host_;
  int ctld_port_ = 0, slurmd_port_ = 0;
  pid_t munge_pid_ = -1, ctld_pid_ = -1, slurmd_pid_ = -1;
};

// A test suite sharing one cluster: started before the suite's first test,
// stopped after its last (each Suite gets its own). Tests check
// SlurmTestCluster::Installed() and start_status_ themselves.
template <typename Suite>
class SlurmClusterSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!SlurmTestCluster::Installed()) return;
    cluster_ = new SlurmTestCluster();
    start_status_ = new absl::Status(cluster_->Start());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete start_status_;
    start_status_ = nullptr;
  }

  inline static SlurmTestCluster* cluster_ = nullptr;
  inline static absl::Status* start_status_ = nullptr;
};

}  // namespace hepml::jobs::testing
