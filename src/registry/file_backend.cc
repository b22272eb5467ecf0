// file:// objects: a local folder. Put writes tmp/NAME.UNIQUE, fsyncs it,
// renames it into place and remembers the folder so Sync can fsync it.
// PutDeferred writes the temporary; every kFlushAhead bytes a background
// thread makes the batch so far durable with one syncfs of the store's file
// system (one journal commit instead of one per object) and renames it into
// place, and Sync does the same for the rest, then makes the renames durable
// with a second syncfs. A few folders touched by Puts alone are fsynced one
// by one instead.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

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

  ~FileBackend() override {
    {
      std::lock_guard<std::mutex> lock(flush_mu_);
      flush_stop_ = true;
    }
    flush_cv_.notify_one();
    if (flusher_.joinable()) flusher_.join();
    // Deferred objects no Sync placed (a failed push): their temporaries
    // are left for gc.
    if (root_fd_ >= 0) ::close(root_fd_);
  }

  const std::string& uri() const override { return uri_; }

  absl::Status Init() override {
    for (const char* sub : {"", "/chunks", "/manifests", "/tmp"}) {
      absl::Status s = MakeDirs(root_ + sub);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat("store ", uri_, ": ", s.message()));
    }
    root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) return Failed(ErrnoStatus(errno, "opening folder " + root_));
    // A read-only store opens (pulls work); pushes fail with the reason.
    return absl::OkStatus();
  }

  absl::Status Put(const std::string& name, std::string_view data, std::string_view more) override {
    std::string tmp;
    absl::StatusOr<int> fd = WriteTemp(name, data, more, tmp);
    if (!fd.ok()) return fd.status();
    if (::fsync(*fd) != 0) {
      int err = errno;
      ::close(*fd);
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("fsync of ", name)));
    }
    if (::close(*fd) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("closing ", name)));
    }
    return Place(tmp, name);
  }

  absl::Status PutDeferred(const std::string& name, std::string_view data, std::string_view more) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!broken_.ok()) return broken_;
    }
    // The object's folder (chunks/ab) is made now, by the worker, rather
    // than when Sync places the batch: Sync renames one object after another
    // and every push waits for it. An empty folder is harmless; its entry
    // in chunks/ is made durable with the renames.
    std::string dir = Parent(Path(name));
    bool known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = known_dirs_.count(dir) != 0;
    }
    if (!known) {
      absl::Status s = MakeDirs(dir);
      if (!s.ok()) return Failed(s);
      std::lock_guard<std::mutex> lock(mu_);
      known_dirs_.insert(dir);
      dirty_dirs_.insert(Parent(dir));
    }
    std::string tmp;
    absl::StatusOr<int> fd = WriteTemp(name, data, more, tmp);
    if (!fd.ok()) return fd.status();
    // No sync_file_range here: the flusher's syncfs starts the write-back
    // of a whole batch at once, in fewer and larger requests (measured: less
    // CPU and a faster push than a write-back started per object).
    if (::close(*fd) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Failed(ErrnoStatus(err, absl::StrCat("closing ", name)));
    }
    FlushAhead(data.size() + more.size());
    std::lock_guard<std::mutex> lock(mu_);
    written_.push_back({std::move(tmp), name});
    pending_names_.insert(name);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& name) override {
    std::string out;
    size_t size = 0;
    absl::Status s = GetInto(name, out, size);
    if (!s.ok()) return s;
    out.resize(size);
    return out;
  }

  absl::Status GetInto(const std::string& name, std::string& buf, size_t& size) override {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Failed(ErrnoStatus(errno, name));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Failed(ErrnoStatus(err, name));
    }
    size = static_cast<size_t>(st.st_size);
    if (buf.size() < size) buf.resize(size);
    size_t done = 0;
    while (done < size) {
      ssize_t r = ::pread(fd, buf.data() + done, size - done, static_cast<off_t>(done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        int err = r < 0 ? errno : EIO;
        ::close(fd);
        return Failed(ErrnoStatus(err, absl::StrCat("reading ", name)));
      }
      done += static_cast<size_t>(r);
    }
    ::close(fd);
    return absl::OkStatus();
  }

  absl::StatusOr<ObjectInfo> Stat(const std::string& name) override {
    struct stat st;
    if (::stat(Path(name).c_str(), &st) != 0) return Failed(ErrnoStatus(errno, name));
    return ObjectInfo{name, static_cast<uint64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec)};
  }

  absl::StatusOr<bool> TouchIfExists(const std::string& name) override {
    {
      // Written and not yet flushed: in place by the next Sync (or that
      // Sync fails, and so does every later one).
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_names_.count(name)) return true;
    }
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
    // One Sync at a time: a push that found a chunk pending (TouchIfExists)
    // returns from its Sync only after the Sync that took that chunk has
    // placed it.
    std::lock_guard<std::mutex> serial(sync_mu_);
    absl::Status s = PlaceWritten();
    if (!s.ok()) return s;
    std::vector<std::string> dirs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dirs.assign(dirty_dirs_.begin(), dirty_dirs_.end());
      dirty_dirs_.clear();
    }
    if (dirs.empty()) return absl::OkStatus();
    s = dirs.size() > kFewFolders ? SyncFs("renames") : FsyncFolders(dirs);
    if (!s.ok()) {
      // Not known durable: synced again by the next Sync.
      std::lock_guard<std::mutex> lock(mu_);
      dirty_dirs_.insert(dirs.begin(), dirs.end());
    }
    return s;
  }

  int parallelism() const override { return 3; }

 private:
  std::string Path(const std::string& name) const { return root_ + "/" + name; }

  // Everything written to the store's file system so far durable: data,
  // inodes and folder entries, in one journal commit.
  absl::Status SyncFs(const std::string& what) {
    if (::syncfs(root_fd_) != 0) return Failed(ErrnoStatus(errno, absl::StrCat("syncfs for ", what)));
    return absl::OkStatus();
  }

  // The deferred objects written so far made durable (one syncfs) and
  // renamed into place; their folders' entries stay dirty for the Sync.
  // REQUIRES: sync_mu_ held.
  absl::Status PlaceWritten() {
    {
      std::lock_guard<std::mutex> lock(flush_mu_);
      unflushed_ = 0;  // this syncfs takes them
    }
    std::vector<Written> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!broken_.ok()) return broken_;
      batch.swap(written_);
    }
    if (batch.empty()) return absl::OkStatus();
    absl::Status s = SyncFs(absl::StrCat(batch.size(), " new objects"));
    size_t placed = 0;
    for (; s.ok() && placed < batch.size(); ++placed) s = Place(batch[placed].tmp, batch[placed].name);
    for (size_t i = placed; i < batch.size(); ++i) ::unlink(batch[i].tmp.c_str());
    std::lock_guard<std::mutex> lock(mu_);
    for (const Written& w : batch) pending_names_.erase(pending_names_.find(w.name));
    if (!s.ok()) {
      // Another push may have counted on one of these objects
      // (TouchIfExists said it was there): no later Sync may succeed.
      broken_ = absl::Status(s.code(), absl::StrCat(s.message(), " (this store handle refuses further pushes;"
                                                     " open the store again)"));
      return broken_;
    }
    return absl::OkStatus();
  }

  // Deferred objects are made durable and placed ahead of the Sync, every
  // kFlushAhead bytes, on a background thread: the device writes (and
  // flushes its cache) and the renames run while the push still hashes and
  // writes, so the Sync finds little left to do. A placed object is whole
  // and durable; what makes a version visible is still the manifest and the
  // metadata commit after the Sync, and gc keeps young unreferenced chunks.
  // An error here breaks the store handle like one in a Sync: the Sync
  // returns it.
  static constexpr uint64_t kFlushAhead = 16u << 20;

  void FlushAhead(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(flush_mu_);
    unflushed_ += bytes;
    if (unflushed_ < kFlushAhead || flush_stop_) return;
    if (!flusher_.joinable()) flusher_ = std::thread([this] { FlushLoop(); });
    flush_cv_.notify_one();
  }

  void FlushLoop() {
    std::unique_lock<std::mutex> lock(flush_mu_);
    while (true) {
      flush_cv_.wait(lock, [&] { return flush_stop_ || unflushed_ >= kFlushAhead; });
      if (flush_stop_) return;
      lock.unlock();
      {
        std::lock_guard<std::mutex> serial(sync_mu_);
        (void)PlaceWritten();  // an error sticks in broken_
      }
      lock.lock();
    }
  }

  // A few folders fsynced at once (cheaper than a syncfs that may wait for
  // other writers on the same file system).
  absl::Status FsyncFolders(const std::vector<std::string>& dirs) {
    std::atomic<size_t> next{0};
    std::mutex error_mu;
    absl::Status error;
    auto body = [&] {
      for (size_t i = next++; i < dirs.size(); i = next++) {
        absl::Status s = FsyncPath(dirs[i]);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (error.ok()) error = Failed(s);
        }
      }
    };
    std::vector<std::thread> pool;
    for (size_t t = 1; t < dirs.size(); ++t) pool.emplace_back(body);
    body();
    for (auto& t : pool) t.join();
    return error;
  }

  // Creates tmp/NAME.UNIQUE and writes `data` then `more` into it (one
  // writev; short writes go round again). The open descriptor on success;
  // on error the temporary is gone.
  absl::StatusOr<int> WriteTemp(const std::string& name, std::string_view data, std::string_view more,
                                std::string& tmp) {
    tmp = absl::StrCat(root_, "/tmp/", absl::StrReplaceAll(name, {{"/", "_"}}), ".", token_, ".",
                       counter_.fetch_add(1));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Failed(ErrnoStatus(errno, "creating " + tmp));
    struct iovec iov[2] = {{const_cast<char*>(data.data()), data.size()},
                           {const_cast<char*>(more.data()), more.size()}};
    int first = 0;
    while (first < 2) {
      if (iov[first].iov_len == 0) {
        ++first;
        continue;
      }
      ssize_t w = ::writev(fd, iov + first, 2 - first);
      if (w < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return Failed(ErrnoStatus(err, absl::StrCat("writing ", name)));
      }
      for (size_t done = static_cast<size_t>(w); done > 0 && first < 2;) {
        size_t k = std::min(done, iov[first].iov_len);
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + k;
        iov[first].iov_len -= k;
        done -= k;
        if (iov[first].iov_len == 0) ++first;
      }
    }
    return fd;
  }

  // Renames a durable temporary onto `name` and remembers the folder for
  // Sync. The folder chunks/ab may not exist yet; another worker may be
  // creating it at the same time, so a rename that finds no folder creates
  // it and tries again.
  absl::Status Place(const std::string& tmp, const std::string& name) {
    std::string final_path = Path(name);
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
  // PutDeferred objects written, their write-back started, not yet durable
  // and in place; their names (also while a Sync places them). Guarded by mu_.
  struct Written {
    std::string tmp, name;
  };
  std::vector<Written> written_;
  std::multiset<std::string> pending_names_;
  absl::Status broken_;  // set by a failed Sync of deferred objects; sticks
  std::mutex sync_mu_;   // one Sync at a time
  int root_fd_ = -1;     // the store's folder, for syncfs
  std::mutex flush_mu_;  // guards the four below
  std::condition_variable flush_cv_;
  uint64_t unflushed_ = 0;  // bytes of deferred objects since the last syncfs
  bool flush_stop_ = false;
  std::thread flusher_;
  static constexpr size_t kFewFolders = 4;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenFileBackend(const std::string& uri, const std::string& root) {
  auto b = std::make_unique<FileBackend>(uri, root);
  absl::Status s = b->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace hepml::registry
