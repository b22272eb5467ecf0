#include "registry/chunker.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hepml::registry {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int Log2(uint64_t v) {
  int b = 0;
  while (v > 1) {
    v >>= 1;
    ++b;
  }
  return b;
}

// A mask of `bits` one-bits spread evenly over bits 16..63 of the gear hash.
// The hash is shifted left by one per byte, so bit k depends on the last
// k + 1 bytes: high bits give each cut decision a window of 17 to 64 bytes
// (the paper's "padded" masks serve the same purpose).
uint64_t SpreadMask(int bits) {
  uint64_t mask = 0;
  for (int j = 0; j < bits; ++j) mask |= uint64_t{1} << (63 - (j * 48) / bits);
  return mask;
}

}  // namespace

absl::Status ValidateChunkerOptions(const ChunkerOptions& o) {
  if (o.avg_size == 0 || (o.avg_size & (o.avg_size - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunker: average size ", o.avg_size, " is not a power of two"));
  }
  if (o.min_size < 64 || o.min_size >= o.avg_size || o.avg_size >= o.max_size || o.max_size > (256u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("chunker: sizes must satisfy 64 <= min < avg < max <= 256 MiB (min ",
                                                   o.min_size, ", avg ", o.avg_size, ", max ", o.max_size, ")"));
  }
  if (Log2(o.avg_size) < 8 || Log2(o.avg_size) > 40) {
    return absl::InvalidArgumentError(absl::StrCat("chunker: average size ", o.avg_size, " is out of range"));
  }
  if (!(o.min_compression_saving >= 0.0 && o.min_compression_saving <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("chunker: min_compression_saving ", o.min_compression_saving,
                                                   " is outside [0, 1]"));
  }
  if (o.zstd_level < -7 || o.zstd_level > 22) {
    return absl::InvalidArgumentError(absl::StrCat("chunker: zstd level ", o.zstd_level, " is outside [-7, 22]"));
  }
  return absl::OkStatus();
}

const std::array<uint64_t, 256>& GearTable() {
  static const std::array<uint64_t, 256> table = [] {
    std::array<uint64_t, 256> t{};
    uint64_t state = kGearSeed;
    for (auto& v : t) v = SplitMix64(state);
    return t;
  }();
  return table;
}

Chunker::Chunker(const ChunkerOptions& o)
    : min_(o.min_size), avg_(o.avg_size), max_(o.max_size), gear_(GearTable()) {
  int bits = Log2(o.avg_size);
  mask_s_ = SpreadMask(bits + 2);  // harder to match before the average size
  mask_l_ = SpreadMask(bits - 2);  // easier after it
}

size_t Chunker::Cut(const uint8_t* data, size_t n) const {
  if (n <= min_) return n;
  if (n > max_) n = max_;
  size_t normal = std::min<size_t>(avg_, n);
  uint64_t fp = 0;
  size_t i = min_;
  for (; i < normal; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if ((fp & mask_s_) == 0) return i + 1;
  }
  for (; i < n; ++i) {
    fp = (fp << 1) + gear_[data[i]];
    if ((fp & mask_l_) == 0) return i + 1;
  }
  return n;
}

ChunkStream::ChunkStream(const ChunkerOptions& options, ReadFn read)
    : chunker_(options), max_(options.max_size), read_(std::move(read)) {
  buf_.resize(std::max<size_t>(4 * max_, 8u << 20));
}

absl::StatusOr<std::string_view> ChunkStream::Next() {
  if (end_ - begin_ < max_ && !eof_) {
    // Move the tail to the front and fill the buffer up.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    while (end_ < buf_.size()) {
      absl::StatusOr<size_t> got = read_(buf_.data() + end_, buf_.size() - end_);
      if (!got.ok()) return got.status();
      if (*got == 0) {
        eof_ = true;
        break;
      }
      end_ += *got;
    }
  }
  size_t n = chunker_.Cut(reinterpret_cast<const uint8_t*>(buf_.data() + begin_), end_ - begin_);
  std::string_view chunk(buf_.data() + begin_, n);
  begin_ += n;
  return chunk;
}

}  // namespace hepml::registry
