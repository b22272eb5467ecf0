// RNTuple (format version 1, epoch 1) reader, written from ROOT's RNTuple
// binary format specification: the anchor in a TKey, the header and footer
// envelopes (fields, columns, alias columns, cluster groups), the page list
// envelopes and the pages themselves (plain, split, zigzag and delta
// encodings; ROOT's compressed blocks). Envelope checksums (xxhash3) are
// verified, and so are page checksums when present.
//
// Columns exposed: leaf fields of a number type (top level or inside
// records, named "record.member"), std::string, std::array<number, N> (fixed
// shape), collections (std::vector, RVec, untyped) of numbers or of records
// of numbers (jagged), projected fields and cardinality fields. Others are
// listed in the schema and report their type when read.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "data/rntuple.h"
#include "data/root_io.h"

namespace hepml::data {
namespace {

// A bounds-checked little-endian cursor (RNTuple's metadata byte order).
class Le {
 public:
  Le(const char* data, size_t size) : data_(data), size_(size) {}
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t size() const { return size_; }
  const std::string& error() const { return error_; }
  void Fail(const std::string& what) {
    if (ok_) {
      ok_ = false;
      error_ = absl::StrCat(what, " (at byte ", pos_, " of ", size_, ")");
    }
  }
  bool Need(size_t n) {
    if (!ok_) return false;
    if (n > size_ - pos_) {
      Fail("truncated");
      return false;
    }
    return true;
  }
  void Seek(size_t p) {
    if (!ok_) return;
    if (p > size_) return Fail("frame runs past its envelope");
    pos_ = p;
  }
  uint64_t Uint(int n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += n;
    return v;
  }
  uint16_t U16() { return static_cast<uint16_t>(Uint(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Uint(4)); }
  int32_t I32() { return static_cast<int32_t>(U32()); }
  uint64_t U64() { return Uint(8); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  std::string String() {
    uint32_t n = U32();
    if (!Need(n)) return {};
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
  std::string error_;
};

struct Field {
  uint32_t parent = 0;
  uint16_t role = 0;  // 0 leaf, 1 collection, 2 record, 3 variant, 4 streamer
  uint16_t flags = 0;
  std::string name, type;
  uint64_t array_size = 0;
};

struct ColumnDesc {
  uint16_t type = 0;
  uint16_t bits = 0;
  uint32_t field = 0;
  uint16_t repr = 0;
  bool deferred = false;
};

struct Page {
  uint32_t elements = 0;
  bool checksum = false;
  uint32_t size = 0;
  uint64_t offset = 0;
};

struct ColumnPages {
  std::vector<Page> pages;
  bool suppressed = false;
  uint32_t compression = 0;
};

struct Cluster {
  uint64_t first_entry = 0, entries = 0;
  std::vector<ColumnPages> columns;  // by physical column id
};

constexpr uint16_t kFlagRepetitive = 0x01, kFlagProjected = 0x02, kFlagTypeChecksum = 0x04;

// Reads a frame's size: > 0 record frame, < 0 list frame (then its count).
struct Frame {
  size_t end = 0;
  uint32_t count = 0;
  bool list = false;
};

Frame ReadFrame(Le& r) {
  Frame f;
  size_t start = r.pos();
  int64_t size = r.I64();
  if (!r.ok()) return f;
  f.list = size < 0;
  uint64_t magnitude = size < 0 ? static_cast<uint64_t>(-(size + 1)) + 1 : static_cast<uint64_t>(size);
  if (magnitude < 8 || magnitude > r.size() - start) {
    r.Fail("bad frame size");
    return f;
  }
  f.end = start + magnitude;
  if (f.list) {
    f.count = r.U32();
    // Every item is at least an 8-byte frame size.
    if (f.count > (f.end - r.pos()) / 8 + 1) r.Fail("bad list frame count");
  }
  return f;
}

// The envelope's preamble and checksum; positions r after the preamble.
absl::Status OpenEnvelope(Le& r, const char* data, size_t size, uint16_t want_type,
                          const std::string& what, uint64_t* checksum) {
  uint64_t type_and_length = r.U64();
  uint16_t type = type_and_length & 0xFFFF;
  uint64_t length = type_and_length >> 16;
  if (!r.ok() || type != want_type || length < 16 || length > size) {
    return absl::DataLossError(absl::StrCat(what, ": bad envelope (type ", type, ", length ", length, ")"));
  }
  uint64_t stored = 0;
  for (int i = 7; i >= 0; --i) stored = (stored << 8) | static_cast<uint8_t>(data[length - 8 + i]);
  uint64_t computed = XXH3_64bits(data, length - 8);
  if (stored != computed) return absl::DataLossError(absl::StrCat(what, ": envelope checksum mismatch"));
  if (checksum) *checksum = stored;
  return absl::OkStatus();
}

void ReadFeatureFlags(Le& r) {
  for (int i = 0; i < 64 && r.ok(); ++i) {
    uint64_t v = r.U64();
    if (v & 0x7FFFFFFFFFFFFFFFull) r.Fail("unknown feature flags are set");
    if (!(v >> 63)) break;
  }
}

struct Schema1 {
  std::vector<Field> fields;
  std::vector<ColumnDesc> columns;
  std::vector<std::pair<uint32_t, uint32_t>> aliases;  // physical column, field
};

void ReadSchemaDescription(Le& r, Schema1* s) {
  Frame fl = ReadFrame(r);
  if (!fl.list) return r.Fail("field list is not a list frame");
  for (uint32_t i = 0; i < fl.count && r.ok(); ++i) {
    Frame rec = ReadFrame(r);
    Field f;
    r.U32();  // field version
    r.U32();  // type version
    f.parent = r.U32();
    f.role = r.U16();
    f.flags = r.U16();
    f.name = r.String();
    f.type = r.String();
    r.String();  // type alias
    r.String();  // description
    if (f.flags & kFlagRepetitive) f.array_size = r.U64();
    if (f.flags & kFlagProjected) r.U32();
    if (f.flags & kFlagTypeChecksum) r.U32();
    s->fields.push_back(f);
    r.Seek(rec.end);
  }
  r.Seek(fl.end);
  Frame cl = ReadFrame(r);
  if (!cl.list) return r.Fail("column list is not a list frame");
  for (uint32_t i = 0; i < cl.count && r.ok(); ++i) {
    Frame rec = ReadFrame(r);
    ColumnDesc c;
    c.type = r.U16();
    c.bits = r.U16();
    c.field = r.U32();
    uint16_t flags = r.U16();
    c.repr = r.U16();
    c.deferred = flags & 0x01;
    s->columns.push_back(c);
    r.Seek(rec.end);
  }
  r.Seek(cl.end);
  Frame al = ReadFrame(r);
  if (!al.list) return r.Fail("alias column list is not a list frame");
  for (uint32_t i = 0; i < al.count && r.ok(); ++i) {
    Frame rec = ReadFrame(r);
    uint32_t physical = r.U32();
    uint32_t field = r.U32();
    s->aliases.emplace_back(physical, field);
    r.Seek(rec.end);
  }
  r.Seek(al.end);
  Frame ex = ReadFrame(r);
  r.Seek(ex.end);
}

bool ReadLocator(Le& r, uint32_t* size, uint64_t* offset) {
  int32_t s = r.I32();
  if (s < 0) {
    r.Fail("non-standard locator");
    return false;
  }
  *size = static_cast<uint32_t>(s);
  *offset = r.U64();
  return r.ok();
}

// Column types of the specification.
enum : uint16_t {
  kBit = 0x00, kByte = 0x01, kChar = 0x02, kInt8 = 0x03, kUInt8 = 0x04, kInt16 = 0x05,
  kUInt16 = 0x06, kInt32 = 0x07, kUInt32 = 0x08, kInt64 = 0x09, kUInt64 = 0x0A, kReal16 = 0x0B,
  kReal32 = 0x0C, kReal64 = 0x0D, kIndex32 = 0x0E, kIndex64 = 0x0F, kSwitch = 0x10,
  kSplitInt16 = 0x11, kSplitUInt16 = 0x12, kSplitInt32 = 0x13, kSplitUInt32 = 0x14,
  kSplitInt64 = 0x15, kSplitUInt64 = 0x16, kSplitReal16 = 0x17, kSplitReal32 = 0x18,
  kSplitReal64 = 0x19, kSplitIndex32 = 0x1A, kSplitIndex64 = 0x1B,
};

// In-memory type and element size of a column type; false if unsupported.
bool ColumnType(uint16_t t, DType* dtype, int* bits) {
  switch (t) {
    case kBit: *dtype = DType::kBool; *bits = 1; return true;
    case kByte: case kUInt8: *dtype = DType::kUInt8; *bits = 8; return true;
    case kChar: case kInt8: *dtype = DType::kInt8; *bits = 8; return true;
    case kInt16: case kSplitInt16: *dtype = DType::kInt16; *bits = 16; return true;
    case kUInt16: case kSplitUInt16: *dtype = DType::kUInt16; *bits = 16; return true;
    case kInt32: case kSplitInt32: *dtype = DType::kInt32; *bits = 32; return true;
    case kUInt32: case kSplitUInt32: *dtype = DType::kUInt32; *bits = 32; return true;
    case kInt64: case kSplitInt64: *dtype = DType::kInt64; *bits = 64; return true;
    case kUInt64: case kSplitUInt64: *dtype = DType::kUInt64; *bits = 64; return true;
    case kReal16: case kSplitReal16: *dtype = DType::kFloat16; *bits = 16; return true;
    case kReal32: case kSplitReal32: *dtype = DType::kFloat32; *bits = 32; return true;
    case kReal64: case kSplitReal64: *dtype = DType::kFloat64; *bits = 64; return true;
    case kIndex32: case kSplitIndex32: *dtype = DType::kInt64; *bits = 32; return true;
    case kIndex64: case kSplitIndex64: *dtype = DType::kInt64; *bits = 64; return true;
    default: return false;
  }
}

bool IsIndex(uint16_t t) { return t == kIndex32 || t == kIndex64 || t == kSplitIndex32 || t == kSplitIndex64; }

// The DType of a field's C++ type name, for leaf fields.
bool FieldDType(const std::string& type, DType* dtype) {
  static const std::map<std::string, DType> kTypes = {
      {"bool", DType::kBool}, {"char", DType::kInt8}, {"std::byte", DType::kUInt8},
      {"std::int8_t", DType::kInt8}, {"std::uint8_t", DType::kUInt8},
      {"std::int16_t", DType::kInt16}, {"std::uint16_t", DType::kUInt16},
      {"std::int32_t", DType::kInt32}, {"std::uint32_t", DType::kUInt32},
      {"std::int64_t", DType::kInt64}, {"std::uint64_t", DType::kUInt64},
      {"float", DType::kFloat32}, {"double", DType::kFloat64},
  };
  auto it = kTypes.find(type);
  if (it == kTypes.end()) return false;
  *dtype = it->second;
  return true;
}

enum class Kind { kScalar, kFixed, kString, kJagged, kCardinality };

struct Plan {
  Kind kind = Kind::kScalar;
  int value = -1;  // physical column of the values
  int index = -1;  // physical column of the collection/string offsets
  DType dtype = DType::kUndefined;
  int64_t per_entry = 1;
  std::string unsupported;
};

class RNTupleSource final : public Source {
 public:
  RNTupleSource(RandomAccessFile* file, const DatasetOptions& options, std::string name)
      : file_(file), options_(options), name_(std::move(name)) {}

  absl::Status Open(const std::string& anchor);
  const Schema& schema() const override { return schema_; }
  int64_t num_entries() const override { return entries_; }
  FileInfo Info() const override { return info_; }
  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override;

 private:
  std::string Where(const std::string& what) const { return absl::StrCat(file_->name(), ": RNTuple '", name_, "': ", what); }
  absl::StatusOr<std::string> ReadBlob(uint64_t offset, uint64_t nbytes, uint64_t length, const std::string& what);
  std::vector<int> ColumnsOf(uint32_t field) const;
  void AddField(uint32_t id, const std::string& path, int collection_index, int depth);
  void AddPlan(const std::string& name, const std::string& type, Plan p, bool jagged, Shape shape);
  // Decodes physical column `col` over cluster `cl` (cached).
  absl::StatusOr<const Tensor*> Decode(int col, int cl);

  RandomAccessFile* file_;
  DatasetOptions options_;
  std::string name_;
  Schema1 meta_;
  std::vector<Cluster> clusters_;
  int64_t entries_ = 0;
  Schema schema_;
  std::vector<Plan> plans_;
  FileInfo info_;
  std::map<int, std::pair<int, Tensor>> cache_;  // physical column -> (cluster, values)
};

absl::StatusOr<std::string> RNTupleSource::ReadBlob(uint64_t offset, uint64_t nbytes, uint64_t length,
                                                    const std::string& what) {
  if (offset > file_->size() || nbytes > file_->size() - offset) {
    return absl::DataLossError(Where(absl::StrCat(what, " at ", offset, " (", nbytes, " bytes) lies outside the file")));
  }
  // Compared unsigned: a length of 2^63 or more is not a negative size.
  const uint64_t limit = static_cast<uint64_t>(std::max<int64_t>(options_.max_object_bytes, 0));
  if (length > limit) {
    return absl::ResourceExhaustedError(
        Where(absl::StrCat(what, " declares ", length, " bytes, over the limit of ", limit)));
  }
  if (length < nbytes) {
    return absl::DataLossError(
        Where(absl::StrCat(what, " declares ", length, " bytes, fewer than its ", nbytes, " stored bytes")));
  }
  std::string raw(nbytes, '\0');
  absl::Status s = file_->ReadAt(offset, nbytes, raw.data());
  if (!s.ok()) return s;
  if (nbytes == length) return raw;
  std::string out(length, '\0');
  s = root::Decompress(raw.data(), raw.size(), out.data(), out.size(), Where(what));
  if (!s.ok()) return s;
  return out;
}

std::vector<int> RNTupleSource::ColumnsOf(uint32_t field) const {
  std::vector<int> out;
  for (size_t i = 0; i < meta_.columns.size(); ++i) {
    if (meta_.columns[i].field == field && meta_.columns[i].repr == 0) out.push_back(static_cast<int>(i));
  }
  for (const auto& [physical, f] : meta_.aliases) {
    if (f == field && physical < meta_.columns.size()) out.push_back(static_cast<int>(physical));
  }
  return out;
}

void RNTupleSource::AddPlan(const std::string& name, const std::string& type, Plan p, bool jagged, Shape shape) {
  Column c;
  c.name = name;
  c.dtype = p.dtype;
  c.jagged = jagged;
  c.shape = std::move(shape);
  c.source_type = type;
  schema_.columns.push_back(c);
  plans_.push_back(std::move(p));
}

// Adds the columns of field `id` at `path`; collection_index >= 0 when the
// field sits inside a collection (its values are then jagged by that index).
void RNTupleSource::AddField(uint32_t id, const std::string& path, int collection_index, int depth) {
  const Field& f = meta_.fields[id];
  std::vector<uint32_t> children;
  for (size_t i = 0; i < meta_.fields.size(); ++i) {
    if (meta_.fields[i].parent == id && i != id) children.push_back(static_cast<uint32_t>(i));
  }
  std::vector<int> cols = ColumnsOf(id);
  Plan p;
  DType dtype;
  auto unsupported = [&](const std::string& why) {
    Plan u;
    u.unsupported = absl::StrCat("field '", path, "' of type '", f.type, "': ", why);
    AddPlan(path, f.type, u, false, {});
  };
  if (depth > 8) return unsupported("nested too deeply");
  if (absl::StartsWith(f.type, "ROOT::RNTupleCardinality<") && cols.size() == 1 && collection_index < 0) {
    p.kind = Kind::kCardinality;
    p.index = cols[0];
    p.dtype = absl::StrContains(f.type, "64") ? DType::kUInt64 : DType::kUInt32;
    return AddPlan(path, f.type, p, false, {});
  }
  if (f.role == 0 && FieldDType(f.type, &dtype) && cols.size() == 1) {
    DType cdt;
    int bits;
    if (!ColumnType(meta_.columns[cols[0]].type, &cdt, &bits) || cdt != dtype) {
      return unsupported(absl::StrCat("column type ", meta_.columns[cols[0]].type, " is not supported"));
    }
    p.value = cols[0];
    p.dtype = dtype;
    if (collection_index >= 0) {
      p.kind = Kind::kJagged;
      p.index = collection_index;
      return AddPlan(path, f.type, p, true, {});
    }
    p.kind = Kind::kScalar;
    return AddPlan(path, f.type, p, false, {});
  }
  if (f.type == "std::string" && cols.size() == 2 && collection_index < 0) {
    p.kind = Kind::kString;
    p.index = cols[0];
    p.value = cols[1];
    p.dtype = DType::kString;
    return AddPlan(path, f.type, p, false, {});
  }
  if ((f.flags & kFlagRepetitive) && f.array_size > 0 && f.array_size < (1u << 24) && children.size() == 1 &&
      collection_index < 0) {
    const Field& c = meta_.fields[children[0]];
    std::vector<int> ccols = ColumnsOf(children[0]);
    DType cdt;
    int bits;
    if (c.role == 0 && FieldDType(c.type, &dtype) && ccols.size() == 1 &&
        ColumnType(meta_.columns[ccols[0]].type, &cdt, &bits) && cdt == dtype) {
      p.kind = Kind::kFixed;
      p.value = ccols[0];
      p.dtype = dtype;
      p.per_entry = static_cast<int64_t>(f.array_size);
      return AddPlan(path, f.type, p, false, {p.per_entry});
    }
    return unsupported("arrays of this element type are not supported");
  }
  if (f.role == 1 && cols.size() == 1 && collection_index < 0 && children.size() == 1) {
    const Field& c = meta_.fields[children[0]];
    if (c.role == 0) return AddField(children[0], path, cols[0], depth + 1);
    if (c.role == 2) {
      std::vector<uint32_t> members;
      for (size_t i = 0; i < meta_.fields.size(); ++i) {
        if (meta_.fields[i].parent == children[0] && i != children[0]) members.push_back(static_cast<uint32_t>(i));
      }
      for (uint32_t m : members) AddField(m, path + "." + meta_.fields[m].name, cols[0], depth + 1);
      return;
    }
  }
  if (f.role == 2 && collection_index < 0) {
    for (uint32_t c : children) AddField(c, path + "." + meta_.fields[c].name, -1, depth + 1);
    return;
  }
  unsupported(collection_index >= 0 ? "nested collections are not supported" : "this kind of field is not supported");
}

absl::Status RNTupleSource::Open(const std::string& anchor) {
  root::Cursor a(anchor.data(), anchor.size());
  root::ReadHeader(a);
  uint16_t epoch = a.U16(), major = a.U16(), minor = a.U16(), patch = a.U16();
  uint64_t seek_header = a.U64(), nbytes_header = a.U64(), len_header = a.U64();
  uint64_t seek_footer = a.U64(), nbytes_footer = a.U64(), len_footer = a.U64();
  if (!a.ok()) return absl::DataLossError(Where(absl::StrCat("bad anchor: ", a.error())));
  if (epoch != 1) {
    return absl::UnimplementedError(Where(absl::StrCat("format epoch ", epoch, " is not supported (1 is)")));
  }
  info_.facts.push_back({"rntuple version", absl::StrCat(epoch, ".", major, ".", minor, ".", patch)});

  auto header = ReadBlob(seek_header, nbytes_header, len_header, "header");
  if (!header.ok()) return header.status();
  Le h(header->data(), header->size());
  uint64_t header_checksum = 0;
  absl::Status s = OpenEnvelope(h, header->data(), header->size(), 1, Where("header"), &header_checksum);
  if (!s.ok()) return s;
  ReadFeatureFlags(h);
  h.String();  // name
  h.String();  // description
  std::string writer = h.String();
  ReadSchemaDescription(h, &meta_);
  if (!h.ok()) return absl::DataLossError(Where(absl::StrCat("header: ", h.error())));
  if (!writer.empty()) info_.facts.push_back({"written by", writer});

  auto footer = ReadBlob(seek_footer, nbytes_footer, len_footer, "footer");
  if (!footer.ok()) return footer.status();
  Le f(footer->data(), footer->size());
  s = OpenEnvelope(f, footer->data(), footer->size(), 2, Where("footer"), nullptr);
  if (!s.ok()) return s;
  ReadFeatureFlags(f);
  if (f.U64() != header_checksum) return absl::DataLossError(Where("footer names another header (checksum mismatch)"));
  Frame ext = ReadFrame(f);
  if (f.ok() && !ext.list) ReadSchemaDescription(f, &meta_);
  f.Seek(ext.end);
  Frame groups = ReadFrame(f);
  if (!f.ok() || !groups.list) return absl::DataLossError(Where(absl::StrCat("footer: ", f.ok() ? "no cluster groups" : f.error())));
  for (size_t i = 0; i < meta_.fields.size(); ++i) {
    if (meta_.fields[i].parent >= meta_.fields.size()) return absl::DataLossError(Where("field with a bad parent"));
  }
  for (const ColumnDesc& c : meta_.columns) {
    if (c.field >= meta_.fields.size()) return absl::DataLossError(Where("column of a missing field"));
  }
  for (uint32_t g = 0; g < groups.count && f.ok(); ++g) {
    Frame rec = ReadFrame(f);
    f.U64();  // min entry
    f.U64();  // entry span
    f.U32();  // clusters
    uint64_t list_length = f.U64();
    uint32_t size = 0;
    uint64_t offset = 0;
    if (!ReadLocator(f, &size, &offset)) break;
    f.Seek(rec.end);
    auto pl = ReadBlob(offset, size, list_length, absl::StrCat("page list ", g));
    if (!pl.ok()) return pl.status();
    Le p(pl->data(), pl->size());
    s = OpenEnvelope(p, pl->data(), pl->size(), 3, Where("page list"), nullptr);
    if (!s.ok()) return s;
    if (p.U64() != header_checksum) return absl::DataLossError(Where("page list names another header"));
    Frame sums = ReadFrame(p);
    size_t first_cluster = clusters_.size();
    for (uint32_t i = 0; i < sums.count && p.ok(); ++i) {
      Frame r = ReadFrame(p);
      Cluster c;
      c.first_entry = p.U64();
      uint64_t combined = p.U64();
      if (combined >> 56) return absl::UnimplementedError(Where("sharded clusters are not supported"));
      c.entries = combined & 0x00FFFFFFFFFFFFFFull;
      clusters_.push_back(c);
      p.Seek(r.end);
    }
    p.Seek(sums.end);
    Frame cl = ReadFrame(p);
    if (p.ok() && cl.count != sums.count) return absl::DataLossError(Where("page list: cluster counts differ"));
    for (uint32_t i = 0; i < cl.count && p.ok(); ++i) {
      Frame cols = ReadFrame(p);
      Cluster& c = clusters_[first_cluster + i];
      for (uint32_t k = 0; k < cols.count && p.ok(); ++k) {
        Frame pages = ReadFrame(p);
        ColumnPages cp;
        for (uint32_t n = 0; n < pages.count && p.ok(); ++n) {
          Page pg;
          int32_t elements = p.I32();
          pg.checksum = elements < 0;
          pg.elements = elements < 0 ? static_cast<uint32_t>(-static_cast<int64_t>(elements)) : static_cast<uint32_t>(elements);
          ReadLocator(p, &pg.size, &pg.offset);
          cp.pages.push_back(pg);
        }
        int64_t element_offset = p.I64();
        cp.suppressed = element_offset < 0;
        if (!cp.suppressed) cp.compression = p.U32();
        c.columns.push_back(std::move(cp));
      }
    }
    if (!p.ok()) return absl::DataLossError(Where(absl::StrCat("page list: ", p.error())));
  }
  if (!f.ok()) return absl::DataLossError(Where(absl::StrCat("footer: ", f.error())));
  int64_t next = 0;
  for (const Cluster& c : clusters_) {
    if (static_cast<int64_t>(c.first_entry) != next) return absl::UnimplementedError(Where("clusters are not contiguous"));
    next += static_cast<int64_t>(c.entries);
  }
  entries_ = next;
  for (size_t i = 0; i < meta_.fields.size(); ++i) {
    const Field& fd = meta_.fields[i];
    if (fd.parent == i) AddField(static_cast<uint32_t>(i), fd.name, -1, 0);
  }
  // Stored sizes per column: its pages, over all clusters.
  auto sizes = [&](int col, int64_t* zipped, int64_t* unzipped) {
    if (col < 0) return;
    for (const Cluster& c : clusters_) {
      if (col >= static_cast<int>(c.columns.size())) continue;
      for (const Page& pg : c.columns[col].pages) {
        *zipped += pg.size;
        *unzipped += (static_cast<int64_t>(pg.elements) * meta_.columns[col].bits + 7) / 8;
      }
    }
  };
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (!plans_[i].unsupported.empty()) continue;
    int64_t zipped = 0, unzipped = 0;
    sizes(plans_[i].value, &zipped, &unzipped);
    sizes(plans_[i].index, &zipped, &unzipped);
    schema_.columns[i].compressed_bytes = zipped;
    schema_.columns[i].uncompressed_bytes = unzipped;
  }
  if (!clusters_.empty() && !clusters_[0].columns.empty() && !clusters_[0].columns[0].suppressed) {
    uint32_t setting = clusters_[0].columns[0].compression;
    static const char* kNames[] = {"zlib", "zlib", "lzma", "old ROOT", "lz4", "zstd"};
    info_.facts.push_back({"page compression", setting == 0 ? std::string("none")
                                                   : absl::StrCat(setting / 100 <= 5 ? kNames[setting / 100] : "unknown",
                                                                  " level ", setting % 100)});
  }
  info_.url = file_->name();
  info_.format = Format::kRoot;
  info_.object = name_ + " (RNTuple)";
  info_.num_entries = entries_;
  info_.file_bytes = file_->size();
  info_.facts.push_back({"clusters", absl::StrCat(clusters_.size())});
  return absl::OkStatus();
}

absl::StatusOr<const Tensor*> RNTupleSource::Decode(int col, int cl) {
  auto it = cache_.find(col);
  if (it != cache_.end() && it->second.first == cl) return &it->second.second;
  const ColumnDesc& cd = meta_.columns[col];
  const Cluster& c = clusters_[cl];
  std::string what = absl::StrCat("column ", col, " in cluster ", cl);
  if (col >= static_cast<int>(c.columns.size())) return absl::DataLossError(Where(what + " has no pages"));
  const ColumnPages& cp = c.columns[col];
  DType dtype;
  int bits;
  if (!ColumnType(cd.type, &dtype, &bits)) {
    return absl::UnimplementedError(Where(absl::StrCat(what, ": column type ", cd.type, " is not supported")));
  }
  if (cd.bits != bits) return absl::DataLossError(Where(absl::StrCat(what, ": ", cd.bits, " bits for column type ", cd.type)));
  int64_t total = 0;
  for (const Page& p : cp.pages) total += p.elements;
  int64_t item = static_cast<int64_t>(DTypeSize(dtype));
  if (cp.suppressed) total = 0;
  if (total * item > options_.max_object_bytes) return absl::ResourceExhaustedError(Where(what + " is too large"));
  Tensor out = Tensor::Empty(dtype, {total});
  char* dst = static_cast<char*>(out.raw_mutable_data());
  for (size_t pi = 0; pi < cp.pages.size() && !cp.suppressed; ++pi) {
    const Page& p = cp.pages[pi];
    uint64_t n = p.elements;
    uint64_t packed = (n * bits + 7) / 8;
    // A page's checksum (xxhash3 of its stored bytes) follows it, outside
    // the locator's size.
    uint64_t stored = p.size + (p.checksum ? 8 : 0);
    auto raw = ReadBlob(p.offset, stored, stored, absl::StrCat(what, " page ", pi));
    if (!raw.ok()) return raw.status();
    if (p.checksum) {
      uint64_t want = 0;
      for (int i = 7; i >= 0; --i) want = (want << 8) | static_cast<uint8_t>((*raw)[stored - 8 + i]);
      if (XXH3_64bits(raw->data(), stored - 8) != want) return absl::DataLossError(Where(what + ": page checksum mismatch"));
      raw->resize(stored - 8);
    }
    std::string page;
    if (raw->size() == packed) {
      page = std::move(*raw);
    } else {
      if (packed > static_cast<uint64_t>(options_.max_object_bytes)) return absl::ResourceExhaustedError(Where(what + ": page too large"));
      page.assign(packed, '\0');
      absl::Status s = root::Decompress(raw->data(), raw->size(), page.data(), page.size(), Where(what));
      if (!s.ok()) return s;
    }
    const unsigned char* src = reinterpret_cast<const unsigned char*>(page.data());
    int bytes = bits / 8;
    bool split = cd.type >= kSplitInt16 && cd.type <= kSplitIndex64;
    for (uint64_t i = 0; i < n; ++i) {
      if (bits == 1) {
        reinterpret_cast<bool*>(dst)[i] = (src[i / 8] >> (i % 8)) & 1;
        continue;
      }
      uint64_t v = 0;
      for (int b = bytes - 1; b >= 0; --b) v = (v << 8) | (split ? src[b * n + i] : src[i * bytes + b]);
      if (cd.type == kSplitInt16 || cd.type == kSplitInt32 || cd.type == kSplitInt64) {
        v = (v >> 1) ^ (~(v & 1) + 1);  // zigzag
      }
      if (IsIndex(cd.type)) {
        int64_t x = static_cast<int64_t>(v);
        if (cd.type == kSplitIndex32 || cd.type == kSplitIndex64) {
          // Delta encoded within the page.
          if (i > 0) x += reinterpret_cast<int64_t*>(dst)[i - 1];
        }
        reinterpret_cast<int64_t*>(dst)[i] = x;
        continue;
      }
      std::memcpy(dst + i * item, &v, item);  // little-endian host
    }
    dst += n * item;
  }
  cache_[col] = {cl, out};
  return &cache_[col].second;
}

absl::StatusOr<ColumnData> RNTupleSource::ReadColumn(int column, int64_t start, int64_t stop) {
  const Plan& p = plans_[column];
  if (!p.unsupported.empty()) return absl::UnimplementedError(Where(p.unsupported));
  ColumnData out;
  std::string bytes;
  std::vector<std::string> strings;
  std::vector<int64_t> offsets{0};
  size_t item = p.kind == Kind::kString ? 1 : DTypeSize(p.dtype);
  int64_t first = 0;
  for (size_t cl = 0; cl < clusters_.size() && first < stop; ++cl) {
    int64_t n = static_cast<int64_t>(clusters_[cl].entries);
    int64_t a = std::max(start, first) - first, b = std::min(stop, first + n) - first;
    first += n;
    if (a >= b) continue;
    const Tensor* index = nullptr;
    if (p.index >= 0) {
      auto t = Decode(p.index, static_cast<int>(cl));
      if (!t.ok()) return t.status();
      index = *t;
      if (index->size() < n) return absl::DataLossError(Where(absl::StrCat("offsets of cluster ", cl, " are short")));
    }
    const Tensor* values = nullptr;
    if (p.value >= 0) {
      auto t = Decode(p.value, static_cast<int>(cl));
      if (!t.ok()) return t.status();
      values = *t;
    }
    auto item_range = [&](int64_t e, int64_t* lo, int64_t* hi) -> bool {
      const int64_t* idx = index->data<int64_t>();
      *lo = e == 0 ? 0 : idx[e - 1];
      *hi = idx[e];
      return *lo >= 0 && *lo <= *hi && (!values || *hi <= values->size());
    };
    for (int64_t e = a; e < b; ++e) {
      int64_t lo = 0, hi = 0;
      switch (p.kind) {
        case Kind::kScalar:
        case Kind::kFixed:
          if ((e + 1) * p.per_entry > values->size()) return absl::DataLossError(Where("column shorter than its cluster"));
          bytes.append(static_cast<const char*>(values->raw_data()) + e * p.per_entry * item, p.per_entry * item);
          break;
        case Kind::kJagged:
          if (!item_range(e, &lo, &hi)) return absl::DataLossError(Where(absl::StrCat("bad collection offsets at entry ", first - n + e)));
          bytes.append(static_cast<const char*>(values->raw_data()) + lo * item, (hi - lo) * item);
          offsets.push_back(offsets.back() + hi - lo);
          break;
        case Kind::kString:
          if (!item_range(e, &lo, &hi)) return absl::DataLossError(Where(absl::StrCat("bad string offsets at entry ", first - n + e)));
          strings.emplace_back(static_cast<const char*>(values->raw_data()) + lo, hi - lo);
          break;
        case Kind::kCardinality: {
          const int64_t* idx = index->data<int64_t>();
          int64_t count = idx[e] - (e == 0 ? 0 : idx[e - 1]);
          if (p.dtype == DType::kUInt32) {
            uint32_t v = static_cast<uint32_t>(count);
            bytes.append(reinterpret_cast<const char*>(&v), 4);
          } else {
            uint64_t v = static_cast<uint64_t>(count);
            bytes.append(reinterpret_cast<const char*>(&v), 8);
          }
          break;
        }
      }
    }
  }
  int64_t n = stop - start;
  if (p.kind == Kind::kString) {
    out.values = Tensor::Empty(DType::kString, {n});
    for (int64_t i = 0; i < n; ++i) out.values.mutable_data<std::string>()[i] = std::move(strings[i]);
    return out;
  }
  Shape shape;
  if (p.kind == Kind::kJagged) {
    shape = {offsets.back()};
    out.offsets = std::move(offsets);
  } else {
    shape = {n};
    if (p.kind == Kind::kFixed) shape.push_back(p.per_entry);
  }
  out.values = Tensor::Empty(p.dtype, shape);
  if (!bytes.empty()) std::memcpy(out.values.raw_mutable_data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenRNTuple(RandomAccessFile* file, const std::string& anchor,
                                                    const std::string& name, const DatasetOptions& options) {
  auto source = std::make_unique<RNTupleSource>(file, options, name);
  absl::Status s = source->Open(anchor);
  if (!s.ok()) return s;
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace hepml::data
