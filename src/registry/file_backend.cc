// file:// objects: a local folder. Put writes tmp/NAME.UNIQUE, fsyncs it,
// renames it into place and remembers the folder so Sync can fsync it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "registry/backend.h"

namespace hepml::registry {

absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
      return absl::FailedPreconditionError(msg);
    default:
      return absl::InternalError(msg);
  }
}

namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

absl::Status MakeDirs(const std::string& path) {
  if (path.empty() || path == "/") return absl::OkStatus();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();
    return ErrnoStatus(ENOTDIR, path);
  }
  absl::Status s = MakeDirs(Parent(path));
  if (!s.ok()) return s;
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus(errno, "creating folder " + path);
  return absl::OkStatus();
}

absl::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "opening folder " + path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus(err, "fsync of folder " + path);
  return absl::OkStatus();
}

class FileBackend final : public Backend {
 public:
  FileBackend(std::string uri, std::string root) : uri_(std::move(uri)), root_(std::move(root)) {
    std::random_device rd;
    token_ = absl::StrCat(::getpid(), "-", rd() & 0xffffff);
  }

  const std::string& uri() const override { return uri_; }

  absl::Status Init() override {
    for (const char* sub : {"", "/chunks", "/manifests", "/tmp"}) {
      absl::Status s = MakeDirs(root_ + sub);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat("store ", uri_, ": ", s.message()));
    }
    // A read-only store opens (pulls work); pushes fail with the reason.
    return absl::OkStatus();
  }

  absl::Status Put(const std::string& name, std::string_view data) override {
    std::string final_path = Path(name);
    std::string tmp = absl::StrCat(root_, "/tmp/", absl::StrReplaceAll(name, {{"/", "_"}}), ".", token_, ".",
                                   counter_.fetch_add(1));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Failed(ErrnoStatus(errno, "creating " + tmp));
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Failed(ErrnoStatus(err, absl::StrCat("writing ", name)));
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    if (::fsync(fd) != 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("fsync of ", name)));
    }
    if (::close(fd) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("closing ", name)));
    }
    // The folder chunks/ab may not exist yet. Another worker may be creating
    // it at the same time, so a rename that finds no folder creates it and
    // tries again.
    std::string dir = Parent(final_path);
    bool new_dir = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      new_dir = known_dirs_.count(dir) == 0;
    }
    int rc = new_dir ? -1 : ::rename(tmp.c_str(), final_path.c_str());
    if (rc != 0 && (new_dir || errno == ENOENT)) {
      absl::Status s = MakeDirs(dir);
      if (!s.ok()) {
        ::unlink(tmp.c_str());
        return Failed(s);
      }
      new_dir = true;
      rc = ::rename(tmp.c_str(), final_path.c_str());
    }
    if (rc != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("renaming into ", name)));
    }
    std::lock_guard<std::mutex> lock(mu_);
    known_dirs_.insert(dir);
    dirty_dirs_.insert(dir);
    if (new_dir) dirty_dirs_.insert(Parent(dir));
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& name) override {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Failed(ErrnoStatus(errno, name));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Failed(ErrnoStatus(err, name));
    }
    std::string out(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < out.size()) {
      ssize_t r = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        int err = r < 0 ? errno : EIO;
        ::close(fd);
        return Failed(ErrnoStatus(err, absl::StrCat("reading ", name)));
      }
      done += static_cast<size_t>(r);
    }
    ::close(fd);
    return out;
  }

  absl::StatusOr<ObjectInfo> Stat(const std::string& name) override {
    struct stat st;
    if (::stat(Path(name).c_str(), &st) != 0) return Failed(ErrnoStatus(errno, name));
    return ObjectInfo{name, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec)};
  }

  absl::StatusOr<bool> TouchIfExists(const std::string& name) override {
    if (::utimensat(AT_FDCWD, Path(name).c_str(), nullptr, 0) == 0) return true;
    if (errno == ENOENT) return false;
    return Failed(ErrnoStatus(errno, absl::StrCat("touching ", name)));
  }

  absl::StatusOr<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    absl::Status s = ListInto(prefix, out);
    if (!s.ok()) return s;
    return out;
  }

  absl::Status Delete(const std::string& name) override {
    std::string path = Path(name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Failed(ErrnoStatus(errno, "removing " + name));
    std::lock_guard<std::mutex> lock(mu_);
    dirty_dirs_.insert(Parent(path));
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    std::set<std::string> dirs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dirs.swap(dirty_dirs_);
    }
    // Leaf folders first, then the folders that gained a new leaf.
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
      absl::Status s = FsyncPath(*it);
      if (!s.ok()) return Failed(s);
    }
    return absl::OkStatus();
  }

  int parallelism() const override { return 3; }

 private:
  std::string Path(const std::string& name) const { return root_ + "/" + name; }

  absl::Status Failed(const absl::Status& s) const {
    return absl::Status(s.code(), absl::StrCat("store ", uri_, ": ", s.message()));
  }

  absl::Status ListInto(const std::string& rel, std::vector<ObjectInfo>& out) {
    std::string path = Path(rel);
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
      if (errno == ENOENT) return absl::OkStatus();
      return Failed(ErrnoStatus(errno, "listing " + rel));
    }
    std::vector<std::string> subdirs;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string child = rel + "/" + n;
      struct stat st;
      if (::lstat((path + "/" + n).c_str(), &st) != 0) continue;  // removed meanwhile
      if (S_ISDIR(st.st_mode)) {
        subdirs.push_back(child);
      } else if (S_ISREG(st.st_mode)) {
        out.push_back({child, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec)});
      }
    }
    ::closedir(d);
    for (const std::string& s : subdirs) {
      absl::Status st = ListInto(s, out);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  std::string uri_, root_, token_;
  std::atomic<uint64_t> counter_{0};
  std::mutex mu_;
  std::set<std::string> known_dirs_;  // folders known to exist
  std::set<std::string> dirty_dirs_;  // folders with renames not yet fsync'd
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenFileBackend(const std::string& uri, const std::string& root) {
  auto b = std::make_unique<FileBackend>(uri, root);
  absl::Status s = b->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace hepml::registry
