#include "data/root_io.h"

#include <lz4.h>
#include <lzma.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>

namespace hepml::data::root {
namespace {

constexpr uint32_t kByteCountMask = 0x40000000;
constexpr uint32_t kNewClassTag = 0xFFFFFFFF;
constexpr uint32_t kClassMask = 0x80000000;
constexpr int64_t kMapOffset = 2;
constexpr uint32_t kIsReferenced = 1u << 4;

}  // namespace

ObjectHeader ReadHeader(Cursor& c) {
  ObjectHeader h;
  size_t start = c.pos();
  uint32_t bcnt = c.U32();
  if (bcnt & kByteCountMask) {
    uint64_t count = bcnt & ~kByteCountMask;
    if (count < 2 || count > c.size() - c.pos() + 0) {
      if (c.ok()) c.Fail(absl::StrCat("object byte count ", count, " overruns the buffer"));
      return h;
    }
    h.end = c.pos() + count;
    h.version = c.U16();
  } else {
    // No byte count: the first two bytes are the version.
    c.Seek(start);
    h.version = c.U16();
  }
  return h;
}

void EndObject(Cursor& c, const ObjectHeader& h, const char* what) {
  if (!c.ok() || h.end == 0) return;
  if (c.pos() > h.end) {
    c.Fail(absl::StrCat(what, " overran its byte count"));
    return;
  }
  c.Seek(h.end);
}

void ReadTObject(Cursor& c) {
  size_t start = c.pos();
  uint16_t version = c.U16();
  if (version & 0x4000) {  // written with a byte count
    c.Seek(start);
    ReadHeader(c);
  }
  c.U32();  // fUniqueID
  uint32_t bits = c.U32();
  if (bits & kIsReferenced) c.Skip(2);
}

void ReadTNamed(Cursor& c, std::string* name, std::string* title) {
  ObjectHeader h = ReadHeader(c);
  ReadTObject(c);
  std::string n = c.String();
  std::string t = c.String();
  if (name) *name = std::move(n);
  if (title) *title = std::move(t);
  EndObject(c, h, "TNamed");
}

void SkipObject(Cursor& c, const char* what) {
  ObjectHeader h = ReadHeader(c);
  if (c.ok() && h.end == 0) {
    c.Fail(absl::StrCat(what, " has no byte count"));
    return;
  }
  EndObject(c, h, what);
}

std::string ReadObjectAny(Cursor& c, ClassRefs& refs,
                          const std::function<void(const std::string&)>& body) {
  size_t beg = c.pos();
  uint32_t bcnt = c.U32();
  uint32_t tag = bcnt;
  size_t start = 0;
  size_t end = 0;
  bool has_count = false;
  if ((bcnt & kByteCountMask) != 0 && bcnt != kNewClassTag) {
    has_count = true;
    start = c.pos();
    uint64_t count = bcnt & ~kByteCountMask;
    if (count > c.size() - start) {
      c.Fail(absl::StrCat("object byte count ", count, " overruns the buffer"));
      return {};
    }
    end = start + count;
    tag = c.U32();
  }
  if (!c.ok()) return {};
  if ((tag & kClassMask) == 0) {
    // Null (0) or a reference to an object read before: nothing inline.
    if (has_count) c.Seek(end);
    return {};
  }
  std::string class_name;
  if (tag == kNewClassTag) {
    class_name = c.CString();
    if (!c.ok()) return {};
    if (has_count) {
      refs[static_cast<uint64_t>(static_cast<int64_t>(start) + c.origin() + kMapOffset)] = class_name;
    } else {
      refs[refs.size() + 1] = class_name;
    }
  } else {
    uint64_t ref = tag & ~kClassMask;
    auto it = refs.find(ref);
    if (it == refs.end()) {
      c.Fail(absl::StrCat("reference to an unknown class tag ", ref));
      return {};
    }
    class_name = it->second;
  }
  (void)beg;
  body(class_name);
  if (has_count && c.ok()) {
    if (c.pos() > end) {
      c.Fail(absl::StrCat(class_name, " object overran its byte count"));
      return {};
    }
    c.Seek(end);
  }
  return class_name;
}

const char* CompressionName(const char tag[2]) {
  if (tag[0] == 'Z' && tag[1] == 'L') return "zlib";
  if (tag[0] == 'X' && tag[1] == 'Z') return "lzma";
  if (tag[0] == 'L' && tag[1] == '4') return "lz4";
  if (tag[0] == 'Z' && tag[1] == 'S') return "zstd";
  if (tag[0] == 'C' && tag[1] == 'S') return "old ROOT";
  return "unknown";
}

namespace {

absl::Status Inflate(const char* src, size_t n, char* dst, size_t m, const std::string& what) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return absl::InternalError("zlib: inflateInit failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(src));
  z.avail_in = static_cast<uInt>(n);
  z.next_out = reinterpret_cast<Bytef*>(dst);
  z.avail_out = static_cast<uInt>(m);
  int rc = inflate(&z, Z_FINISH);
  size_t produced = m - z.avail_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != m) {
    return absl::DataLossError(absl::StrCat(what, ": zlib block is corrupt (",
                                            rc == Z_STREAM_END ? "wrong size" : "inflate error ",
                                            rc == Z_STREAM_END ? "" : absl::StrCat(rc), ")"));
  }
  return absl::OkStatus();
}

absl::Status Unxz(const char* src, size_t n, char* dst, size_t m, const std::string& what) {
  lzma_stream z = LZMA_STREAM_INIT;
  // 256 MiB memory limit for the decoder's dictionary.
  if (lzma_stream_decoder(&z, uint64_t{256} << 20, 0) != LZMA_OK) {
    return absl::InternalError("lzma: decoder init failed");
  }
  z.next_in = reinterpret_cast<const uint8_t*>(src);
  z.avail_in = n;
  z.next_out = reinterpret_cast<uint8_t*>(dst);
  z.avail_out = m;
  lzma_ret rc = lzma_code(&z, LZMA_FINISH);
  size_t produced = m - z.avail_out;
  lzma_end(&z);
  if (rc != LZMA_STREAM_END || produced != m) {
    return absl::DataLossError(absl::StrCat(what, ": lzma block is corrupt (lzma code ",
                                            static_cast<int>(rc), ", ", produced, " of ", m,
                                            " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status Unlz4(const char* src, size_t n, char* dst, size_t m, const std::string& what) {
  if (n < 8) return absl::DataLossError(absl::StrCat(what, ": lz4 block shorter than its checksum"));
  uint64_t want = 0;
  for (int i = 0; i < 8; ++i) want = (want << 8) | static_cast<uint8_t>(src[i]);
  uint64_t got = XXH64(src + 8, n - 8, 0);
  if (want != got) return absl::DataLossError(absl::StrCat(what, ": lz4 block checksum mismatch"));
  if (n - 8 > INT_MAX || m > INT_MAX) return absl::DataLossError(absl::StrCat(what, ": lz4 block too large"));
  int rc = LZ4_decompress_safe(src + 8, dst, static_cast<int>(n - 8), static_cast<int>(m));
  if (rc < 0 || static_cast<size_t>(rc) != m) {
    return absl::DataLossError(absl::StrCat(what, ": lz4 block is corrupt"));
  }
  return absl::OkStatus();
}

absl::Status Unzstd(const char* src, size_t n, char* dst, size_t m, const std::string& what) {
  size_t rc = ZSTD_decompress(dst, m, src, n);
  if (ZSTD_isError(rc)) {
    return absl::DataLossError(absl::StrCat(what, ": zstd block is corrupt (",
                                            ZSTD_getErrorName(rc), ")"));
  }
  if (rc != m) return absl::DataLossError(absl::StrCat(what, ": zstd block has the wrong size"));
  return absl::OkStatus();
}

}  // namespace

absl::Status Decompress(const char* src, size_t src_len, char* dst, size_t dst_len,
                        const std::string& what) {
  size_t in = 0, out = 0;
  int block = 0;
  while (out < dst_len) {
    if (src_len - in < 9) {
      return absl::DataLossError(absl::StrCat(what, ": compressed data ends inside block ", block,
                                              "'s header"));
    }
    const char* h = src + in;
    size_t c_size = static_cast<uint8_t>(h[3]) | (static_cast<uint8_t>(h[4]) << 8) |
                    (static_cast<uint8_t>(h[5]) << 16);
    size_t u_size = static_cast<uint8_t>(h[6]) | (static_cast<uint8_t>(h[7]) << 8) |
                    (static_cast<uint8_t>(h[8]) << 16);
    in += 9;
    if (c_size > src_len - in) {
      return absl::DataLossError(absl::StrCat(what, ": compressed block ", block, " claims ", c_size,
                                              " bytes but only ", src_len - in, " remain"));
    }
    if (u_size == 0 || u_size > dst_len - out) {
      return absl::DataLossError(absl::StrCat(what, ": compressed block ", block, " claims ", u_size,
                                              " uncompressed bytes, more than the ", dst_len - out,
                                              " the object has left"));
    }
    std::string block_what = absl::StrCat(what, " (block ", block, ")");
    absl::Status s;
    if (h[0] == 'Z' && h[1] == 'L') {
      s = Inflate(src + in, c_size, dst + out, u_size, block_what);
    } else if (h[0] == 'X' && h[1] == 'Z') {
      s = Unxz(src + in, c_size, dst + out, u_size, block_what);
    } else if (h[0] == 'L' && h[1] == '4') {
      s = Unlz4(src + in, c_size, dst + out, u_size, block_what);
    } else if (h[0] == 'Z' && h[1] == 'S') {
      s = Unzstd(src + in, c_size, dst + out, u_size, block_what);
    } else if (h[0] == 'C' && h[1] == 'S') {
      return absl::UnimplementedError(
          absl::StrCat(what, ": ROOT's old 'CS' compression algorithm is not supported"));
    } else {
      return absl::DataLossError(absl::StrCat(what, ": unknown compression tag in block ", block));
    }
    if (!s.ok()) return s;
    in += c_size;
    out += u_size;
    ++block;
  }
  return absl::OkStatus();
}

bool VectorEntry(const char* data, size_t size, int item_size, int32_t* count, size_t* items,
                 std::string* error) {
  Cursor c(data, size);
  ObjectHeader h = ReadHeader(c);
  int32_t n = c.I32();
  const size_t limit = h.end > 0 ? std::min(h.end, size) : size;
  if (!c.ok() || n < 0 || c.pos() > limit ||
      static_cast<int64_t>(n) * item_size > static_cast<int64_t>(limit - c.pos())) {
    *error = c.ok() ? absl::StrCat("bad vector length ", n) : std::string(c.error());
    return false;
  }
  *count = n;
  *items = c.pos();
  return true;
}

}  // namespace hepml::data::root
