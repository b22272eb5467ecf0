// Low-level pieces of the ROOT file format: a bounds-checked big-endian
// cursor over ROOT's streamed objects and the decompression of ROOT's
// compressed blocks. Written from ROOT's documented on-disk layout (TFile,
// TKey, TDirectory, TBuffer's byte counts and class tags) and cross-checked
// against JSROOT and uproot reading the same files.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hepml::data::root {

// A read cursor that never reads out of bounds: a read past the end (or any
// read after a failure) returns zero and records the first failure, which
// the caller turns into a Status once per object.
class Cursor {
 public:
  // `origin` is the offset of data[0] in ROOT's numbering of the buffer
  // (the key length for an object read from a key): class and object
  // references are offsets in that numbering.
  Cursor(const char* data, size_t size, int64_t origin = 0)
      : data_(data), size_(size), origin_(origin) {}

  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return ok_ ? size_ - pos_ : 0; }
  int64_t origin() const { return origin_; }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const char* data() const { return data_; }

  void Fail(const std::string& what) {
    if (ok_) {
      ok_ = false;
      error_ = absl::StrCat(what, " (at byte ", pos_, " of ", size_, ")");
    }
  }
  bool Need(size_t n) {
    if (!ok_) return false;
    if (n > size_ - pos_) {
      Fail(absl::StrCat("truncated: needs ", n, " more bytes"));
      return false;
    }
    return true;
  }
  void Skip(size_t n) {
    if (Need(n)) pos_ += n;
  }
  void Seek(size_t p) {
    if (!ok_) return;
    if (p > size_) {
      Fail(absl::StrCat("offset ", p, " is out of bounds"));
      return;
    }
    pos_ = p;
  }

  uint8_t U8() { return Need(1) ? static_cast<uint8_t>(data_[pos_++]) : 0; }
  uint16_t U16() { return static_cast<uint16_t>(Big(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Big(4)); }
  uint64_t U64() { return Big(8); }
  int16_t I16() { return static_cast<int16_t>(U16()); }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  double F64() {
    uint64_t b = U64();
    double d;
    std::memcpy(&d, &b, 8);
    return d;
  }
  // A TString: one length byte, or 255 and a four-byte length.
  std::string String() {
    uint32_t n = U8();
    if (n == 255) n = U32();
    if (!Need(n)) return {};
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  // A NUL-terminated class name (at most 1024 bytes).
  std::string CString() {
    if (!ok_) return {};
    size_t end = pos_;
    while (end < size_ && end - pos_ < 1024 && data_[end] != '\0') ++end;
    if (end >= size_ || data_[end] != '\0') {
      Fail("unterminated class name");
      return {};
    }
    std::string s(data_ + pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

 private:
  uint64_t Big(int n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += n;
    return v;
  }

  const char* data_;
  size_t size_;
  int64_t origin_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

// A streamed object's header: its byte count (when written) and version.
struct ObjectHeader {
  size_t end = 0;  // one past the object's last byte; 0 if no byte count
  int version = 0;
};

ObjectHeader ReadHeader(Cursor& c);
// Moves to the end of an object read with ReadHeader (when its byte count
// is known), failing if the object's members overran it.
void EndObject(Cursor& c, const ObjectHeader& h, const char* what);

// One entry of a std::vector<number> branch (split level 0 member-wise
// streaming, as TBranchElement writes it): a byte count with the 0x40000000
// flag, a version, an int32 length, then the items big-endian. Returns the
// number of items and sets *items to the offset of the first one; an error
// text if the length is negative or runs past `size` or the byte count.
bool VectorEntry(const char* data, size_t size, int item_size, int32_t* count, size_t* items,
                 std::string* error);

// TObject's members (version, unique id, bits and the optional pid).
void ReadTObject(Cursor& c);
// TNamed: returns the name and title.
void ReadTNamed(Cursor& c, std::string* name, std::string* title);
// Skips an object with a byte count (TAttLine, TIOFeatures, ...).
void SkipObject(Cursor& c, const char* what);

// Class tags seen so far in one buffer (ROOT writes a class's name once and
// refers to it by offset afterwards).
using ClassRefs = std::map<uint64_t, std::string>;

// Reads a pointer-to-object member (ROOT's ReadObjectAny): null, a
// reference to an earlier object, or an inline object of a new or known
// class. For an inline object calls body(class_name) with the cursor at the
// object's own header; afterwards moves to the object's end. Returns the
// class name for an inline object, "" for null or a reference.
std::string ReadObjectAny(Cursor& c, ClassRefs& refs,
                          const std::function<void(const std::string&)>& body);

// Decompresses ROOT's compressed blocks (ZL zlib, XZ lzma, L4 lz4 with its
// xxhash64 checksum, ZS zstd) from `src` into exactly `dst_len` bytes.
// Errors name `what`, the block and the reason; the output never grows past
// dst_len whatever the headers claim.
absl::Status Decompress(const char* src, size_t src_len, char* dst, size_t dst_len,
                        const std::string& what);

// "zlib", "lzma", "lz4", "zstd", "old ROOT" for a block's two-letter tag.
const char* CompressionName(const char tag[2]);

}  // namespace hepml::data::root
