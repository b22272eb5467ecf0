// Byte access: local files through pread, other schemes through registered
// openers.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/source.h"
#include "hepml/data.h"

namespace hepml::data {

absl::Status RandomAccessFile::ReadV(absl::Span<const Range> ranges) {
  for (const Range& r : ranges) {
    absl::Status s = ReadAt(r.offset, r.length, r.out);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {

class LocalFile final : public RandomAccessFile {
 public:
  LocalFile(int fd, uint64_t size, std::string name) : fd_(fd), size_(size), name_(std::move(name)) {}
  ~LocalFile() override { ::close(fd_); }
  uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }

  absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) override {
    if (offset > size_ || length > size_ - offset) {
      return absl::OutOfRangeError(absl::StrCat(name_, ": read of ", length, " bytes at offset ",
                                                offset, " is past the end of the file (",
                                                size_, " bytes)"));
    }
    while (length > 0) {
      ssize_t n = ::pread(fd_, out, length, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return absl::DataLossError(absl::StrCat(name_, ": read failed at offset ", offset, ": ",
                                                n < 0 ? std::strerror(errno) : "unexpected end"));
      }
      out += n;
      offset += static_cast<uint64_t>(n);
      length -= static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }

 private:
  int fd_;
  uint64_t size_;
  std::string name_;
};

absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenLocal(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  return std::unique_ptr<RandomAccessFile>(
      new LocalFile(fd, static_cast<uint64_t>(st.st_size), path));
}

std::mutex& SchemesMutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, FileOpener>& Schemes() {
  static auto* schemes = new std::map<std::string, FileOpener>();
  return *schemes;
}

}  // namespace

void RegisterFileScheme(const std::string& scheme, FileOpener opener) {
  std::lock_guard<std::mutex> lock(SchemesMutex());
  Schemes()[scheme] = std::move(opener);
}

absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenFile(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return OpenLocal(url);
  std::string scheme = url.substr(0, sep);
  if (scheme == "file") return OpenLocal(url.substr(sep + 3));
  FileOpener opener;
  bool builtin_xrootd = scheme == "root" || scheme == "xroot";
  std::vector<std::string> known = {"file"};
  {
    std::lock_guard<std::mutex> lock(SchemesMutex());
    auto it = Schemes().find(scheme);
    if (it != Schemes().end()) opener = it->second;
    for (const auto& [name, unused] : Schemes()) known.push_back(name);
  }
  if (!opener && builtin_xrootd) return OpenXRootDFile(url);
  if (!opener) {
    known.push_back("root");
    known.push_back("xroot");
    return absl::UnimplementedError(absl::StrCat(url, ": no reader for the '", scheme,
                                                 "://' scheme (available: ",
                                                 absl::StrJoin(known, ", "), ")"));
  }
  return opener(url);
}

std::shared_ptr<void> AllocateBatchBytes(size_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes < 2 * kHuge) {
    void* p = std::aligned_alloc(64, std::max<size_t>(64, (bytes + 63) / 64 * 64));
    if (p == nullptr) throw std::bad_alloc();
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  }
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (p == nullptr) throw std::bad_alloc();
  ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ignored where unsupported
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

std::shared_ptr<void> BlockPool::Get(size_t bytes) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    // use_count() == 1: only the pool holds it, and only this thread can
    // hand it out again, so the count cannot rise behind this check.
    if (entries_[i].bytes >= bytes && entries_[i].block.use_count() == 1) {
      Entry e = std::move(entries_[i]);
      entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(i));
      std::shared_ptr<void> block = e.block;
      entries_.push_back(std::move(e));  // now the newest
      return block;
    }
  }
  std::shared_ptr<void> block = AllocateBatchBytes(bytes);
  if (capacity_ == 0) return block;
  if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  entries_.push_back({block, bytes});
  return block;
}

Tensor NewColumnTensor(DType dtype, Shape shape) {
  const int64_t n = NumElements(shape);
  if (dtype == DType::kString || n <= 0) return Tensor::Empty(dtype, std::move(shape));
  const size_t bytes = static_cast<size_t>(n) * DTypeSize(dtype);
  if (bytes < (size_t{4} << 20)) return Tensor::Empty(dtype, std::move(shape));
  std::shared_ptr<void> block = AllocateBatchBytes(bytes);
  void* p = block.get();
  return Tensor::Wrap(dtype, std::move(shape), p, std::move(block));
}

absl::StatusOr<std::string> ReadWholeFile(RandomAccessFile* file, int64_t limit) {
  if (file->size() > static_cast<uint64_t>(limit)) {
    return absl::ResourceExhaustedError(absl::StrCat(file->name(), ": ", file->size(),
                                                     " bytes is more than the limit of ", limit));
  }
  std::string bytes(file->size(), '\0');
  absl::Status s = file->ReadAt(0, bytes.size(), bytes.data());
  if (!s.ok()) return s;
  return bytes;
}

}  // namespace hepml::data
