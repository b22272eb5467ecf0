// The shared body of the data-reader fuzz targets: the input bytes become the
// file behind a `mem://` URL (a RandomAccessFile over the fuzzer's buffer,
// registered once), then the dataset is opened, its schema read and every
// batch read, unpadded and padded. Errors are fine; crashes, hangs, leaks
// and unbounded allocations are findings.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "hepml/data.h"

namespace hepml::fuzz {

class MemFile final : public data::RandomAccessFile {
 public:
  MemFile(std::string_view bytes, std::string name) : bytes_(bytes), name_(std::move(name)) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) override {
    if (offset > bytes_.size() || length > bytes_.size() - offset)
      return absl::OutOfRangeError(absl::StrCat(name_, ": read of ", length, " bytes at offset ", offset,
                                                " is past the end (", bytes_.size(), " bytes)"));
    if (length > 0) std::memcpy(out, bytes_.data() + offset, length);
    return absl::OkStatus();
  }

 private:
  std::string_view bytes_;
  std::string name_;
};

// The bytes the next mem:// open returns (one input at a time).
inline std::string_view& CurrentInput() {
  static std::string_view input;
  return input;
}

inline void RegisterMemScheme() {
  static bool registered = [] {
    data::RegisterFileScheme("mem", [](const std::string& url) -> absl::StatusOr<std::unique_ptr<data::RandomAccessFile>> {
      return std::unique_ptr<data::RandomAccessFile>(new MemFile(CurrentInput(), url));
    });
    return true;
  }();
  (void)registered;
}

// Opens `bytes` as a dataset of `format` and reads everything in it.
inline void FuzzDataset(const uint8_t* data, size_t size, data::Format format, const char* url) {
  RegisterMemScheme();
  CurrentInput() = std::string_view(reinterpret_cast<const char*>(data), size);
  data::DatasetOptions options;
  options.format = format;
  // A small input must not make the reader decompress gigabytes.
  options.max_object_bytes = int64_t{64} << 20;
  auto ds = data::Dataset::Open({url}, options);
  if (!ds.ok()) return;
  const data::Schema& schema = (*ds)->schema();
  for (const auto& c : schema.columns) (void)schema.IndexOf(c.name);
  for (int64_t pad : {int64_t{0}, int64_t{3}}) {
    data::BatchOptions b;
    b.batch_size = 7;
    b.pad_length = pad;
    auto it = (*ds)->Batches(b);
    data::Batch batch;
    while (true) {
      auto more = it.Next(&batch);
      if (!more.ok() || !*more) break;
    }
  }
}

}  // namespace hepml::fuzz
