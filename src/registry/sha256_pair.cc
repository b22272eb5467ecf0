#include "registry/sha256_pair.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "registry/chunk_codec.h"

namespace hepml::registry {
namespace {

alignas(16) constexpr uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

constexpr uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// `count` 64-byte blocks of each of N streams: stream k's state is
// states[k] (the eight words a..h), its blocks start at data[k]. The N
// streams' rounds are interleaved, so the round instructions of one stream
// run while the other's wait for their results.
template <int N>
__attribute__((target("sha,sse4.1,ssse3"))) void CompressBlocks(uint32_t* const* states,
                                                               const uint8_t* const* data, size_t count) {
  const __m128i kByteSwap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i abef[N], cdgh[N];
  const uint8_t* p[N];
  for (int k = 0; k < N; ++k) {
    __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(states[k]));
    __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(states[k] + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    abef[k] = _mm_alignr_epi8(cdab, efgh, 8);
    cdgh[k] = _mm_blend_epi16(efgh, cdab, 0xF0);
    p[k] = data[k];
  }
  for (size_t b = 0; b < count; ++b) {
    __m128i save_abef[N], save_cdgh[N], w[N][4];
    for (int k = 0; k < N; ++k) {
      save_abef[k] = abef[k];
      save_cdgh[k] = cdgh[k];
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
#pragma GCC unroll 2
      for (int k = 0; k < N; ++k) {
        // w[k][i % 4] holds message words 4i..4i+3; the slots hold the last
        // four groups: W[i-4] at i % 4, W[i-3] at (i+1) % 4, W[i-2] at
        // (i+2) % 4, W[i-1] at (i+3) % 4.
        __m128i wi;
        if (i < 4) {
          wi = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p[k] + 16 * i)), kByteSwap);
        } else {
          __m128i t = _mm_sha256msg1_epu32(w[k][i & 3], w[k][(i + 1) & 3]);
          t = _mm_add_epi32(t, _mm_alignr_epi8(w[k][(i + 3) & 3], w[k][(i + 2) & 3], 4));
          wi = _mm_sha256msg2_epu32(t, w[k][(i + 3) & 3]);
        }
        w[k][i & 3] = wi;
        __m128i msg = _mm_add_epi32(wi, _mm_load_si128(reinterpret_cast<const __m128i*>(kK + 4 * i)));
        cdgh[k] = _mm_sha256rnds2_epu32(cdgh[k], abef[k], msg);
        abef[k] = _mm_sha256rnds2_epu32(abef[k], cdgh[k], _mm_shuffle_epi32(msg, 0x0E));
      }
    }
    for (int k = 0; k < N; ++k) {
      abef[k] = _mm_add_epi32(abef[k], save_abef[k]);
      cdgh[k] = _mm_add_epi32(cdgh[k], save_cdgh[k]);
      p[k] += 64;
    }
  }
  for (int k = 0; k < N; ++k) {
    __m128i feba = _mm_shuffle_epi32(abef[k], 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh[k], 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(states[k]), _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(states[k] + 4), _mm_alignr_epi8(dchg, feba, 8));
  }
}

void CompressOne(uint32_t* state, const uint8_t* data, size_t count) {
  uint32_t* s[1] = {state};
  const uint8_t* d[1] = {data};
  CompressBlocks<1>(s, d, count);
}

}  // namespace

struct Sha256Pair::Evp {
  std::unique_ptr<Sha256> file = std::make_unique<Sha256>();
  std::unique_ptr<Sha256> chunk = std::make_unique<Sha256>();
};

bool Sha256Pair::CpuHasShaNi() {
  static const bool has = [] {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool sse41 = (c & bit_SSE4_1) != 0, ssse3 = (c & bit_SSSE3) != 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return sse41 && ssse3 && (b & bit_SHA) != 0;
  }();
  return has;
}

Sha256Pair::Sha256Pair(bool use_sha_ni) {
  if (!(use_sha_ni && CpuHasShaNi())) impl_ = std::make_unique<Evp>();
  file_.Reset();
  chunk_.Reset();
}

Sha256Pair::~Sha256Pair() = default;

void Sha256Pair::Stream::Reset() {
  std::memcpy(state, kInit, sizeof(state));
  buffered = 0;
  length = 0;
}

// Fills a partial block first; REQUIRES afterwards either buffered == 0 or
// n == 0.
static void TopUp(uint32_t* state, uint8_t* block, size_t& buffered, const uint8_t*& p, size_t& n) {
  if (buffered == 0) return;
  size_t k = std::min(64 - buffered, n);
  std::memcpy(block + buffered, p, k);
  buffered += k;
  p += k;
  n -= k;
  if (buffered == 64) {
    CompressOne(state, block, 1);
    buffered = 0;
  }
}

void Sha256Pair::Update(Stream& s, const uint8_t* p, size_t n) {
  s.length += n;
  TopUp(s.state, s.block, s.buffered, p, n);
  if (n >= 64) {
    CompressOne(s.state, p, n / 64);
    p += n & ~size_t{63};
    n &= 63;
  }
  if (n > 0) {
    std::memcpy(s.block, p, n);  // buffered == 0 here
    s.buffered = n;
  }
}

void Sha256Pair::UpdateBoth(std::string_view data) {
  if (impl_) {
    impl_->file->Update(data);
    impl_->chunk->Update(data);
    return;
  }
  const uint8_t* pf = reinterpret_cast<const uint8_t*>(data.data());
  const uint8_t* pc = pf;
  size_t nf = data.size(), nc = data.size();
  file_.length += nf;
  chunk_.length += nc;
  TopUp(file_.state, file_.block, file_.buffered, pf, nf);
  TopUp(chunk_.state, chunk_.block, chunk_.buffered, pc, nc);
  // Whole blocks in both streams: interleaved.
  size_t both = std::min(nf / 64, nc / 64);
  if (both > 0) {
    uint32_t* states[2] = {file_.state, chunk_.state};
    const uint8_t* blocks[2] = {pf, pc};
    CompressBlocks<2>(states, blocks, both);
    pf += 64 * both;
    nf -= 64 * both;
    pc += 64 * both;
    nc -= 64 * both;
  }
  // What is left (at most one whole block of one stream, and the tails).
  file_.length -= nf;
  chunk_.length -= nc;
  Update(file_, pf, nf);
  Update(chunk_, pc, nc);
}

void Sha256Pair::UpdateFile(std::string_view data) {
  if (impl_) {
    impl_->file->Update(data);
    return;
  }
  Update(file_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

std::string Sha256Pair::Finish(Stream& s) {
  uint8_t tail[128] = {};
  std::memcpy(tail, s.block, s.buffered);
  tail[s.buffered] = 0x80;
  size_t blocks = s.buffered + 1 + 8 <= 64 ? 1 : 2;
  uint64_t bits = s.length * 8;
  for (int i = 0; i < 8; ++i) tail[64 * blocks - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  CompressOne(s.state, tail, blocks);
  static const char* kHex = "0123456789abcdef";
  std::string out(64, '0');
  for (int i = 0; i < 8; ++i) {
    for (int j = 0; j < 8; ++j) out[8 * i + j] = kHex[(s.state[i] >> (28 - 4 * j)) & 15];
  }
  s.Reset();
  return out;
}

std::string Sha256Pair::FinishChunk() {
  if (impl_) {
    std::string d = impl_->chunk->HexDigest();
    impl_->chunk = std::make_unique<Sha256>();
    return d;
  }
  return Finish(chunk_);
}

std::string Sha256Pair::FinishFile() {
  if (impl_) return impl_->file->HexDigest();
  return Finish(file_);
}

}  // namespace hepml::registry
