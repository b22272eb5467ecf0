#include "registry/chunk_codec.h"

#include <openssl/evp.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hepml::registry {
namespace {

constexpr char kMagic[4] = {'H', 'P', 'C', '1'};
constexpr size_t kHeader = 16;
constexpr uint8_t kRaw = 0, kZstd = 1;
constexpr size_t kSample = 64 << 10;
// Larger than any chunk the chunker makes; guards the allocation a corrupt
// header could ask for.
constexpr uint64_t kMaxChunkBytes = uint64_t{1} << 30;

std::string Header(uint8_t codec, uint64_t size) {
  std::string h(kHeader, '\0');
  std::memcpy(h.data(), kMagic, 4);
  h[4] = static_cast<char>(codec);
  for (int i = 0; i < 8; ++i) h[8 + i] = static_cast<char>((size >> (8 * i)) & 0xff);
  return h;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n);
  static const char* kHex = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

bool IsHexId(std::string_view id) {
  if (id.size() != 64) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

ChunkEncoder::ChunkEncoder(int level, double min_saving)
    : level_(level), min_saving_(min_saving), cctx_(ZSTD_createCCtx()) {}
ChunkEncoder::~ChunkEncoder() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

absl::StatusOr<EncodedChunk> ChunkEncoder::Encode(std::string_view raw) {
  auto* cctx = static_cast<ZSTD_CCtx*>(cctx_);
  EncodedChunk out;
  auto raw_object = [&] {
    out.head = Header(kRaw, raw.size());
    out.body = raw;
    out.raw = true;
    return std::move(out);
  };
  if (min_saving_ >= 1.0) return raw_object();
  // A fast look at the first bytes (all of a small chunk): zstd must save
  // min_saving of them at level 1 to be worth running on the chunk.
  size_t sample = std::min(raw.size(), kSample);
  probe_.resize(ZSTD_compressBound(sample));
  size_t n = ZSTD_compressCCtx(cctx, probe_.data(), probe_.size(), raw.data(), sample, 1);
  if (ZSTD_isError(n) || static_cast<double>(n) > static_cast<double>(sample) * (1.0 - min_saving_) ||
      n >= sample) {
    return raw_object();
  }
  if (sample == raw.size() && level_ == 1) {
    // The probe was the whole chunk at the chosen level.
    out.head = Header(kZstd, raw.size());
    out.head.append(probe_.data(), n);
    return out;
  }
  out.head = Header(kZstd, raw.size());
  out.head.resize(kHeader + ZSTD_compressBound(raw.size()));
  n = ZSTD_compressCCtx(cctx, out.head.data() + kHeader, out.head.size() - kHeader, raw.data(), raw.size(), level_);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(n)));
  }
  if (n >= raw.size()) return raw_object();
  out.head.resize(kHeader + n);
  return out;
}

namespace {

absl::StatusOr<DecodedChunk> Decode(const std::string& id, std::string_view stored, uint64_t expected_size,
                                    std::string* reusable) {
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat("chunk ", id, " is corrupt: ", why));
  };
  if (stored.size() < kHeader || std::memcmp(stored.data(), kMagic, 4) != 0) {
    return corrupt(absl::StrCat("no chunk header (", stored.size(), " bytes stored)"));
  }
  uint8_t codec = static_cast<uint8_t>(stored[4]);
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= uint64_t{static_cast<uint8_t>(stored[8 + i])} << (8 * i);
  if (size > kMaxChunkBytes) return corrupt(absl::StrCat("header claims ", size, " bytes"));
  if (expected_size != UINT64_MAX && size != expected_size) {
    return corrupt(absl::StrCat("holds ", size, " bytes, the manifest says ", expected_size));
  }
  std::string_view payload = stored.substr(kHeader);
  DecodedChunk out;
  if (codec == kRaw) {
    if (payload.size() != size) return corrupt(absl::StrCat(payload.size(), " bytes stored, header says ", size));
    if (reusable != nullptr) {
      out.buf = std::move(*reusable);
      reusable->clear();
      out.offset = kHeader;
    } else {
      out.buf.assign(payload);
    }
    out.size = size;
  } else if (codec == kZstd) {
    out.buf.resize(size);
    out.size = size;
    size_t n = ZSTD_decompress(out.buf.data(), out.buf.size(), payload.data(), payload.size());
    if (ZSTD_isError(n)) return corrupt(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
    if (n != size) return corrupt(absl::StrCat("decompressed to ", n, " bytes, header says ", size));
  } else {
    return corrupt(absl::StrCat("unknown codec ", int{codec}));
  }
  std::string actual = Sha256Hex(out.bytes());
  if (actual != id) return corrupt(absl::StrCat("its content hashes to ", actual));
  return out;
}

}  // namespace

absl::StatusOr<std::string> DecodeChunk(const std::string& id, std::string_view stored, uint64_t expected_size) {
  absl::StatusOr<DecodedChunk> d = Decode(id, stored, expected_size, nullptr);
  if (!d.ok()) return d.status();
  return std::move(d->buf);  // offset 0, size == buf.size()
}

absl::StatusOr<DecodedChunk> DecodeChunk(const std::string& id, std::string& stored, size_t stored_size,
                                         uint64_t expected_size) {
  return Decode(id, std::string_view(stored.data(), stored_size), expected_size, &stored);
}

}  // namespace hepml::registry
