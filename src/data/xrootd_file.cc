// root:// and xroot:// through the XRootD client (XrdCl): positional reads
// and vectored reads (kXR_readv) behind RandomAccessFile.
#include <XrdCl/XrdClFile.hh>
#include <XrdCl/XrdClXRootDResponses.hh>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "data/source.h"

namespace hepml::data {
namespace {

// XRootD's limits for one vectored read (the server may allow more).
constexpr size_t kMaxChunks = 1024;
constexpr uint64_t kMaxChunkBytes = 2097136;
constexpr uint64_t kMaxReadBytes = 64u << 20;

class XRootDFile final : public RandomAccessFile {
 public:
  XRootDFile(std::unique_ptr<XrdCl::File> file, uint64_t size, std::string url)
      : file_(std::move(file)), size_(size), url_(std::move(url)) {}
  ~XRootDFile() override {
    XrdCl::XRootDStatus st = file_->Close();
    (void)st;
  }

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return url_; }

  absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) override {
    if (offset > size_ || length > size_ - offset) {
      return absl::OutOfRangeError(absl::StrCat(url_, ": read of ", length, " bytes at offset ", offset,
                                                " is past the end of the file (", size_, " bytes)"));
    }
    while (length > 0) {
      uint32_t want = static_cast<uint32_t>(std::min(length, kMaxReadBytes));
      uint32_t got = 0;
      XrdCl::XRootDStatus st = file_->Read(offset, want, out, got);
      if (!st.IsOK()) {
        return absl::UnavailableError(absl::StrCat(url_, ": read at offset ", offset, " failed: ", st.ToString()));
      }
      if (got == 0) return absl::DataLossError(absl::StrCat(url_, ": unexpected end of file at ", offset));
      offset += got;
      out += got;
      length -= got;
    }
    return absl::OkStatus();
  }

  absl::Status ReadV(absl::Span<const Range> ranges) override {
    XrdCl::ChunkList chunks;
    auto flush = [&]() -> absl::Status {
      if (chunks.empty()) return absl::OkStatus();
      XrdCl::VectorReadInfo* info = nullptr;
      XrdCl::XRootDStatus st = file_->VectorRead(chunks, nullptr, info);
      delete info;
      chunks.clear();
      if (!st.IsOK()) return absl::UnavailableError(absl::StrCat(url_, ": vector read failed: ", st.ToString()));
      return absl::OkStatus();
    };
    for (const Range& r : ranges) {
      if (r.offset > size_ || r.length > size_ - r.offset) {
        return absl::OutOfRangeError(absl::StrCat(url_, ": read of ", r.length, " bytes at offset ", r.offset,
                                                  " is past the end of the file (", size_, " bytes)"));
      }
      if (r.length > kMaxChunkBytes) {
        absl::Status s = ReadAt(r.offset, r.length, r.out);
        if (!s.ok()) return s;
        continue;
      }
      if (r.length == 0) continue;
      chunks.emplace_back(r.offset, static_cast<uint32_t>(r.length), r.out);
      if (chunks.size() == kMaxChunks) {
        absl::Status s = flush();
        if (!s.ok()) return s;
      }
    }
    return flush();
  }

 private:
  std::unique_ptr<XrdCl::File> file_;
  uint64_t size_;
  std::string url_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RandomAccessFile>> OpenXRootDFile(const std::string& url) {
  auto file = std::make_unique<XrdCl::File>();
  XrdCl::XRootDStatus st = file->Open(url, XrdCl::OpenFlags::Read);
  if (!st.IsOK()) {
    return absl::UnavailableError(absl::StrCat(url, ": cannot open: ", st.ToString()));
  }
  XrdCl::StatInfo* info = nullptr;
  st = file->Stat(false, info);
  std::unique_ptr<XrdCl::StatInfo> owned(info);
  if (!st.IsOK() || !info) {
    return absl::UnavailableError(absl::StrCat(url, ": cannot stat: ", st.ToString()));
  }
  return std::unique_ptr<RandomAccessFile>(new XRootDFile(std::move(file), info->GetSize(), url));
}

}  // namespace hepml::data
