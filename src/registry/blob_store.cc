// BlobStore over a Backend: the push pipeline (the calling thread reads and
// cuts the file and hashes it whole; workers hash, compress and write chunks),
// the pull pipeline (workers fetch, decompress and verify chunks ahead of the
// writer, in a bounded window), fsck and gc.
//
// Garbage collection and concurrent pushes. A push writes (or, when a chunk
// is already there, refreshes the modification time of) every chunk before
// it writes the manifest, and the metadata store commits the version only
// after that. Gc therefore keeps:
//   - every manifest in `live_manifests`, and every manifest younger than the
//     grace period (a push whose metadata commit has not happened yet);
//   - every chunk such a manifest lists;
//   - every chunk younger than the grace period (a push still writing).
// The chunk's time is read again right before it is removed, so a push that
// reuses the chunk after gc listed it keeps it. The rule holds as long as no
// push takes longer than the grace period between its first chunk and its
// metadata commit.
#include "registry/blob_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "registry/backend.h"
#include "registry/chunk_codec.h"
#include "registry/chunker.h"
#include "registry/sha256_pair.h"

namespace hepml::registry {
namespace {

constexpr const char* kManifestFormat = "hepml-manifest/1";
constexpr uint64_t kWriteBackStep = 16 << 20;  // bytes a pull writes between fdatasyncs

std::string ChunkName(const std::string& id) { return absl::StrCat("chunks/", id.substr(0, 2), "/", id); }
std::string ManifestName(const std::string& id) { return absl::StrCat("manifests/", id.substr(0, 2), "/", id); }

// "chunks/ab/abcd..." -> "abcd..." when the name is well formed, else "".
std::string IdFromName(const std::string& name, const std::string& prefix) {
  if (!absl::StartsWith(name, prefix + "/")) return "";
  std::string rest = name.substr(prefix.size() + 1);
  if (rest.size() != 67 || rest[2] != '/') return "";
  std::string id = rest.substr(3);
  if (!IsHexId(id) || id.compare(0, 2, rest, 0, 2) != 0) return "";
  return id;
}

// SHA-256 of the chunk list ("ID SIZE\n" per chunk, in file order), written
// into the manifest at push time, when the same bytes gave the chunk ids
// and the file's id.
std::string ChunkListDigest(const std::vector<ChunkRef>& chunks) {
  Sha256 h;
  for (const ChunkRef& c : chunks) h.Update(absl::StrCat(c.id, " ", c.size, "\n"));
  return h.HexDigest();
}

std::string ManifestJson(const Manifest& m, const ChunkerOptions& o) {
  nlohmann::json chunks = nlohmann::json::array();
  for (const ChunkRef& c : m.chunks) chunks.push_back({c.id, c.size});
  nlohmann::json j = {
      {"format", kManifestFormat},
      {"id", m.id},
      {"size", m.size},
      {"chunker",
       {{"algorithm", "fastcdc"}, {"min", o.min_size}, {"avg", o.avg_size}, {"max", o.max_size},
        {"gear_seed", absl::StrCat(kGearSeed)}}},
      {"chunks", chunks},
      {"chunks_sha256", ChunkListDigest(m.chunks)},
  };
  return j.dump();
}

absl::StatusOr<Manifest> ParseManifest(const std::string& id, const std::string& text) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("manifest ", id, " is corrupt: ", why));
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad(absl::StrCat("not valid JSON (", text.size(), " bytes; truncated?)"));
  if (!j.is_object() || !j.contains("format") || !j["format"].is_string() ||
      j["format"].get<std::string>() != kManifestFormat) {
    return bad(absl::StrCat("missing or unknown \"format\" (expected ", kManifestFormat, ")"));
  }
  if (!j.contains("id") || !j["id"].is_string() || j["id"].get<std::string>() != id) {
    return bad("its \"id\" does not match its name");
  }
  if (!j.contains("size") || !j["size"].is_number_unsigned()) return bad("no \"size\"");
  if (!j.contains("chunks") || !j["chunks"].is_array()) return bad("no \"chunks\" list");
  Manifest m;
  m.id = id;
  m.size = j["size"].get<uint64_t>();
  uint64_t total = 0;
  for (const auto& c : j["chunks"]) {
    if (!c.is_array() || c.size() != 2 || !c[0].is_string() || !c[1].is_number_unsigned()) {
      return bad(absl::StrCat("chunk entry ", m.chunks.size(), " is not [id, size]"));
    }
    ChunkRef ref{c[0].get<std::string>(), c[1].get<uint64_t>()};
    if (!IsHexId(ref.id)) return bad(absl::StrCat("chunk entry ", m.chunks.size(), " has a malformed id"));
    if (ref.size == 0 || ref.size > (uint64_t{1} << 30)) {
      return bad(absl::StrCat("chunk ", ref.id, " has an impossible size ", ref.size));
    }
    total += ref.size;
    m.chunks.push_back(std::move(ref));
  }
  if (total != m.size) return bad(absl::StrCat("chunk sizes add up to ", total, ", not ", m.size));
  if (j.contains("chunks_sha256")) {
    if (!j["chunks_sha256"].is_string() || j["chunks_sha256"].get<std::string>() != ChunkListDigest(m.chunks)) {
      return bad("its chunk list does not match its \"chunks_sha256\"");
    }
    m.chunk_list_sealed = true;
  }
  return m;
}

// A bounded multi-producer multi-consumer queue.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  void Push(T v) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_; });
    q_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  bool Pop(T& out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> q_;
  bool closed_ = false;
};

// Spare chunk buffers for a pull: the readers take one, the file hasher
// gives it back when done, so a pull allocates (and the kernel zero-fills)
// a few buffers instead of one per chunk. Keeps at most `max` buffers.
class BufferPool {
 public:
  explicit BufferPool(size_t max) : max_(max) {}
  std::string Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::string();
    std::string b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Give(std::string&& b) {
    // A moved-from string (a raw chunk's decode took the buffer) has only
    // its inline capacity left: pooled, it would cost a fresh allocation,
    // zero-fill and page faults at its next use.
    if (b.capacity() < (64u << 10)) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < max_) free_.push_back(std::move(b));
  }

 private:
  size_t max_;
  std::mutex mu_;
  std::vector<std::string> free_;
};

// fdatasync of a growing file on a thread of its own, each time `step` more
// bytes are written: the device writes (and flushes its cache) while the
// pull goes on, so the fsync at the end waits for the tail only (a write-
// back merely started, sync_file_range, left that fsync 0.14 s of 0.27).
// The first error is kept: an fdatasync that meets a write-back error
// consumes it for the descriptor, and the final fsync would not see it.
class BackgroundDatasync {
 public:
  BackgroundDatasync(int fd, uint64_t step, uint64_t start)
      : fd_(fd), step_(step), requested_(start), written_(start), synced_(start), thread_([this] { Loop(); }) {}
  ~BackgroundDatasync() { (void)Stop(); }

  // The file is written up to `offset`. One thread calls this.
  void Written(uint64_t offset) {
    if (offset < requested_ + step_) return;
    requested_ = offset;
    {
      std::lock_guard<std::mutex> lock(mu_);
      written_ = offset;
    }
    cv_.notify_one();
  }

  // Ends the thread (an fdatasync under way finishes first); the first
  // error of its fdatasyncs, if any.
  absl::Status Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
    return error_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || written_ > synced_; });
      if (done_) return;
      const uint64_t target = written_;
      lock.unlock();
      const int rc = ::fdatasync(fd_);
      const int err = errno;
      lock.lock();
      if (rc != 0 && error_.ok()) error_ = ErrnoStatus(err, "fdatasync");
      synced_ = target;
    }
  }

  const int fd_;
  const uint64_t step_;
  uint64_t requested_;  // the caller's thread only
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_, synced_;  // under mu_
  bool done_ = false;
  absl::Status error_;
  std::thread thread_;  // last: starts once the rest is set
};

// Runs fn(i) for i in [0, n) on `threads` threads.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto body = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  std::vector<std::thread> pool;
  int extra = static_cast<int>(std::min<size_t>(n, static_cast<size_t>(threads))) - 1;
  for (int t = 0; t < extra; ++t) pool.emplace_back(body);
  body();
  for (auto& t : pool) t.join();
}

class Store final : public BlobStore {
 public:
  Store(std::unique_ptr<Backend> backend, const ChunkerOptions& options)
      : backend_(std::move(backend)), options_(options) {
    threads_ = std::clamp(options.threads > 0 ? options.threads : backend_->parallelism(), 1, 64);
  }

  const std::string& uri() const override { return backend_->uri(); }

  absl::StatusOr<Manifest> PutFile(const std::string& path, PutStats* stats) override {
    // O_NONBLOCK: opening a FIFO with no writer would wait forever; it is
    // refused below as not a regular file (reads of regular files ignore it).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return ErrnoStatus(errno, "opening " + path);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    auto read = [&](char* buf, size_t n) -> absl::StatusOr<size_t> {
      for (;;) {
        ssize_t r = ::read(fd, buf, n);
        if (r >= 0) return static_cast<size_t>(r);
        if (errno != EINTR) return ErrnoStatus(errno, "reading " + path);
      }
    };
    ChunkStream::ReadFn read_fn = read;
    absl::StatusOr<Manifest> m = Put({}, &read_fn, stats);
    ::close(fd);
    return m;
  }

  absl::StatusOr<Manifest> PutBytes(const std::string& bytes, PutStats* stats) override {
    return Put(bytes, nullptr, stats);
  }

  absl::StatusOr<Manifest> GetManifest(const std::string& manifest_id) override {
    if (!IsHexId(manifest_id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest id '", manifest_id, "' is not a SHA-256 (64 lowercase hex digits)"));
    }
    absl::StatusOr<std::string> text = backend_->Get(ManifestName(manifest_id));
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) {
        return absl::NotFoundError(absl::StrCat("manifest ", manifest_id, " is not in store ", uri()));
      }
      return text.status();
    }
    return ParseManifest(manifest_id, *text);
  }

  bool HasManifest(const std::string& manifest_id) override {
    return IsHexId(manifest_id) && backend_->Stat(ManifestName(manifest_id)).ok();
  }

  absl::Status GetFile(const std::string& manifest_id, const std::string& dest_path) override {
    absl::StatusOr<Manifest> m = GetManifest(manifest_id);
    if (!m.ok()) return m.status();
    std::string partial = dest_path + ".partial";
    int fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "creating " + partial);
    struct Closer {
      int fd;
      ~Closer() {
        if (fd >= 0) ::close(fd);
      }
    } closer{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, partial);

    // Resume: keep the leading chunks of an earlier attempt that check out.
    Sha256 file_hash;
    uint64_t offset = 0;
    size_t first = 0;
    std::string buf;
    while (first < m->chunks.size()) {
      const ChunkRef& c = m->chunks[first];
      if (offset + c.size > static_cast<uint64_t>(st.st_size)) break;
      buf.resize(c.size);
      ssize_t r = ::pread(fd, buf.data(), c.size, static_cast<off_t>(offset));
      if (r != static_cast<ssize_t>(c.size) || Sha256Hex(buf) != c.id) break;
      if (!m->chunk_list_sealed) file_hash.Update(buf);
      offset += c.size;
      ++first;
    }
    if (::ftruncate(fd, static_cast<off_t>(offset)) != 0) return ErrnoStatus(errno, "truncating " + partial);

    BackgroundDatasync datasync(fd, kWriteBackStep, offset);
    // The whole-file hash runs on its own thread, behind the writes.
    BoundedQueue<DecodedChunk> to_hash(static_cast<size_t>(threads_));
    BufferPool buffers(3 * static_cast<size_t>(threads_) + 2);  // as many as can be in flight
    // A sealed chunk list needs no whole-file hash: each chunk is checked
    // against its id as it is decoded.
    std::thread hasher;
    if (!m->chunk_list_sealed) {
      hasher = std::thread([&] {
        DecodedChunk c;
        while (to_hash.Pop(c)) {
          file_hash.Update(c.bytes());
          buffers.Give(std::move(c.buf));
        }
      });
    }
    absl::Status s = Fetch(*m, first, [&](const ChunkRef&, DecodedChunk&& chunk) -> absl::Status {
      std::string_view data = chunk.bytes();
      const char* p = data.data();
      size_t left = data.size();
      while (left > 0) {
        ssize_t w = ::pwrite(fd, p, left, static_cast<off_t>(offset));
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus(errno, absl::StrCat("writing ", partial));
        }
        p += w;
        left -= static_cast<size_t>(w);
        offset += static_cast<uint64_t>(w);
      }
      if (m->chunk_list_sealed) {
        buffers.Give(std::move(chunk.buf));
      } else {
        to_hash.Push(std::move(chunk));
      }
      datasync.Written(offset);
      return absl::OkStatus();
    }, &buffers);
    to_hash.Close();
    if (hasher.joinable()) hasher.join();
    absl::Status synced = datasync.Stop();
    if (!s.ok()) return s;  // the verified prefix stays for a later attempt
    if (!synced.ok()) return absl::Status(synced.code(), absl::StrCat(partial, ": ", synced.message()));
    std::string actual = m->chunk_list_sealed ? m->id : file_hash.HexDigest();
    if (actual != m->id) {
      ::unlink(partial.c_str());
      return absl::DataLossError(
          absl::StrCat("file rebuilt from manifest ", m->id, " hashes to ", actual, "; removed ", partial));
    }
    if (::fsync(fd) != 0) return ErrnoStatus(errno, "fsync of " + partial);
    ::close(fd);
    closer.fd = -1;
    if (::rename(partial.c_str(), dest_path.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("renaming ", partial, " to ", dest_path));
    }
    std::string dir = dest_path.find('/') == std::string::npos ? "." : dest_path.substr(0, dest_path.rfind('/'));
    if (dir.empty()) dir = "/";
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> GetBytes(const std::string& manifest_id) override {
    absl::StatusOr<Manifest> m = GetManifest(manifest_id);
    if (!m.ok()) return m.status();
    std::string out;
    out.reserve(m->size);
    absl::Status s = Fetch(*m, 0, [&](const ChunkRef&, DecodedChunk&& chunk) {
      out += chunk.bytes();
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    std::string actual = m->chunk_list_sealed ? m->id : Sha256Hex(out);
    if (actual != m->id) {
      return absl::DataLossError(absl::StrCat("bytes rebuilt from manifest ", m->id, " hash to ", actual));
    }
    return out;
  }

  absl::StatusOr<FsckReport> Fsck(const std::vector<std::string>& referenced) override {
    FsckReport report;
    absl::StatusOr<std::vector<ObjectInfo>> manifests = backend_->List("manifests");
    if (!manifests.ok()) return manifests.status();
    std::unordered_set<std::string> manifest_ids;
    // chunk id -> (manifest, offset) of one user, for the message.
    std::unordered_map<std::string, std::pair<std::string, uint64_t>> needed;
    for (const ObjectInfo& o : *manifests) {
      std::string id = IdFromName(o.name, "manifests");
      if (id.empty()) {
        report.problems.push_back(absl::StrCat(o.name, ": not a manifest name"));
        continue;
      }
      ++report.manifests_checked;
      manifest_ids.insert(id);
      absl::StatusOr<Manifest> m = GetManifest(id);
      if (!m.ok()) {
        report.problems.push_back(std::string(m.status().message()));
        continue;
      }
      uint64_t offset = 0;
      for (const ChunkRef& c : m->chunks) {
        needed.emplace(c.id, std::make_pair(id, offset));
        offset += c.size;
      }
    }
    absl::StatusOr<std::vector<ObjectInfo>> chunks = backend_->List("chunks");
    if (!chunks.ok()) return chunks.status();
    std::unordered_set<std::string> chunk_ids;
    std::vector<std::string> ids(chunks->size());
    for (size_t i = 0; i < chunks->size(); ++i) {
      ids[i] = IdFromName((*chunks)[i].name, "chunks");
      if (ids[i].empty()) {
        report.problems.push_back(absl::StrCat((*chunks)[i].name, ": not a chunk name"));
      } else {
        chunk_ids.insert(ids[i]);
      }
    }
    std::mutex mu;
    ParallelFor(ids.size(), threads_, [&](size_t i) {
      if (ids[i].empty()) return;
      std::string stored;
      size_t size = 0;
      absl::Status s = backend_->GetInto((*chunks)[i].name, stored, size);
      if (s.ok()) s = DecodeChunk(ids[i], stored, size).status();
      std::lock_guard<std::mutex> lock(mu);
      ++report.chunks_checked;
      if (!s.ok()) report.problems.push_back(std::string(s.message()));
    });
    std::vector<std::string> missing;
    for (const auto& [chunk, user] : needed) {
      if (chunk_ids.count(chunk) == 0) {
        missing.push_back(absl::StrCat("manifest ", user.first, ": chunk ", chunk, " (at offset ", user.second,
                                       ") is missing"));
      }
    }
    std::sort(missing.begin(), missing.end());
    for (auto& p : missing) report.problems.push_back(std::move(p));
    for (const std::string& r : referenced) {
      if (manifest_ids.count(r) == 0) {
        report.problems.push_back(absl::StrCat("manifest ", r, " is referenced but not in the store"));
      }
    }
    return report;
  }

  absl::StatusOr<GcReport> Gc(const std::vector<std::string>& live_manifests, int64_t grace_seconds) override {
    GcReport report;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    auto young = [&](int64_t mtime) { return now - mtime < grace_seconds; };
    std::unordered_set<std::string> live(live_manifests.begin(), live_manifests.end());
    absl::StatusOr<std::vector<ObjectInfo>> manifests = backend_->List("manifests");
    if (!manifests.ok()) return manifests.status();
    std::unordered_set<std::string> present;
    for (const ObjectInfo& o : *manifests) present.insert(IdFromName(o.name, "manifests"));
    for (const std::string& id : live) {
      if (present.count(id) == 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "gc refused: live manifest ", id, " is not in store ", uri(), " (run fsck; nothing was removed)"));
      }
    }
    // Chunks to keep: those of live and young manifests. Read them all
    // before removing anything.
    std::unordered_set<std::string> keep;
    std::vector<ObjectInfo> doomed_manifests;
    for (const ObjectInfo& o : *manifests) {
      std::string id = IdFromName(o.name, "manifests");
      if (id.empty()) continue;  // not ours: left alone
      if (live.count(id) == 0 && !young(o.mtime)) {
        doomed_manifests.push_back(o);
        continue;
      }
      absl::StatusOr<Manifest> m = GetManifest(id);
      if (!m.ok()) {
        return absl::FailedPreconditionError(
            absl::StrCat("gc refused: ", m.status().message(), " (run fsck; nothing was removed)"));
      }
      for (const ChunkRef& c : m->chunks) keep.insert(c.id);
    }
    for (const ObjectInfo& o : doomed_manifests) {
      absl::Status s = backend_->Delete(o.name);
      if (!s.ok()) return s;
      ++report.manifests_removed;
    }
    absl::StatusOr<std::vector<ObjectInfo>> chunks = backend_->List("chunks");
    if (!chunks.ok()) return chunks.status();
    std::vector<const ObjectInfo*> candidates;
    for (const ObjectInfo& o : *chunks) {
      std::string id = IdFromName(o.name, "chunks");
      if (id.empty() || keep.count(id) || young(o.mtime)) continue;
      candidates.push_back(&o);
    }
    std::mutex mu;
    absl::Status error;
    ParallelFor(candidates.size(), threads_, [&](size_t i) {
      const ObjectInfo& o = *candidates[i];
      // A push may have reused the chunk since it was listed.
      absl::StatusOr<ObjectInfo> fresh = backend_->Stat(o.name);
      if (!fresh.ok() || young(fresh->mtime)) return;
      absl::Status s = backend_->Delete(o.name);
      std::lock_guard<std::mutex> lock(mu);
      if (!s.ok()) {
        if (error.ok()) error = s;
        return;
      }
      ++report.chunks_removed;
      report.bytes_freed += fresh->size;
    });
    if (!error.ok()) return error;
    // Temporaries of pushes that died.
    absl::StatusOr<std::vector<ObjectInfo>> tmps = backend_->List("tmp");
    if (!tmps.ok()) return tmps.status();
    for (const ObjectInfo& o : *tmps) {
      if (young(o.mtime)) continue;
      if (backend_->Delete(o.name).ok()) report.bytes_freed += o.size;
    }
    absl::Status s = backend_->Sync();
    if (!s.ok()) return s;
    return report;
  }

 private:
  // The push pipeline. The calling thread reads the file into segments (large
  // buffers from a small fixed pool) and cuts them into chunks, which view
  // their segment; a hasher thread takes the chunks in file order and hashes
  // each one for its id and, in the same pass, for the whole file's id
  // (Sha256Pair); `threads_` workers store them. A segment goes back to the
  // pool when the cutter has moved past it and every chunk in it is stored.
  // The bytes hashed are the bytes written: both come from the segment, never
  // from the file again, so a file changing under a push cannot store a
  // chunk under a wrong id. PutBytes cuts the caller's string directly
  // (`memory`, with `read` null).
  absl::StatusOr<Manifest> Put(std::string_view memory, const ChunkStream::ReadFn* read, PutStats* stats) {
    struct Segment {
      std::unique_ptr<char, decltype(&std::free)> data{nullptr, &std::free};
      std::atomic<int> users{0};
    };
    struct Piece {
      std::string_view bytes;
      Segment* segment = nullptr;  // null: the bytes are the caller's
      std::string id;              // empty: the worker hashes the chunk
      size_t index = 0;
    };
    // With SHA-NI the hasher hashes each byte once for both ids. Without it
    // two streams cost twice one, so the hasher keeps the whole-file hash
    // and the workers hash the chunks, in parallel (HEPML_REGISTRY_NO_SHA_NI
    // forces this path, for tests and measurements).
    const char* no_sha_ni = std::getenv("HEPML_REGISTRY_NO_SHA_NI");
    const bool one_pass = Sha256Pair::CpuHasShaNi() && (no_sha_ni == nullptr || *no_sha_ni == '\0');
    // Whole 2 MiB pages, so that the kernel can back a segment with huge
    // pages: with 4 KiB pages the first read into each costs a page fault
    // per 4 KiB (~2k per segment; expensive under a hypervisor).
    constexpr size_t kHugePage = 2u << 20;
    const size_t segment_size =
        (std::max<size_t>(2 * options_.max_size, 8u << 20) + kHugePage - 1) / kHugePage * kHugePage;
    const size_t pool_size = read != nullptr ? 4 : 0;
    std::vector<std::unique_ptr<Segment>> pool(pool_size);
    BoundedQueue<Segment*> free_segments(pool_size + 1);
    for (auto& s : pool) {
      s = std::make_unique<Segment>();
      s->data.reset(static_cast<char*>(std::aligned_alloc(kHugePage, segment_size)));
      if (s->data == nullptr) return absl::ResourceExhaustedError("push: no memory for the read buffers");
      ::madvise(s->data.get(), segment_size, MADV_HUGEPAGE);  // a hint: 4 KiB pages work too
      free_segments.Push(s.get());
    }
    auto release = [&](Segment* s) {
      if (s != nullptr && s->users.fetch_sub(1) == 1) free_segments.Push(s);
    };
    BoundedQueue<Piece> to_hash(2 * static_cast<size_t>(threads_) + 2), to_store(static_cast<size_t>(threads_));
    std::mutex mu;
    absl::Status error;
    std::atomic<bool> failed{false};
    std::atomic<uint64_t> reused{0}, stored{0};
    auto fail = [&](const absl::Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      if (error.ok()) error = s;
      failed = true;
    };

    // Chunk ids and sizes in file order: the hasher appends, a worker that
    // hashes its chunk fills in the id; both under `mu`.
    std::vector<ChunkRef> refs;
    auto worker = [&] {
      ChunkEncoder encoder(options_.zstd_level, options_.min_compression_saving);
      Piece piece;
      while (to_store.Pop(piece)) {
        if (!failed) {
          if (piece.id.empty()) {
            piece.id = Sha256Hex(piece.bytes);
            std::lock_guard<std::mutex> lock(mu);
            refs[piece.index].id = piece.id;
          }
          absl::Status s = StoreChunk(piece.id, piece.bytes, encoder, reused, stored);
          if (!s.ok()) fail(s);
        }
        release(piece.segment);
      }
    };
    std::vector<std::thread> workers;
    for (int t = 0; t < threads_; ++t) workers.emplace_back(worker);
    // Only the hasher touches these until it is joined.
    uint64_t total = 0;
    std::string file_id;
    std::thread hasher([&] {
      Sha256Pair hash(one_pass);
      Piece piece;
      while (to_hash.Pop(piece)) {
        if (failed) {
          release(piece.segment);
          continue;
        }
        if (one_pass) {
          hash.UpdateBoth(piece.bytes);
          piece.id = hash.FinishChunk();
        } else {
          hash.UpdateFile(piece.bytes);
        }
        {
          std::lock_guard<std::mutex> lock(mu);
          piece.index = refs.size();
          refs.push_back({piece.id, piece.bytes.size()});
        }
        total += piece.bytes.size();
        to_store.Push(std::move(piece));
      }
      to_store.Close();
      file_id = hash.FinishFile();
    });

    Chunker chunker(options_);
    if (read == nullptr) {
      for (size_t pos = 0; pos < memory.size() && !failed;) {
        size_t n = chunker.Cut(reinterpret_cast<const uint8_t*>(memory.data() + pos), memory.size() - pos);
        to_hash.Push(Piece{memory.substr(pos, n), nullptr, {}});
        pos += n;
      }
    } else {
      // [begin, end) of `seg` is read and not yet cut.
      Segment* seg = nullptr;
      free_segments.Pop(seg);
      seg->users = 1;  // the cutter's own use
      size_t begin = 0, end = 0;
      bool eof = false;
      while (!failed) {
        size_t avail = end - begin;
        size_t n = avail > 0 ? chunker.Cut(reinterpret_cast<const uint8_t*>(seg->data.get() + begin), avail) : 0;
        // A cut found before the end of what is read is final (a decision
        // depends only on the bytes before it); otherwise read on.
        if (n == avail && avail < options_.max_size && !eof) {
          if (end == segment_size) {
            // The segment is full: its unfinished chunk moves to a fresh one.
            Segment* next = nullptr;
            free_segments.Pop(next);
            next->users = 1;
            std::memcpy(next->data.get(), seg->data.get() + begin, avail);
            release(seg);
            seg = next;
            begin = 0;
            end = avail;
          }
          while (end < segment_size) {
            absl::StatusOr<size_t> got = (*read)(seg->data.get() + end, segment_size - end);
            if (!got.ok()) {
              fail(got.status());
              break;
            }
            if (*got == 0) {
              eof = true;
              break;
            }
            end += *got;
          }
          continue;
        }
        if (n == 0) break;  // the end of the file
        seg->users.fetch_add(1);
        to_hash.Push(Piece{std::string_view(seg->data.get() + begin, n), seg, {}});
        begin += n;
      }
      release(seg);
    }
    to_hash.Close();
    hasher.join();
    for (auto& t : workers) t.join();
    if (!error.ok()) {
      // The chunks written so far are good: keep them for a resumed push.
      (void)backend_->Sync();
      return error;
    }

    // Chunks are durable; now the manifest that points at them.
    absl::Status s = backend_->Sync();
    if (!s.ok()) return s;
    Manifest m;
    m.id = std::move(file_id);
    m.size = total;
    m.chunks = std::move(refs);
    absl::StatusOr<bool> had = backend_->TouchIfExists(ManifestName(m.id));
    if (!had.ok()) return had.status();
    bool write = !*had;
    if (*had) {
      // Already stored (the same file pushed before): keep it unless it is
      // damaged.
      absl::StatusOr<Manifest> existing = GetManifest(m.id);
      if (existing.ok()) {
        FillStats(stats, total, m.chunks.size(), reused, stored);
        return *existing;
      }
      write = true;
    }
    if (write) {
      s = backend_->Put(ManifestName(m.id), ManifestJson(m, options_));
      if (!s.ok()) return s;
      s = backend_->Sync();
      if (!s.ok()) return s;
    }
    FillStats(stats, total, m.chunks.size(), reused, stored);
    return m;
  }

  static void FillStats(PutStats* stats, uint64_t total, uint64_t chunks, uint64_t reused, uint64_t stored) {
    if (stats == nullptr) return;
    stats->bytes_in = total;
    stats->chunks_total = chunks;
    stats->chunks_reused = reused;
    stats->bytes_stored = stored;
  }

  absl::Status StoreChunk(const std::string& id, std::string_view data, ChunkEncoder& encoder,
                          std::atomic<uint64_t>& reused, std::atomic<uint64_t>& stored) {
    std::string name = ChunkName(id);
    absl::StatusOr<bool> exists = backend_->TouchIfExists(name);
    if (!exists.ok()) return exists.status();
    if (*exists) {
      ++reused;
      return absl::OkStatus();
    }
    absl::StatusOr<EncodedChunk> encoded = encoder.Encode(data);
    if (!encoded.ok()) return encoded.status();
    // Durable and visible at the Sync before the manifest is written.
    absl::Status s = backend_->PutDeferred(name, encoded->head, encoded->body);
    if (!s.ok()) return s;
    stored += encoded->size();
    return absl::OkStatus();
  }

  absl::StatusOr<DecodedChunk> FetchChunk(const Manifest& m, size_t i, uint64_t offset, BufferPool* pool) {
    const ChunkRef& c = m.chunks[i];
    std::string stored = pool != nullptr ? pool->Take() : std::string();
    // Room for the largest chunk at once: a buffer that grows later is
    // copied and zero-filled again.
    if (pool != nullptr) stored.reserve(std::max<uint64_t>(options_.max_size, c.size) + 64);
    size_t size = 0;
    absl::Status s = backend_->GetInto(ChunkName(c.id), stored, size);
    if (!s.ok()) {
      if (pool != nullptr) pool->Give(std::move(stored));
      if (absl::IsNotFound(s)) {
        return absl::DataLossError(absl::StrCat("chunk ", c.id, " (manifest ", m.id, ", offset ", offset,
                                                ") is missing from store ", uri()));
      }
      return s;
    }
    absl::StatusOr<DecodedChunk> d = DecodeChunk(c.id, stored, size, c.size);
    // A raw chunk took the buffer; a compressed one leaves it for the next.
    if (pool != nullptr) pool->Give(std::move(stored));
    return d;
  }

  // Fetches chunks [first, n) of `m` on worker threads, at most a window
  // ahead of the caller, and hands each verified chunk to `sink` in order.
  absl::Status Fetch(const Manifest& m, size_t first,
                     const std::function<absl::Status(const ChunkRef&, DecodedChunk&&)>& sink,
                     BufferPool* buffers = nullptr) {
    const size_t n = m.chunks.size();
    if (first >= n) return absl::OkStatus();
    std::vector<uint64_t> offsets(n, 0);
    for (size_t i = 1; i < n; ++i) offsets[i] = offsets[i - 1] + m.chunks[i - 1].size;
    const size_t window = 2 * static_cast<size_t>(threads_);
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<absl::StatusOr<DecodedChunk>>> slots(n);
    size_t next = first, consumed = first;
    bool stop = false;
    auto worker = [&] {
      for (;;) {
        size_t i;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return stop || next >= n || next < consumed + window; });
          if (stop || next >= n) return;
          i = next++;
        }
        absl::StatusOr<DecodedChunk> chunk = FetchChunk(m, i, offsets[i], buffers);
        std::lock_guard<std::mutex> lock(mu);
        slots[i] = std::move(chunk);
        cv.notify_all();
      }
    };
    int nthreads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads_), n - first));
    std::vector<std::thread> pool;
    for (int t = 0; t < nthreads; ++t) pool.emplace_back(worker);
    absl::Status result;
    for (size_t i = first; i < n; ++i) {
      absl::StatusOr<DecodedChunk> chunk;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return slots[i].has_value(); });
        chunk = std::move(*slots[i]);
        slots[i].reset();
      }
      if (chunk.ok()) result = sink(m.chunks[i], std::move(*chunk));
      else result = chunk.status();
      std::lock_guard<std::mutex> lock(mu);
      consumed = i + 1;
      if (!result.ok()) stop = true;
      cv.notify_all();
      if (!result.ok()) break;
    }
    for (auto& t : pool) t.join();
    return result;
  }

  std::unique_ptr<Backend> backend_;
  ChunkerOptions options_;
  int threads_;
};

absl::Status BadUri(const std::string& uri, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("store URI '", uri, "': ", why,
                                                 " (expected file:///ABS/PATH or root://HOST:PORT//ABS/PATH)"));
}

absl::StatusOr<std::string> CleanPath(const std::string& uri, std::string path) {
  if (path.empty() || path[0] != '/') return BadUri(uri, "the path is not absolute");
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  for (size_t pos = 0; pos <= path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(pos, end - pos);
    if (part == "." || part == "..") return BadUri(uri, "the path contains '.' or '..'");
    pos = end + 1;
  }
  if (path.find('\0') != std::string::npos) return BadUri(uri, "the path contains a NUL byte");
  return path;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& uri, const ChunkerOptions& options) {
  absl::Status valid = ValidateChunkerOptions(options);
  if (!valid.ok()) return valid;
  std::unique_ptr<Backend> backend;
  if (absl::StartsWith(uri, "file://")) {
    absl::StatusOr<std::string> path = CleanPath(uri, uri.substr(7));
    if (!path.ok()) return path.status();
    absl::StatusOr<std::unique_ptr<Backend>> b = OpenFileBackend(uri, *path);
    if (!b.ok()) return b.status();
    backend = std::move(*b);
  } else if (absl::StartsWith(uri, "root://") || absl::StartsWith(uri, "xroot://")) {
    size_t host_begin = uri.find("://") + 3;
    size_t slash = uri.find('/', host_begin);
    if (slash == std::string::npos || slash == host_begin) return BadUri(uri, "no host");
    std::string host = uri.substr(host_begin, slash - host_begin);
    if (host.find_first_of("?#@ ") != std::string::npos) return BadUri(uri, "unexpected characters in the host");
    if (uri.compare(slash, 2, "//") != 0) return BadUri(uri, "the path must be absolute (two slashes after the host)");
    absl::StatusOr<std::string> path = CleanPath(uri, uri.substr(slash + 1));
    if (!path.ok()) return path.status();
    absl::StatusOr<std::unique_ptr<Backend>> b =
        OpenXRootDBackend(uri, uri.substr(0, host_begin) + host, *path);
    if (!b.ok()) return b.status();
    backend = std::move(*b);
  } else {
    return BadUri(uri, "unknown scheme");
  }
  return std::unique_ptr<BlobStore>(new Store(std::move(backend), options));
}

}  // namespace hepml::registry
