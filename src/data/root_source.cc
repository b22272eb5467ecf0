// ROOT TTree reader: the file header, directories and keys, the streamed
// TTree/TBranch/TLeaf metadata, and baskets decoded into columns.
//
// Supported branches: one leaf of a numeric type (TLeafO/B/S/I/L/G/F/D),
// scalars or fixed arrays (x[3], x[2][3]) or variable arrays with a counter
// branch (x[n]); strings (TLeafC, TString); TBranchElement leaves of basic
// types and std::vector of a number. Anything else is reported by name and
// type when it is read, never silently skipped.
#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "data/rntuple.h"
#include "data/root_io.h"
#include "data/source.h"

namespace hepml::data {
namespace {

using root::ClassRefs;
using root::Cursor;
using root::ObjectHeader;

// How the bytes of one entry are laid out.
enum class Layout {
  kFixed,    // fLen items of item_size each
  kJagged,   // a variable number of items (counter branch); entry offsets
  kString,   // one TString per entry
  kVector,   // std::vector<T>: a byte count, version, length, items
};

struct Leaf {
  std::string cls, name, title;
  int32_t len = 1;
  int32_t len_type = 0;
  bool is_unsigned = false;
  int32_t element_type = -1;  // TLeafElement::fType
};

struct Branch {
  std::string cls, name, title;
  int32_t entry_offset_len = 0;
  int32_t write_basket = 0;
  int64_t entries = 0;
  int64_t tot_bytes = 0, zip_bytes = 0;
  std::vector<int32_t> basket_bytes;
  std::vector<int64_t> basket_entry, basket_seek;
  std::vector<Leaf> leaves;
  std::vector<Branch> branches;
  // TBranchElement
  std::string class_name;
  int32_t type = 0, streamer_type = -1;
};

struct ColumnPlan {
  const Branch* branch = nullptr;
  Layout layout = Layout::kFixed;
  DType dtype = DType::kUndefined;
  int item_size = 0;          // bytes per item on disk
  int64_t items_per_entry = 1;  // kFixed; per jagged item for kJagged
  std::string unsupported;    // non-empty: why this column cannot be read
};

std::string Where(const std::string& file, const std::string& what) {
  return absl::StrCat(file, ": ", what);
}

absl::Status CursorError(const Cursor& c, const std::string& file, const std::string& what) {
  return absl::DataLossError(absl::StrCat(file, ": cannot read ", what, ": ", c.error()));
}

// Reads a key's header (TKey) at the cursor.
struct Key {
  int32_t nbytes = 0;
  int16_t version = 0;
  int32_t objlen = 0;
  int16_t keylen = 0;
  int16_t cycle = 0;
  int64_t seek_key = 0, seek_pdir = 0;
  std::string class_name, name, title;
};

Key ReadKey(Cursor& c) {
  Key k;
  k.nbytes = c.I32();
  k.version = c.I16();
  k.objlen = c.I32();
  c.U32();  // fDatime
  k.keylen = c.I16();
  k.cycle = c.I16();
  if (k.version > 1000) {
    k.seek_key = c.I64();
    k.seek_pdir = c.I64();
  } else {
    k.seek_key = c.I32();
    k.seek_pdir = c.I32();
  }
  k.class_name = c.String();
  k.name = c.String();
  k.title = c.String();
  return k;
}

// TLeaf* (the concrete leaf class's header, then TLeaf's).
void ReadLeaf(Cursor& c, ClassRefs& refs, const std::string& cls, Leaf* leaf) {
  leaf->cls = cls;
  ObjectHeader outer = root::ReadHeader(c);
  ObjectHeader h = root::ReadHeader(c);  // TLeaf
  root::ReadTNamed(c, &leaf->name, &leaf->title);
  leaf->len = c.I32();
  leaf->len_type = c.I32();
  c.I32();  // fOffset
  c.U8();   // fIsRange
  leaf->is_unsigned = c.U8() != 0;
  // fLeafCount: the counter leaf, inline or a reference to one read before.
  // Which counter it is comes from the title (ParseDims), so it is skipped.
  root::ReadObjectAny(c, refs, [&](const std::string& k) {
    Leaf counter;
    ReadLeaf(c, refs, k, &counter);
  });
  root::EndObject(c, h, "TLeaf");
  if (cls == "TLeafElement" && c.ok()) {
    c.I32();  // fID
    leaf->element_type = c.I32();
  }
  root::EndObject(c, outer, cls.c_str());
}

// A leaf's dimensions as its title spells them ("x[n]", "x[3]", "x[n][2]"):
// a counter branch's name first, if any, then fixed sizes.
struct Dims {
  std::string counter;       // empty if none
  std::vector<int64_t> fixed;  // fixed dimensions, outer to inner
  bool ok = true;
};

Dims ParseDims(const std::string& title) {
  Dims d;
  size_t pos = title.find('[');
  while (pos != std::string::npos) {
    size_t close = title.find(']', pos);
    if (close == std::string::npos) {
      d.ok = false;
      return d;
    }
    std::string inside = title.substr(pos + 1, close - pos - 1);
    bool numeric = !inside.empty() && std::all_of(inside.begin(), inside.end(),
                                                   [](char ch) { return ch >= '0' && ch <= '9'; });
    if (numeric && inside.size() < 10) {
      d.fixed.push_back(std::stoll(inside));
    } else if (d.counter.empty() && d.fixed.empty()) {
      d.counter = inside;
    } else {
      d.ok = false;
    }
    pos = title.find('[', close);
  }
  return d;
}

void ReadTObjArray(Cursor& c, ClassRefs& refs, const char* what,
                   const std::function<void(const std::string&)>& element) {
  ObjectHeader h = root::ReadHeader(c);
  root::ReadTObject(c);
  if (h.version > 2) c.String();  // fName
  int32_t n = c.I32();
  c.I32();  // fLowerBound
  // Each element takes at least four bytes.
  if (n < 0 || static_cast<size_t>(n) > c.remaining() / 4) {
    c.Fail(absl::StrCat(what, ": bad element count ", n));
    return;
  }
  for (int32_t i = 0; i < n && c.ok(); ++i) root::ReadObjectAny(c, refs, element);
  root::EndObject(c, h, what);
}

void ReadBranch(Cursor& c, ClassRefs& refs, const std::string& cls, Branch* b, int depth);

void ReadTBranchBody(Cursor& c, ClassRefs& refs, Branch* b, int depth) {
  ObjectHeader h = root::ReadHeader(c);  // TBranch
  int v = h.version;
  if (c.ok() && (v < 10 || v > 13)) {
    c.Fail(absl::StrCat("TBranch version ", v, " is not supported (10 to 13 are)"));
    return;
  }
  root::ReadTNamed(c, &b->name, &b->title);
  root::SkipObject(c, "TAttFill");
  c.I32();  // fCompress
  c.I32();  // fBasketSize
  b->entry_offset_len = c.I32();
  b->write_basket = c.I32();
  c.I64();  // fEntryNumber
  if (v >= 13) root::SkipObject(c, "TIOFeatures");
  c.I32();  // fOffset
  int32_t max_baskets = c.I32();
  c.I32();  // fSplitLevel
  b->entries = c.I64();
  if (v >= 11) c.I64();  // fFirstEntry
  b->tot_bytes = c.I64();
  b->zip_bytes = c.I64();
  ReadTObjArray(c, refs, "TBranch::fBranches", [&](const std::string& k) {
    b->branches.emplace_back();
    ReadBranch(c, refs, k, &b->branches.back(), depth + 1);
  });
  ReadTObjArray(c, refs, "TBranch::fLeaves", [&](const std::string& k) {
    b->leaves.emplace_back();
    ReadLeaf(c, refs, k, &b->leaves.back());
  });
  // fBaskets: baskets kept in memory (none in a closed file); skipped, but
  // through ReadObjectAny so the class tags they define are known.
  ReadTObjArray(c, refs, "TBranch::fBaskets", [](const std::string&) {});
  // Three arrays of fMaxBaskets, each after a one-byte marker.
  if (max_baskets < 0 || static_cast<size_t>(max_baskets) > c.remaining() / 20) {
    c.Fail(absl::StrCat("bad basket count ", max_baskets));
    return;
  }
  if (b->write_basket < 0 || b->write_basket > max_baskets) {
    c.Fail(absl::StrCat("written basket count ", b->write_basket, " exceeds fMaxBaskets ", max_baskets));
    return;
  }
  c.Skip(1);
  b->basket_bytes.resize(max_baskets);
  for (auto& x : b->basket_bytes) x = c.I32();
  c.Skip(1);
  b->basket_entry.resize(max_baskets);
  for (auto& x : b->basket_entry) x = c.I64();
  uint8_t seek_marker = c.U8();
  b->basket_seek.resize(max_baskets);
  for (auto& x : b->basket_seek) x = seek_marker == 2 || v >= 11 ? c.I64() : c.I32();
  root::EndObject(c, h, "TBranch");
}

void ReadBranch(Cursor& c, ClassRefs& refs, const std::string& cls, Branch* b, int depth) {
  b->cls = cls;
  if (depth > 32) {
    c.Fail("branches nested deeper than 32 levels");
    return;
  }
  if (cls == "TBranch") {
    ReadTBranchBody(c, refs, b, depth);
  } else if (cls == "TBranchElement" || cls == "TBranchObject") {
    ObjectHeader h = root::ReadHeader(c);
    ReadTBranchBody(c, refs, b, depth);
    if (cls == "TBranchElement") {
      b->class_name = c.String();
      if (h.version >= 9) c.String();  // fParentName
      c.String();                      // fClonesName
      c.U32();                         // fCheckSum
      if (h.version >= 10) c.I16(); else c.I32();  // fClassVersion
      c.I32();                         // fID
      b->type = c.I32();
      b->streamer_type = c.I32();
    } else {
      b->class_name = c.String();
    }
    root::EndObject(c, h, cls.c_str());
  } else {
    // Other branch classes (TBranchSTL, TBranchClones, ...) start with a
    // TBranch: read it for the name (and the class tags it defines, which
    // later objects may refer to); the column reports the class as
    // unsupported.
    ObjectHeader h = root::ReadHeader(c);
    ReadTBranchBody(c, refs, b, depth);
    root::EndObject(c, h, cls.c_str());
  }
}

struct TreeMeta {
  std::string name, title;
  int64_t entries = 0;
  std::vector<Branch> branches;
};

absl::StatusOr<TreeMeta> ParseTree(const char* data, size_t size, int64_t origin,
                                   const std::string& cls, const std::string& file) {
  Cursor c(data, size, origin);
  ClassRefs refs;
  TreeMeta t;
  ObjectHeader outer;
  if (cls != "TTree") outer = root::ReadHeader(c);  // TNtuple, TNtupleD
  ObjectHeader h = root::ReadHeader(c);
  int v = h.version;
  if (c.ok() && (v < 16 || v > 20)) {
    return absl::UnimplementedError(
        absl::StrCat(file, ": TTree version ", v, " is not supported (16 to 20 are)"));
  }
  root::ReadTNamed(c, &t.name, &t.title);
  root::SkipObject(c, "TAttLine");
  root::SkipObject(c, "TAttFill");
  root::SkipObject(c, "TAttMarker");
  t.entries = c.I64();
  c.I64();  // fTotBytes
  c.I64();  // fZipBytes
  c.I64();  // fSavedBytes
  if (v >= 18) c.I64();  // fFlushedBytes
  c.F64();  // fWeight
  c.I32();  // fTimerInterval
  c.I32();  // fScanField
  c.I32();  // fUpdate
  if (v >= 17) c.I32();  // fDefaultEntryOffsetLen
  int32_t nclusters = 0;
  if (v >= 19) nclusters = c.I32();
  c.I64();  // fMaxEntries
  c.I64();  // fMaxEntryLoop
  c.I64();  // fMaxVirtualSize
  c.I64();  // fAutoSave
  if (v >= 18) c.I64();  // fAutoFlush
  c.I64();  // fEstimate
  if (v >= 19) {
    if (nclusters < 0 || static_cast<size_t>(nclusters) > c.remaining() / 16) {
      return absl::DataLossError(Where(file, absl::StrCat("bad cluster range count ", nclusters)));
    }
    c.Skip(1 + 8 * static_cast<size_t>(nclusters));
    c.Skip(1 + 8 * static_cast<size_t>(nclusters));
  }
  if (v >= 20) root::SkipObject(c, "TIOFeatures");
  ReadTObjArray(c, refs, "TTree::fBranches", [&](const std::string& k) {
    t.branches.emplace_back();
    ReadBranch(c, refs, k, &t.branches.back(), 0);
  });
  if (!c.ok()) return CursorError(c, file, absl::StrCat("TTree '", t.name, "'"));
  if (t.entries < 0) return absl::DataLossError(Where(file, "negative entry count"));
  return t;
}

// Element types of TStreamerElement / TLeafElement::fType.
bool BasicType(int type, DType* dtype, int* size) {
  switch (type) {
    case 1: *dtype = DType::kInt8; *size = 1; return true;
    case 2: *dtype = DType::kInt16; *size = 2; return true;
    case 3: case 6: *dtype = DType::kInt32; *size = 4; return true;
    case 4: case 16: *dtype = DType::kInt64; *size = 8; return true;
    case 5: *dtype = DType::kFloat32; *size = 4; return true;
    case 8: *dtype = DType::kFloat64; *size = 8; return true;
    case 11: *dtype = DType::kUInt8; *size = 1; return true;
    case 12: *dtype = DType::kUInt16; *size = 2; return true;
    case 13: *dtype = DType::kUInt32; *size = 4; return true;
    case 14: case 17: *dtype = DType::kUInt64; *size = 8; return true;
    case 18: *dtype = DType::kBool; *size = 1; return true;
    default: return false;
  }
}

bool VectorItem(const std::string& class_name, DType* dtype, int* size) {
  static const std::map<std::string, std::pair<DType, int>> kItems = {
      {"char", {DType::kInt8, 1}}, {"unsigned char", {DType::kUInt8, 1}},
      {"short", {DType::kInt16, 2}}, {"unsigned short", {DType::kUInt16, 2}},
      {"int", {DType::kInt32, 4}}, {"unsigned int", {DType::kUInt32, 4}},
      {"long", {DType::kInt64, 8}}, {"unsigned long", {DType::kUInt64, 8}},
      {"Long64_t", {DType::kInt64, 8}}, {"ULong64_t", {DType::kUInt64, 8}},
      {"long long", {DType::kInt64, 8}}, {"unsigned long long", {DType::kUInt64, 8}},
      {"float", {DType::kFloat32, 4}}, {"double", {DType::kFloat64, 8}},
      {"bool", {DType::kBool, 1}}, {"Float_t", {DType::kFloat32, 4}},
      {"Double_t", {DType::kFloat64, 8}}, {"Int_t", {DType::kInt32, 4}},
  };
  std::string inner;
  if (class_name.rfind("vector<", 0) == 0 && class_name.back() == '>') {
    inner = class_name.substr(7, class_name.size() - 8);
  } else {
    return false;
  }
  auto it = kItems.find(inner);
  if (it == kItems.end()) return false;
  *dtype = it->second.first;
  *size = it->second.second;
  return true;
}

std::string LeafTypeName(const Leaf& l) {
  static const std::map<std::string, std::string> kNames = {
      {"TLeafO", "Bool_t"}, {"TLeafB", "Char_t"}, {"TLeafS", "Short_t"}, {"TLeafI", "Int_t"},
      {"TLeafL", "Long64_t"}, {"TLeafG", "Long_t"}, {"TLeafF", "Float_t"}, {"TLeafD", "Double_t"},
      {"TLeafC", "char*"}, {"TLeafF16", "Float16_t"}, {"TLeafD32", "Double32_t"}};
  auto it = kNames.find(l.cls);
  std::string base = it == kNames.end() ? l.cls : it->second;
  if (l.is_unsigned && (l.cls == "TLeafB" || l.cls == "TLeafS" || l.cls == "TLeafI" ||
                        l.cls == "TLeafL" || l.cls == "TLeafG")) {
    base = "U" + base;
  }
  return base;
}

// Decides how to read a branch and what column it is.
ColumnPlan Plan(const Branch& b, Column* col) {
  ColumnPlan p;
  p.branch = &b;
  col->name = b.name;
  col->compressed_bytes = b.zip_bytes;
  col->uncompressed_bytes = b.tot_bytes;
  if (b.cls != "TBranch" && b.cls != "TBranchElement" && b.cls != "TBranchObject") {
    p.unsupported = absl::StrCat("branch '", b.name, "' of class ", b.cls, " is not supported");
    col->source_type = b.cls;
    return p;
  }
  if (b.leaves.size() != 1) {
    p.unsupported = absl::StrCat("branch '", b.name, "' has ", b.leaves.size(),
                                 " leaves (leaf lists are not supported; title '", b.title, "')");
    col->source_type = "leaf list";
    return p;
  }
  const Leaf& l = b.leaves[0];
  Dims dims = ParseDims(l.title);
  if (!dims.ok) {
    p.unsupported = absl::StrCat("branch '", b.name, "' has dimensions '", l.title,
                                 "' that are not supported");
    col->source_type = l.title;
    return p;
  }
  int64_t per_entry = 1;
  for (int64_t d : dims.fixed) {
    // Each dimension, and their product (the items of one entry), at most 2^24.
    if (d <= 0 || d > (int64_t{1} << 24) || per_entry * d > (int64_t{1} << 24)) {
      p.unsupported = absl::StrCat("branch '", b.name, "' has a bad dimension in '", l.title, "'");
      return p;
    }
    per_entry *= d;
    col->shape.push_back(d);
  }
  std::string dim_text;
  if (!dims.counter.empty()) dim_text += "[" + dims.counter + "]";
  for (int64_t d : dims.fixed) dim_text += absl::StrCat("[", d, "]");

  if (l.cls == "TLeafElement" || b.cls == "TBranchElement") {
    DType dt;
    int size;
    if (VectorItem(b.class_name, &dt, &size) && col->shape.empty()) {
      p.layout = Layout::kVector;
      p.dtype = dt;
      p.item_size = size;
      col->dtype = dt;
      col->jagged = true;
      col->source_type = b.class_name;
      return p;
    }
    if (b.class_name == "TString" || b.class_name == "string") {
      p.layout = Layout::kString;
      p.dtype = DType::kString;
      col->dtype = DType::kString;
      col->source_type = b.class_name;
      return p;
    }
    if (BasicType(l.element_type, &dt, &size) && b.class_name.empty() == false && dims.counter.empty()) {
      // A basic-type member of a split object.
      p.layout = Layout::kFixed;
      p.dtype = dt;
      p.item_size = size;
      p.items_per_entry = std::max<int64_t>(1, l.len);
      col->dtype = dt;
      col->source_type = absl::StrCat(DTypeName(dt), dim_text, " (in ", b.class_name, ")");
      return p;
    }
    p.unsupported = absl::StrCat("branch '", b.name, "' of type '",
                                 b.class_name.empty() ? l.title : b.class_name,
                                 "' (", b.cls, ", streamer type ", b.streamer_type,
                                 ") is not supported");
    col->source_type = b.class_name.empty() ? b.cls : b.class_name;
    return p;
  }

  col->source_type = LeafTypeName(l) + dim_text;
  if (l.cls == "TLeafC") {
    p.layout = Layout::kString;
    p.dtype = DType::kString;
    col->dtype = DType::kString;
    col->shape.clear();
    return p;
  }
  struct Kind {
    DType s, u;
    int size;
  };
  static const std::map<std::string, Kind> kKinds = {
      {"TLeafO", {DType::kBool, DType::kBool, 1}},
      {"TLeafB", {DType::kInt8, DType::kUInt8, 1}},
      {"TLeafS", {DType::kInt16, DType::kUInt16, 2}},
      {"TLeafI", {DType::kInt32, DType::kUInt32, 4}},
      {"TLeafL", {DType::kInt64, DType::kUInt64, 8}},
      {"TLeafG", {DType::kInt64, DType::kUInt64, 8}},
      {"TLeafF", {DType::kFloat32, DType::kFloat32, 4}},
      {"TLeafD", {DType::kFloat64, DType::kFloat64, 8}},
  };
  auto it = kKinds.find(l.cls);
  if (it == kKinds.end()) {
    p.unsupported = absl::StrCat("branch '", b.name, "' of type ", col->source_type, " (", l.cls,
                                 ") is not supported");
    return p;
  }
  p.dtype = l.is_unsigned ? it->second.u : it->second.s;
  p.item_size = it->second.size;
  col->dtype = p.dtype;
  int64_t fixed_items = NumElements(col->shape);
  if (!dims.counter.empty()) {
    p.layout = Layout::kJagged;
    p.items_per_entry = fixed_items;
    col->jagged = true;
  } else {
    p.layout = Layout::kFixed;
    p.items_per_entry = fixed_items;
    if (l.len != fixed_items) {
      p.unsupported = absl::StrCat("branch '", b.name, "': leaf length ", l.len,
                                   " does not match its title '", l.title, "'");
    }
  }
  return p;
}

void CollectLeafBranches(const std::vector<Branch>& branches, std::vector<const Branch*>* out) {
  for (const Branch& b : branches) {
    if (!b.branches.empty()) {
      CollectLeafBranches(b.branches, out);
    } else {
      out->push_back(&b);
    }
  }
}

// Copies n big-endian items of `size` bytes into native order.
void CopySwapped(const char* src, int64_t n, int size, DType dtype, char* dst) {
  if (dtype == DType::kBool) {
    bool* out = reinterpret_cast<bool*>(dst);
    for (int64_t i = 0; i < n; ++i) out[i] = src[i] != 0;
    return;
  }
  switch (size) {
    case 1:
      std::memcpy(dst, src, n);
      break;
    case 2:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        v = __builtin_bswap16(v);
        std::memcpy(dst + 2 * i, &v, 2);
      }
      break;
    case 4:
      for (int64_t i = 0; i < n; ++i) {
        uint32_t v;
        std::memcpy(&v, src + 4 * i, 4);
        v = __builtin_bswap32(v);
        std::memcpy(dst + 4 * i, &v, 4);
      }
      break;
    case 8:
      for (int64_t i = 0; i < n; ++i) {
        uint64_t v;
        std::memcpy(&v, src + 8 * i, 8);
        v = __builtin_bswap64(v);
        std::memcpy(dst + 8 * i, &v, 8);
      }
      break;
  }
}

struct Basket {
  int index = -1;
  std::string data;               // the entries' bytes (up to fLast)
  std::vector<int32_t> offsets;   // entry starts in data, plus data.size(); empty if none
  int64_t first_entry = 0, num_entries = 0;
};

class RootSource final : public Source {
 public:
  RootSource(std::unique_ptr<RandomAccessFile> file, const DatasetOptions& options)
      : file_(std::move(file)), options_(options) {}

  absl::Status Open();

  const Schema& schema() const override { return ntuple_ ? ntuple_->schema() : schema_; }
  int64_t num_entries() const override { return ntuple_ ? ntuple_->num_entries() : tree_.entries; }
  FileInfo Info() const override;
  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override;

 private:
  absl::StatusOr<std::string> ReadBytes(int64_t offset, int64_t length, const std::string& what);
  // Reads a key's object, decompressing it.
  absl::StatusOr<std::string> ReadObject(const Key& key, const std::string& what);
  absl::StatusOr<std::vector<Key>> ReadKeyList(int64_t seek_keys, int32_t nbytes_keys,
                                               const std::string& what);
  absl::Status ReadDirectoryRecord(Cursor& c, int64_t* seek_keys, int32_t* nbytes_keys);
  // Finds every TTree (path -> key), descending into subdirectories.
  absl::Status FindTrees(const std::vector<Key>& keys, const std::string& prefix, int depth,
                         std::map<std::string, Key>* trees);
  // Checks a basket's place in the file.
  absl::Status CheckBasketRange(const Branch& b, int index);
  // Decodes basket `index` from its raw bytes (key, header, payload).
  absl::Status LoadBasket(const ColumnPlan& p, int index, const std::string& raw, Basket* out);
  // Reads the raw bytes of baskets [first, last] of a branch with vectored
  // reads of up to kPrefetchBytes each (one request for a remote file).
  absl::Status Prefetch(const Branch& b, int first, int last, std::map<int, std::string>* raw);
  static constexpr int64_t kPrefetchBytes = 32 << 20;

  std::unique_ptr<RandomAccessFile> file_;
  DatasetOptions options_;
  Schema schema_;
  TreeMeta tree_;
  std::vector<ColumnPlan> plans_;
  std::vector<Basket> cache_;  // the last basket of each column
  FileInfo info_;
  std::unique_ptr<Source> ntuple_;  // set when the object read is an RNTuple
};

FileInfo RootSource::Info() const {
  if (!ntuple_) return info_;
  FileInfo info = ntuple_->Info();
  info.facts.insert(info.facts.begin(), info_.facts.begin(), info_.facts.end());
  info.other_objects = info_.other_objects;
  return info;
}

absl::StatusOr<std::string> RootSource::ReadBytes(int64_t offset, int64_t length,
                                                  const std::string& what) {
  if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > file_->size() ||
      static_cast<uint64_t>(length) > file_->size() - offset) {
    return absl::DataLossError(absl::StrCat(file_->name(), ": ", what, " at offset ", offset,
                                            " with ", length, " bytes lies outside the file (",
                                            file_->size(), " bytes)"));
  }
  std::string bytes(static_cast<size_t>(length), '\0');
  absl::Status s = file_->ReadAt(offset, length, bytes.data());
  if (!s.ok()) return s;
  return bytes;
}

absl::StatusOr<std::string> RootSource::ReadObject(const Key& key, const std::string& what) {
  if (key.keylen < 0 || key.nbytes < key.keylen || key.objlen < 0) {
    return absl::DataLossError(absl::StrCat(file_->name(), ": ", what, " has a corrupt key"));
  }
  if (key.objlen > options_.max_object_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(file_->name(), ": ", what, " declares ",
                                                     key.objlen, " bytes, over the limit of ",
                                                     options_.max_object_bytes));
  }
  auto raw = ReadBytes(key.seek_key + key.keylen, key.nbytes - key.keylen, what);
  if (!raw.ok()) return raw.status();
  if (key.objlen == key.nbytes - key.keylen) return raw;
  std::string out(static_cast<size_t>(key.objlen), '\0');
  absl::Status s = root::Decompress(raw->data(), raw->size(), out.data(), out.size(),
                                    absl::StrCat(file_->name(), ": ", what));
  if (!s.ok()) return s;
  return out;
}

absl::Status RootSource::ReadDirectoryRecord(Cursor& c, int64_t* seek_keys, int32_t* nbytes_keys) {
  int16_t version = c.I16();
  c.U32();  // fDatimeC
  c.U32();  // fDatimeM
  *nbytes_keys = c.I32();
  c.I32();  // fNbytesName
  if (version > 1000) {
    c.I64();  // fSeekDir
    c.I64();  // fSeekParent
    *seek_keys = c.I64();
  } else {
    c.I32();
    c.I32();
    *seek_keys = c.I32();
  }
  if (!c.ok()) return CursorError(c, file_->name(), "a directory record");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Key>> RootSource::ReadKeyList(int64_t seek_keys, int32_t nbytes_keys,
                                                         const std::string& what) {
  if (nbytes_keys <= 0) return std::vector<Key>{};
  auto bytes = ReadBytes(seek_keys, nbytes_keys, what);
  if (!bytes.ok()) return bytes.status();
  Cursor c(bytes->data(), bytes->size());
  Key header = ReadKey(c);
  c.Seek(header.keylen > 0 ? header.keylen : c.size() + 1);
  int32_t n = c.I32();
  // A key header takes at least 26 bytes.
  if (c.ok() && (n < 0 || static_cast<size_t>(n) > c.remaining() / 26)) {
    return absl::DataLossError(absl::StrCat(file_->name(), ": ", what, " has a bad key count ", n));
  }
  std::vector<Key> keys;
  for (int32_t i = 0; i < n && c.ok(); ++i) keys.push_back(ReadKey(c));
  if (!c.ok()) return CursorError(c, file_->name(), what);
  return keys;
}

absl::Status RootSource::FindTrees(const std::vector<Key>& keys, const std::string& prefix,
                                   int depth, std::map<std::string, Key>* trees) {
  if (depth > 16) return absl::DataLossError(Where(file_->name(), "directories nested too deep"));
  for (const Key& k : keys) {
    std::string path = prefix + k.name;
    if (k.class_name == "TTree" || k.class_name == "TNtuple" || k.class_name == "TNtupleD" ||
        k.class_name == "ROOT::RNTuple") {
      auto it = trees->find(path);
      if (it == trees->end() || it->second.cycle < k.cycle) (*trees)[path] = k;
    } else if (k.class_name == "TDirectoryFile" || k.class_name == "TDirectory") {
      auto obj = ReadObject(k, absl::StrCat("directory '", path, "'"));
      if (!obj.ok()) return obj.status();
      Cursor c(obj->data(), obj->size());
      int64_t seek_keys = 0;
      int32_t nbytes_keys = 0;
      absl::Status s = ReadDirectoryRecord(c, &seek_keys, &nbytes_keys);
      if (!s.ok()) return s;
      auto sub = ReadKeyList(seek_keys, nbytes_keys, absl::StrCat("keys of '", path, "'"));
      if (!sub.ok()) return sub.status();
      s = FindTrees(*sub, path + "/", depth + 1, trees);
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

std::string CompressionSetting(int32_t setting) {
  if (setting <= 0) return "none";
  int algorithm = setting / 100, level = setting % 100;
  const char* names[] = {"zlib (default)", "zlib", "lzma", "old ROOT", "lz4", "zstd"};
  std::string name = algorithm >= 0 && algorithm <= 5 ? names[algorithm] : "unknown";
  if (algorithm == 0) name = "zlib";
  return absl::StrCat(name, " level ", level);
}

absl::Status RootSource::Open() {
  const std::string& fname = file_->name();
  const uint64_t kHeaderBytes = std::min<uint64_t>(file_->size(), 128);
  auto head = ReadBytes(0, kHeaderBytes, "the file header");
  if (!head.ok()) return head.status();
  if (head->size() < 4 || head->compare(0, 4, "root") != 0) {
    return absl::InvalidArgumentError(Where(fname, "not a ROOT file (no 'root' magic)"));
  }
  Cursor c(head->data(), head->size());
  c.Skip(4);
  int32_t version = c.I32();
  int32_t begin = c.I32();
  bool big = version >= 1000000;
  int64_t end = big ? c.I64() : c.I32();
  big ? c.I64() : c.I32();  // fSeekFree
  c.I32();                  // fNbytesFree
  c.I32();                  // nfree
  int32_t nbytes_name = c.I32();
  c.U8();  // fUnits
  int32_t compress = c.I32();
  if (!c.ok()) return CursorError(c, fname, "the file header");
  (void)end;
  info_.facts.push_back({"root version", absl::StrCat(version % 1000000)});
  info_.facts.push_back({"file compression", CompressionSetting(compress)});

  // The top directory's record follows its key and TNamed.
  auto dir = ReadBytes(static_cast<int64_t>(begin) + nbytes_name, 42, "the top directory");
  if (!dir.ok()) return dir.status();
  Cursor dc(dir->data(), dir->size());
  int64_t seek_keys = 0;
  int32_t nbytes_keys = 0;
  absl::Status s = ReadDirectoryRecord(dc, &seek_keys, &nbytes_keys);
  if (!s.ok()) return s;
  auto keys = ReadKeyList(seek_keys, nbytes_keys, "the top directory's keys");
  if (!keys.ok()) return keys.status();
  std::map<std::string, Key> trees;
  s = FindTrees(*keys, "", 0, &trees);
  if (!s.ok()) return s;

  const Key* chosen = nullptr;
  std::string chosen_path;
  if (options_.tree.empty()) {
    if (trees.empty()) return absl::NotFoundError(Where(fname, "has no TTree or RNTuple"));
    if (trees.size() > 1) {
      std::vector<std::string> names;
      for (const auto& [p, k] : trees) names.push_back(p);
      return absl::InvalidArgumentError(Where(
          fname, absl::StrCat("has several TTrees (", absl::StrJoin(names, ", "),
                              "); choose one with --tree")));
    }
    chosen_path = trees.begin()->first;
    chosen = &trees.begin()->second;
  } else {
    std::string want = options_.tree;
    while (!want.empty() && want[0] == '/') want.erase(0, 1);
    auto it = trees.find(want);
    if (it == trees.end()) {
      std::vector<std::string> names;
      for (const auto& [p, k] : trees) names.push_back(p);
      return absl::NotFoundError(Where(fname, absl::StrCat("no TTree or RNTuple '", options_.tree, "' (found: ",
                                                           names.empty() ? "none" : absl::StrJoin(names, ", "),
                                                           ")")));
    }
    chosen_path = it->first;
    chosen = &it->second;
  }
  for (const auto& [p, k] : trees) {
    if (p != chosen_path) info_.other_objects.push_back(absl::StrCat(p, " (", k.class_name, ")"));
  }
  auto obj = ReadObject(*chosen, absl::StrCat(chosen->class_name, " '", chosen_path, "'"));
  if (!obj.ok()) return obj.status();
  if (chosen->class_name == "ROOT::RNTuple") {
    auto nt = OpenRNTuple(file_.get(), *obj, chosen_path, options_);
    if (!nt.ok()) return nt.status();
    ntuple_ = std::move(*nt);
    return absl::OkStatus();
  }
  auto tree = ParseTree(obj->data(), obj->size(), chosen->keylen, chosen->class_name, fname);
  if (!tree.ok()) return tree.status();
  tree_ = std::move(*tree);

  std::vector<const Branch*> leaves;
  CollectLeafBranches(tree_.branches, &leaves);
  for (const Branch* b : leaves) {
    Column col;
    ColumnPlan p = Plan(*b, &col);
    // Consistency of the basket tables with the tree.
    if (p.unsupported.empty()) {
      if (b->write_basket > 0 && b->basket_entry[0] != 0) {
        p.unsupported = absl::StrCat("branch '", b->name, "': first basket starts at entry ",
                                     b->basket_entry[0]);
      }
      int64_t covered = b->write_basket > 0 ? b->basket_entry[0] : 0;
      for (int i = 0; i < b->write_basket && p.unsupported.empty(); ++i) {
        int64_t next = i + 1 < b->write_basket ? b->basket_entry[i + 1] : b->entries;
        if (next < b->basket_entry[i]) {
          p.unsupported = absl::StrCat("branch '", b->name, "': basket entry table is not sorted");
        }
        covered = next;
      }
      if (p.unsupported.empty() && (covered < tree_.entries || b->entries < tree_.entries)) {
        p.unsupported = absl::StrCat("branch '", b->name, "' holds ", covered, " of the tree's ",
                                     tree_.entries, " entries (baskets not written to the file)");
      }
    }
    schema_.columns.push_back(std::move(col));
    plans_.push_back(p);
  }
  cache_.resize(plans_.size());
  info_.url = fname;
  info_.format = Format::kRoot;
  info_.object = chosen_path;
  info_.num_entries = tree_.entries;
  info_.file_bytes = file_->size();
  if (!tree_.title.empty()) info_.facts.push_back({"title", tree_.title});
  return absl::OkStatus();
}

absl::Status RootSource::CheckBasketRange(const Branch& b, int index) {
  int64_t nbytes = b.basket_bytes[index];
  int64_t seek = b.basket_seek[index];
  if (nbytes <= 0 || seek < 0 || static_cast<uint64_t>(seek) > file_->size() ||
      static_cast<uint64_t>(nbytes) > file_->size() - seek) {
    return absl::DataLossError(Where(file_->name(), absl::StrCat("basket ", index, " of branch '", b.name,
                                                                 "' at offset ", seek, " with ", nbytes,
                                                                 " bytes lies outside the file (",
                                                                 file_->size(), " bytes)")));
  }
  return absl::OkStatus();
}

absl::Status RootSource::Prefetch(const Branch& b, int first, int last,
                                  std::map<int, std::string>* raw) {
  std::vector<RandomAccessFile::Range> ranges;
  int64_t total = 0;
  for (int i = first; i <= last; ++i) {
    absl::Status s = CheckBasketRange(b, i);
    if (!s.ok()) return s;
    if (!ranges.empty() && total + b.basket_bytes[i] > kPrefetchBytes) break;
    std::string& buf = (*raw)[i];
    buf.assign(static_cast<size_t>(b.basket_bytes[i]), '\0');
    ranges.push_back({static_cast<uint64_t>(b.basket_seek[i]), buf.size(), buf.data()});
    total += b.basket_bytes[i];
  }
  return file_->ReadV(ranges);
}

absl::Status RootSource::LoadBasket(const ColumnPlan& p, int index, const std::string& raw_bytes,
                                    Basket* out) {
  const Branch& b = *p.branch;
  std::string what = absl::StrCat("basket ", index, " of branch '", b.name, "'");
  int32_t nbytes = b.basket_bytes[index];
  const std::string* raw = &raw_bytes;
  Cursor c(raw->data(), raw->size());
  Key key = ReadKey(c);
  c.I16();  // TBasket version
  c.I32();  // fBufferSize
  c.I32();  // fNevBufSize
  int32_t nev = c.I32();
  int32_t last = c.I32();
  c.U8();
  if (!c.ok()) return CursorError(c, file_->name(), what);
  if (key.nbytes != nbytes || key.keylen <= 0 || key.keylen > nbytes || key.objlen < 0 ||
      last < key.keylen || last - key.keylen > key.objlen) {
    return absl::DataLossError(Where(file_->name(), what + " has an inconsistent header"));
  }
  if (key.objlen > options_.max_object_bytes) {
    return absl::ResourceExhaustedError(Where(
        file_->name(), absl::StrCat(what, " declares ", key.objlen, " bytes, over the limit of ",
                                    options_.max_object_bytes)));
  }
  std::string data;
  if (key.objlen == nbytes - key.keylen) {
    data = raw->substr(key.keylen);
  } else {
    data.assign(static_cast<size_t>(key.objlen), '\0');
    absl::Status s = root::Decompress(raw->data() + key.keylen, nbytes - key.keylen, data.data(),
                                      data.size(), Where(file_->name(), what));
    if (!s.ok()) return s;
  }
  int64_t first = b.basket_entry[index];
  int64_t next = index + 1 < b.write_basket ? b.basket_entry[index + 1] : b.entries;
  out->first_entry = first;
  out->num_entries = next - first;
  out->offsets.clear();
  size_t border = static_cast<size_t>(last - key.keylen);
  if (nev < out->num_entries) {
    return absl::DataLossError(Where(file_->name(), absl::StrCat(what, " holds ", nev, " entries, not ",
                                                                 out->num_entries)));
  }
  if (b.entry_offset_len > 0 && data.size() > border) {
    Cursor oc(data.data() + border, data.size() - border);
    int32_t n = oc.I32();
    if (n < out->num_entries || static_cast<size_t>(n) > oc.remaining() / 4 + 1) {
      return absl::DataLossError(Where(file_->name(), what + " has a bad entry offset table"));
    }
    out->offsets.resize(out->num_entries + 1);
    for (int64_t i = 0; i < out->num_entries; ++i) {
      int64_t off = static_cast<int64_t>(oc.I32()) - key.keylen;
      if (off < 0 || off > static_cast<int64_t>(border) || (i > 0 && off < out->offsets[i - 1])) {
        return absl::DataLossError(Where(file_->name(), what + " has a bad entry offset"));
      }
      out->offsets[i] = static_cast<int32_t>(off);
    }
    out->offsets[out->num_entries] = static_cast<int32_t>(border);
    if (!oc.ok()) return CursorError(oc, file_->name(), what);
  }
  data.resize(border);
  out->data = std::move(data);
  // Only now: a basket that failed to load must not be taken from the cache
  // by the next read.
  out->index = index;
  return absl::OkStatus();
}

absl::StatusOr<ColumnData> RootSource::ReadColumn(int column, int64_t start, int64_t stop) {
  if (ntuple_) return ntuple_->ReadColumn(column, start, stop);
  const ColumnPlan& p = plans_[column];
  const Column& col = schema_.columns[column];
  if (!p.unsupported.empty()) {
    return absl::UnimplementedError(Where(file_->name(), p.unsupported));
  }
  const Branch& b = *p.branch;
  const int64_t n = stop - start;
  ColumnData out;
  // Staging for variable layouts: raw bytes (big-endian) or strings.
  std::string items;
  std::vector<std::string> strings;
  std::vector<int64_t> offsets{0};
  std::string fixed_bytes;
  if (p.layout == Layout::kFixed) {
    int64_t total = n * p.items_per_entry * p.item_size;
    if (total > options_.max_object_bytes * 4) {
      return absl::ResourceExhaustedError(Where(file_->name(), "read too large"));
    }
    fixed_bytes.reserve(total);
  }
  // Baskets overlapping [start, stop).
  int64_t entry = start;
  int bi = 0;
  while (bi + 1 < b.write_basket && b.basket_entry[bi + 1] <= entry) ++bi;
  int last = bi;
  while (last + 1 < b.write_basket && b.basket_entry[last + 1] < stop) ++last;
  std::map<int, std::string> raw;
  while (entry < stop) {
    if (bi >= b.write_basket) {
      return absl::DataLossError(Where(file_->name(), absl::StrCat("branch '", b.name,
                                                                   "' has no basket for entry ", entry)));
    }
    Basket& basket = cache_[column];
    if (basket.index != bi) {
      basket.index = -1;
      if (raw.find(bi) == raw.end()) {
        raw.clear();
        absl::Status s = Prefetch(b, bi, last, &raw);
        if (!s.ok()) return s;
      }
      absl::Status s = LoadBasket(p, bi, raw[bi], &basket);
      raw.erase(bi);
      if (!s.ok()) return s;
    }
    int64_t lo = entry - basket.first_entry;
    int64_t hi = std::min(stop, basket.first_entry + basket.num_entries) - basket.first_entry;
    const std::string& d = basket.data;
    std::string what = absl::StrCat("basket ", bi, " of branch '", b.name, "'");
    auto bad = [&](const std::string& why) {
      return absl::DataLossError(Where(file_->name(), absl::StrCat(what, ": ", why)));
    };
    if (lo < 0 || hi <= lo) {
      return bad(absl::StrCat("covers entries ", basket.first_entry, " to ",
                              basket.first_entry + basket.num_entries, ", not entry ", entry));
    }
    if (p.layout == Layout::kFixed) {
      int64_t per = p.items_per_entry * p.item_size;
      if (basket.num_entries * per > static_cast<int64_t>(d.size())) {
        return bad(absl::StrCat("holds ", d.size(), " bytes, fewer than its ", basket.num_entries,
                                " entries need"));
      }
      fixed_bytes.append(d.data() + lo * per, (hi - lo) * per);
    } else {
      if (basket.offsets.empty()) return bad("has no entry offsets for a variable-size branch");
      for (int64_t e = lo; e < hi; ++e) {
        int64_t a = basket.offsets[e], z = basket.offsets[e + 1];
        Cursor ec(d.data() + a, z - a);
        if (p.layout == Layout::kJagged) {
          int64_t per = p.items_per_entry * p.item_size;
          if ((z - a) % per != 0) return bad(absl::StrCat("entry ", basket.first_entry + e, " has ", z - a,
                                                          " bytes, not a whole number of items"));
          items.append(d.data() + a, z - a);
          offsets.push_back(offsets.back() + (z - a) / per);
        } else if (p.layout == Layout::kString) {
          if (z == a) {
            strings.emplace_back();
          } else {
            strings.push_back(ec.String());
          }
          if (!ec.ok()) return bad(absl::StrCat("entry ", basket.first_entry + e, ": ", ec.error()));
          offsets.push_back(offsets.back() + 1);
        } else {  // kVector
          int32_t count = 0;
          size_t at = 0;
          std::string why;
          if (!root::VectorEntry(d.data() + a, static_cast<size_t>(z - a), p.item_size, &count, &at, &why)) {
            return bad(absl::StrCat("entry ", basket.first_entry + e, " has a bad vector length (", why, ")"));
          }
          items.append(d.data() + a + at, static_cast<size_t>(count) * p.item_size);
          offsets.push_back(offsets.back() + count);
        }
      }
    }
    entry = basket.first_entry + hi;
    ++bi;
  }
  Shape shape;
  if (p.layout == Layout::kFixed) {
    shape.push_back(n);
    for (int64_t d : col.shape) shape.push_back(d);
    out.values = Tensor::Empty(p.dtype, shape);
    CopySwapped(fixed_bytes.data(), n * p.items_per_entry, p.item_size, p.dtype,
                static_cast<char*>(out.values.raw_mutable_data()));
    return out;
  }
  if (p.layout == Layout::kString) {
    out.values = Tensor::Empty(DType::kString, {static_cast<int64_t>(strings.size())});
    std::string* dst = out.values.mutable_data<std::string>();
    for (size_t i = 0; i < strings.size(); ++i) dst[i] = std::move(strings[i]);
    out.offsets.clear();  // strings are one per entry: a fixed column
    return out;
  }
  int64_t total_items = offsets.back();
  shape.push_back(total_items);
  for (int64_t d : col.shape) shape.push_back(d);
  out.values = Tensor::Empty(p.dtype, shape);
  CopySwapped(items.data(), total_items * (p.layout == Layout::kJagged ? p.items_per_entry : 1),
              p.item_size, p.dtype, static_cast<char*>(out.values.raw_mutable_data()));
  out.offsets = std::move(offsets);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenRootSource(std::unique_ptr<RandomAccessFile> file,
                                                       const DatasetOptions& options) {
  auto source = std::make_unique<RootSource>(std::move(file), options);
  absl::Status s = source->Open();
  if (!s.ok()) return s;
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace hepml::data
