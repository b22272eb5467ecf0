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

// The gear hash at position j is sum(gear[data[k]] << (j - k)) over the
// bytes k since the chunk's hashing began (`origin`), modulo 2^64: a byte
// 64 or more positions back has been shifted out. So the hash at any
// position can be computed from the 64 bytes before it, and a range can be
// scanned as kLanes independent slices at once (their dependency chains
// overlap in the CPU), each slice first warmed up on the 64 bytes before
// it. The result is exactly the sequential scan's: the first position in
// [from, to) whose hash has no bit of `mask` set (to when there is none).
size_t Chunker::Scan(const uint8_t* data, size_t origin, size_t from, size_t to, uint64_t mask) const {
  constexpr int kLanes = 4;
  constexpr size_t kSlice = 4096;  // bytes per lane per block
  const uint64_t* gear = gear_.data();
  auto warm = [&](size_t start) {
    uint64_t fp = 0;
    for (size_t k = start >= origin + 64 ? start - 64 : origin; k < start; ++k) fp = (fp << 1) + gear[data[k]];
    return fp;
  };
  size_t pos = from;
  while (to - pos >= kLanes * kSlice) {
    uint64_t fp[kLanes];
    size_t hit[kLanes];
    const uint8_t* p[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      fp[l] = warm(pos + l * kSlice);
      hit[l] = kSlice;
      p[l] = data + pos + l * kSlice;
    }
    for (size_t i = 0; i < kSlice; ++i) {
#pragma GCC unroll 4
      for (int l = 0; l < kLanes; ++l) {
        fp[l] = (fp[l] << 1) + gear[p[l][i]];
        if (__builtin_expect((fp[l] & mask) == 0, 0) && hit[l] == kSlice) hit[l] = i;
      }
    }
    for (int l = 0; l < kLanes; ++l) {
      if (hit[l] < kSlice) return pos + l * kSlice + hit[l];
    }
    pos += kLanes * kSlice;
  }
  uint64_t fp = warm(pos);
  for (; pos < to; ++pos) {
    fp = (fp << 1) + gear[data[pos]];
    if ((fp & mask) == 0) return pos;
  }
  return to;
}

size_t Chunker::Cut(const uint8_t* data, size_t n) const {
  if (n <= min_) return n;
  if (n > max_) n = max_;
  size_t normal = std::min<size_t>(avg_, n);
  size_t i = Scan(data, min_, min_, normal, mask_s_);
  if (i < normal) return i + 1;
  i = Scan(data, min_, normal, n, mask_l_);
  return i < n ? i + 1 : n;
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
