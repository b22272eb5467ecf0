// hepml::data against real files: every column of every TTree fixture
// (scikit-hep-testdata) compared with the values JSROOT read from the same
// files (tests/data/root_expected.json, made by
// tests/data/jsroot/dump_expected.mjs); batches, entry ranges, padding,
// several files as one dataset; CSV and npy; and truncated, corrupt and
// hostile files, which must give an error or the right data, never a crash.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/npy.h"
#include "hepml/data.h"
#include "nlohmann/json.hpp"

namespace hepml::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string RootDir() { return std::string(HEPML_TEST_DATA_DIR) + "/root"; }

bool HaveFixtures() { return fs::exists(RootDir() + "/uproot-Zmumu-zlib.root"); }

#define REQUIRE_FIXTURES()                                                              \
  if (!HaveFixtures()) {                                                                \
    GTEST_SKIP() << "ROOT fixtures not found in " << RootDir()                          \
                 << " (set -DHEPML_TEST_DATA_DIR to the folder holding root/)";         \
  }

const json& Expected() {
  static json* j = [] {
    std::ifstream in(std::string(HEPML_SOURCE_DIR) + "/tests/data/root_expected.json");
    auto* parsed = new json(json::parse(in));
    return parsed;
  }();
  return *j;
}

const json& ExpectedFile(const std::string& name) {
  const json& f = Expected().at(name);
  if (f.contains("same_as")) return Expected().at(f["same_as"].get<std::string>());
  return f;
}

double AsDouble(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kBool: return t.data<bool>()[i];
    case DType::kInt8: return t.data<int8_t>()[i];
    case DType::kUInt8: return t.data<uint8_t>()[i];
    case DType::kInt16: return t.data<int16_t>()[i];
    case DType::kUInt16: return t.data<uint16_t>()[i];
    case DType::kInt32: return t.data<int32_t>()[i];
    case DType::kUInt32: return t.data<uint32_t>()[i];
    case DType::kInt64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::kUInt64: return static_cast<double>(t.data<uint64_t>()[i]);
    case DType::kFloat32: return t.data<float>()[i];
    case DType::kFloat64: return t.data<double>()[i];
    default: return std::nan("");
  }
}

bool SameNumber(double got, const json& want) {
  if (want.is_string()) {
    std::string s = want.get<std::string>();
    if (s == "nan") return std::isnan(got);
    if (s == "inf") return got == INFINITY;
    if (s == "-inf") return got == -INFINITY;
    return false;
  }
  return got == want.get<double>();
}

// Compares one entry's values (flat items [a, b)) with JSROOT's value.
::testing::AssertionResult SameEntry(const Column& col, const Tensor& values, int64_t a, int64_t b,
                                     const json& want) {
  if (col.dtype == DType::kString) {
    if (values.data<std::string>()[a] != want.get<std::string>()) {
      return ::testing::AssertionFailure() << "'" << values.data<std::string>()[a] << "' != " << want;
    }
    return ::testing::AssertionSuccess();
  }
  if (want.is_string() && col.dtype == DType::kInt8) {
    // JSROOT reads Char_t[N] as a C string: the bytes up to the first NUL.
    std::string s = want.get<std::string>();
    // JSON decoded the string as UTF-8 code points; JSROOT made one code
    // point per byte.
    std::vector<uint32_t> codes;
    for (size_t i = 0; i < s.size();) {
      unsigned char c = s[i];
      if (c < 0x80) { codes.push_back(c); ++i; }
      else { codes.push_back(((c & 0x1F) << 6) | (s[i + 1] & 0x3F)); i += 2; }
    }
    for (size_t i = 0; i < codes.size(); ++i) {
      if (a + static_cast<int64_t>(i) >= b ||
          static_cast<uint8_t>(values.data<int8_t>()[a + i]) != codes[i]) {
        return ::testing::AssertionFailure() << "char array differs at " << i;
      }
    }
    if (a + static_cast<int64_t>(codes.size()) < b && values.data<int8_t>()[a + codes.size()] != 0) {
      return ::testing::AssertionFailure() << "char array lacks the NUL JSROOT stopped at";
    }
    return ::testing::AssertionSuccess();
  }
  if (!want.is_array()) {
    if (b - a != 1) return ::testing::AssertionFailure() << "expected a scalar, got " << b - a << " values";
    if (!SameNumber(AsDouble(values, a), want)) {
      return ::testing::AssertionFailure() << AsDouble(values, a) << " != " << want;
    }
    return ::testing::AssertionSuccess();
  }
  // Flatten nested arrays (x[n][3]).
  std::vector<json> flat;
  std::function<void(const json&)> add = [&](const json& v) {
    if (v.is_array()) for (const json& x : v) add(x);
    else flat.push_back(v);
  };
  add(want);
  if (static_cast<int64_t>(flat.size()) != b - a) {
    return ::testing::AssertionFailure() << b - a << " values, JSROOT has " << flat.size();
  }
  for (int64_t i = a; i < b; ++i) {
    if (!SameNumber(AsDouble(values, i), flat[i - a])) {
      return ::testing::AssertionFailure() << "item " << i - a << ": " << AsDouble(values, i)
                                           << " != " << flat[i - a];
    }
  }
  return ::testing::AssertionSuccess();
}

// Checks the columns of `tree` in the file at `path` (all of them if
// `columns` is empty) against JSROOT's values.
void CheckTreeAt(const std::string& path, const std::string& tree, const json& want,
                 int64_t batch_size, const std::vector<std::string>& columns = {}) {
  const std::string file = fs::path(path).filename().string();
  DatasetOptions options;
  options.tree = tree;
  auto ds = Dataset::Open({path}, options);
  ASSERT_TRUE(ds.ok()) << ds.status();
  int64_t entries = want["entries"].get<int64_t>();
  ASSERT_EQ((*ds)->num_entries(), entries);
  const Schema& schema = (*ds)->schema();
  ASSERT_EQ(schema.columns.size(), want["columns"].size()) << file;
  BatchOptions bo;
  bo.batch_size = batch_size;
  bo.columns = columns;
  BatchIterator it = (*ds)->Batches(bo);
  Batch batch;
  int64_t seen = 0;
  while (true) {
    auto more = it.Next(&batch);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_EQ(batch.entry_start, seen);
    for (const ColumnBatch& cb : batch.columns) {
      const Column& col = schema.columns[schema.IndexOf(cb.name)];
      ASSERT_TRUE(want["columns"].contains(cb.name)) << cb.name;
      const json& values = want["columns"][cb.name];
      ASSERT_TRUE(values.is_array()) << file << " " << cb.name << ": JSROOT could not read it";
      int64_t per_entry = NumElements(col.shape);
      for (int64_t e = 0; e < batch.num_entries; ++e) {
        int64_t a, b;
        if (col.jagged) {
          ASSERT_TRUE(cb.offsets.defined());
          a = cb.offsets.data<int64_t>()[e] * per_entry;
          b = cb.offsets.data<int64_t>()[e + 1] * per_entry;
        } else {
          a = e * per_entry;
          b = a + per_entry;
        }
        ASSERT_TRUE(SameEntry(col, cb.values, a, b, values[seen + e]))
            << file << " " << tree << " column " << cb.name << " entry " << seen + e;
      }
    }
    seen += batch.num_entries;
  }
  EXPECT_EQ(seen, entries);
}

// Checks every column of `tree` in the shared fixture `file`.
void CheckTree(const std::string& file, const std::string& tree, const json& want,
               int64_t batch_size) {
  CheckTreeAt(RootDir() + "/" + file, tree, want, batch_size);
}

// RNTuple fixtures. JSROOT reads most fields as hepml does; two of its
// readings differ in form and are compared accordingly: an untyped
// collection (`_collection0`) comes as its end offsets, and a member of the
// records inside it as a scalar per entry, entry i holding item i of the
// member's flat values.
void CheckRNTuple(const std::string& file, const std::string& name, const json& want) {
  auto ds = Dataset::Open({RootDir() + "/" + file}, {.tree = name});
  ASSERT_TRUE(ds.ok()) << ds.status();
  int64_t entries = want["entries"].get<int64_t>();
  ASSERT_EQ((*ds)->num_entries(), entries);
  const Schema& schema = (*ds)->schema();
  auto all = (*ds)->Read(0, entries);
  ASSERT_TRUE(all.ok()) << all.status();
  for (const auto& [col, values] : want["columns"].items()) {
    SCOPED_TRACE(col);
    int ci = schema.IndexOf(col);
    if (ci < 0) {
      // An untyped collection: its members are "col.member" columns.
      int member = -1;
      for (size_t i = 0; i < schema.columns.size(); ++i) {
        if (schema.columns[i].name.rfind(col + ".", 0) == 0) member = static_cast<int>(i);
      }
      ASSERT_GE(member, 0) << "no column for " << col;
      const Tensor& off = all->columns[member].offsets;
      for (int64_t e = 0; e < entries; ++e) {
        ASSERT_EQ(off.data<int64_t>()[e + 1], values[e].get<int64_t>()) << "entry " << e;
      }
      continue;
    }
    const Column& c = schema.columns[ci];
    const ColumnBatch& cb = all->columns[ci];
    int64_t per = NumElements(c.shape);
    if (c.jagged && values[0].is_number()) {
      int64_t items = cb.values.dim(0);
      for (int64_t e = 0; e < entries && e < items; ++e) {
        ASSERT_TRUE(SameNumber(AsDouble(cb.values, e), values[e])) << "item " << e;
      }
      continue;
    }
    for (int64_t e = 0; e < entries; ++e) {
      int64_t a = c.jagged ? cb.offsets.data<int64_t>()[e] * per : e * per;
      int64_t b = c.jagged ? cb.offsets.data<int64_t>()[e + 1] * per : a + per;
      ASSERT_TRUE(SameEntry(c, cb.values, a, b, values[e])) << "entry " << e;
    }
  }
}

TEST(RootTree, EveryColumnOfEveryFixtureMatchesJsroot) {
  REQUIRE_FIXTURES();
  int trees = 0, ntuples = 0;
  for (const auto& [file, unused] : Expected().items()) {
    for (const auto& [tree, want] : ExpectedFile(file).items()) {
      SCOPED_TRACE(file + ":" + tree);
      if (want.contains("rntuple")) {
        CheckRNTuple(file, tree, want);
        ++ntuples;
      } else {
        CheckTree(file, tree, want, 1 << 20);
        ++trees;
      }
    }
  }
  EXPECT_GE(trees, 8);
  EXPECT_GE(ntuples, 4);
}

TEST(RNTuple, ProjectionsAndCardinalityAgreeWithTheCollection) {
  REQUIRE_FIXTURES();
  auto ds = Dataset::Open({RootDir() + "/Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"_collection0.Muon_pt", "Muon_pt", "nMuon", "Muon_charge"};
  auto b = (*ds)->Read(0, 1000, ro);
  ASSERT_TRUE(b.ok()) << b.status();
  const Tensor& inner = b->columns[0].values;
  const Tensor& projected = b->columns[1].values;
  ASSERT_EQ(inner.shape(), projected.shape());
  EXPECT_EQ(std::memcmp(inner.raw_data(), projected.raw_data(), inner.nbytes()), 0);
  const int64_t* off = b->columns[1].offsets.data<int64_t>();
  for (int e = 0; e < 1000; ++e) {
    ASSERT_EQ(static_cast<int64_t>(b->columns[2].values.data<uint32_t>()[e]), off[e + 1] - off[e]);
  }
  EXPECT_EQ(b->columns[3].values.dtype(), DType::kInt32);
  // Batches across the whole file give the same flat values.
  BatchOptions bo;
  bo.batch_size = 33;
  bo.columns = {"Muon_pt"};
  BatchIterator it = (*ds)->Batches(bo);
  Batch batch;
  int64_t item = 0;
  while (*it.Next(&batch)) {
    const Tensor& v = batch.columns[0].values;
    ASSERT_EQ(std::memcmp(v.raw_data(), projected.data<float>() + item, v.nbytes()), 0);
    item += v.dim(0);
  }
  EXPECT_EQ(item, projected.dim(0));
}



TEST(RootTree, SmallBatchesCrossBasketBoundaries) {
  REQUIRE_FIXTURES();
  for (const char* file : {"uproot-Zmumu-zstd.root", "uproot-sample-6.20.04-lzma.root",
                           "uproot-small-flat-tree.root"}) {
    for (const auto& [tree, want] : ExpectedFile(file).items()) {
      SCOPED_TRACE(std::string(file) + " batch 7");
      CheckTree(file, tree, want, 7);
    }
  }
}

// std::vector<number> branches (TBranchElement): tests/data/vector_branches_*.root,
// written by tests/data/make_vector_tree.py and read back by JSROOT into
// tests/data/vector_expected.json. Needs no shared fixture.
std::string VectorFile(const std::string& compression) {
  return std::string(HEPML_SOURCE_DIR) + "/tests/data/vector_branches_" + compression + ".root";
}

const json& VectorExpected() {
  static json* j = [] {
    std::ifstream in(std::string(HEPML_SOURCE_DIR) + "/tests/data/vector_expected.json");
    return new json(json::parse(in));
  }();
  return (*j)["vector_branches_zlib.root"]["events"];
}

const std::vector<std::string> kVectorColumns = {"vf", "vi", "vd", "vb"};

TEST(RootVector, EveryEntryMatchesJsrootInEveryBatching) {
  for (const char* compression : {"zlib", "uncompressed"}) {
    for (int64_t batch : {int64_t{1} << 20, int64_t{100}, int64_t{7}, int64_t{1}}) {
      SCOPED_TRACE(absl::StrCat(compression, " batch ", batch));
      CheckTreeAt(VectorFile(compression), "events", VectorExpected(), batch, kVectorColumns);
    }
  }
}

TEST(RootVector, SchemaNamesTheVectorTypes) {
  auto ds = Dataset::Open({VectorFile("zlib")});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const Schema& s = (*ds)->schema();
  struct Want { const char* name; DType dtype; const char* type; };
  for (const Want& w : {Want{"vf", DType::kFloat32, "vector<float>"},
                        Want{"vi", DType::kInt32, "vector<int>"},
                        Want{"vd", DType::kFloat64, "vector<double>"},
                        Want{"vb", DType::kBool, "vector<bool>"}}) {
    SCOPED_TRACE(w.name);
    ASSERT_GE(s.IndexOf(w.name), 0);
    const Column& c = s.columns[s.IndexOf(w.name)];
    EXPECT_TRUE(c.jagged);
    EXPECT_EQ(c.dtype, w.dtype);
    EXPECT_EQ(c.shape, Shape({}));
    EXPECT_EQ(c.source_type, w.type);
  }
  EXPECT_EQ(s.columns[s.IndexOf("vs")].source_type, "vector<string>");
}

TEST(RootVector, PaddedWithAMaskAcrossBaskets) {
  auto ds = Dataset::Open({VectorFile("zlib")});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const json& want = VectorExpected()["columns"];
  ReadOptions ro;
  ro.columns = {"vd", "vi"};
  ro.pad_length = 4;
  // Entries 95..204 span three baskets of 100 entries.
  const int64_t start = 95, stop = 205;
  auto b = (*ds)->Read(start, stop, ro);
  ASSERT_TRUE(b.ok()) << b.status();
  const ColumnBatch& vd = b->columns[0];
  const ColumnBatch& vi = b->columns[1];
  ASSERT_EQ(vd.values.shape(), Shape({stop - start, 4}));
  ASSERT_EQ(vd.mask.shape(), Shape({stop - start, 4}));
  ASSERT_EQ(vi.values.dtype(), DType::kInt32);
  int cut = 0;
  for (int64_t e = start; e < stop; ++e) {
    const json& d = want["vd"][e];
    const json& i = want["vi"][e];
    if (d.size() > 4) ++cut;
    for (int64_t k = 0; k < 4; ++k) {
      const int64_t at = (e - start) * 4 + k;
      const bool present = k < static_cast<int64_t>(d.size());
      ASSERT_EQ(vd.mask.data<bool>()[at], present) << "entry " << e << " slot " << k;
      ASSERT_EQ(vi.mask.data<bool>()[at], present) << "entry " << e << " slot " << k;
      if (present) {
        ASSERT_TRUE(SameNumber(vd.values.data<double>()[at], d[k])) << "entry " << e;
        ASSERT_EQ(vi.values.data<int32_t>()[at], i[k].get<int32_t>()) << "entry " << e;
      } else {
        ASSERT_EQ(vd.values.data<double>()[at], 0.0);
        ASSERT_EQ(vi.values.data<int32_t>()[at], 0);
      }
    }
  }
  EXPECT_GT(cut, 0) << "some entries hold more than 4 items, so padding also cuts";
}

TEST(RootVector, EmptyEntriesHaveEqualOffsets) {
  auto ds = Dataset::Open({VectorFile("uncompressed")});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"vf"};
  auto b = (*ds)->Read(0, 600, ro);
  ASSERT_TRUE(b.ok()) << b.status();
  const int64_t* off = b->columns[0].offsets.data<int64_t>();
  const json& want = VectorExpected()["columns"]["vf"];
  int empty = 0;
  for (int64_t e = 0; e < 600; ++e) {
    ASSERT_EQ(off[e + 1] - off[e], static_cast<int64_t>(want[e].size())) << "entry " << e;
    if (want[e].empty()) ++empty;
  }
  EXPECT_GT(empty, 6);
  EXPECT_EQ(b->columns[0].values.dim(0), off[600]);
}

TEST(RootVector, VectorOfStringsIsAnErrorNamingBranchAndType) {
  auto ds = Dataset::Open({VectorFile("zlib")});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"vf", "vs"};
  auto b = (*ds)->Read(0, 10, ro);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnimplemented);
  const std::string msg(b.status().message());
  EXPECT_NE(msg.find("branch 'vs'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vector<string>"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vector_branches_zlib.root"), std::string::npos) << msg;
  // The other columns still read.
  ro.columns = {"vf"};
  EXPECT_TRUE((*ds)->Read(0, 10, ro).ok());
}

TEST(RootVector, DamagedVectorLengthIsAnError) {
  // Entry 5 of vi (uncompressed) holds five items; make its count huge.
  std::ifstream in(VectorFile("uncompressed"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Items 2147483647, -2147483648, 0, -1, 1 as big-endian int32 follow the count.
  const std::string items("\x7f\xff\xff\xff\x80\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x01", 20);
  size_t at = bytes.find(items);
  ASSERT_NE(at, std::string::npos);
  ASSERT_GE(at, 4u);
  const std::string count("\x00\x00\x00\x05", 4);
  ASSERT_EQ(bytes.substr(at - 4, 4), count);
  bytes.replace(at - 4, 4, std::string("\x00\x10\x00\x00", 4));
  const std::string path = testing::TempDir() + "/vector_damaged.root";
  std::ofstream(path, std::ios::binary) << bytes;
  auto ds = Dataset::Open({path});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"vi"};
  auto b = (*ds)->Read(0, 10, ro);
  ASSERT_FALSE(b.ok());
  const std::string msg(b.status().message());
  EXPECT_NE(msg.find("branch 'vi'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("entry 5"), std::string::npos) << msg;
  std::remove(path.c_str());
}

TEST(RootTree, Schema) {
  REQUIRE_FIXTURES();
  auto ds = Dataset::Open({RootDir() + "/uproot-sample-6.20.04-uncompressed.root"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const Schema& s = (*ds)->schema();
  const Column& n = s.columns[s.IndexOf("n")];
  EXPECT_EQ(n.dtype, DType::kInt32);
  EXPECT_FALSE(n.jagged);
  const Column& ai8 = s.columns[s.IndexOf("ai8")];
  EXPECT_EQ(ai8.dtype, DType::kInt64);
  EXPECT_EQ(ai8.shape, Shape({3}));
  EXPECT_FALSE(ai8.jagged);
  const Column& af4 = s.columns[s.IndexOf("Af4")];
  EXPECT_EQ(af4.dtype, DType::kFloat32);
  EXPECT_TRUE(af4.jagged);
  EXPECT_TRUE(af4.shape.empty());
  EXPECT_EQ(af4.source_type, "Float_t[n]");
  EXPECT_EQ(s.columns[s.IndexOf("u8")].dtype, DType::kUInt64);
  EXPECT_EQ(s.columns[s.IndexOf("b")].dtype, DType::kBool);
  EXPECT_EQ(s.columns[s.IndexOf("str")].dtype, DType::kString);
}

TEST(RootTree, ColumnsRangesAndPadding) {
  REQUIRE_FIXTURES();
  auto ds = Dataset::Open({"file://" + RootDir() + "/uproot-sample-6.20.04-lz4.root"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"Ai4", "n"};
  ro.pad_length = 3;
  auto b = (*ds)->Read(1, 5, ro);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->columns.size(), 2u);
  EXPECT_EQ(b->columns[0].name, "Ai4");
  const ColumnBatch& ai4 = b->columns[0];
  ASSERT_EQ(ai4.values.shape(), Shape({4, 3}));
  ASSERT_EQ(ai4.mask.shape(), Shape({4, 3}));
  // Entries 1..4 hold 1..4 items: [-15], [-15,-13], [-15,-13,-11], [-15,-13,-11,-9] cut to 3.
  const int32_t* v = ai4.values.data<int32_t>();
  const bool* m = ai4.mask.data<bool>();
  EXPECT_EQ(v[0], -15);
  EXPECT_EQ(v[1], 0);
  EXPECT_FALSE(m[1]);
  EXPECT_TRUE(m[3] && m[4] && !m[5]);
  EXPECT_EQ(v[3 * 3 + 2], -11);
  EXPECT_TRUE(m[3 * 3 + 2]);
  EXPECT_EQ(b->columns[1].values.data<int32_t>()[0], 1);

  ro.pad_length = 0;
  b = (*ds)->Read(0, 4, ro);
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(b->columns[0].offsets.shape(), Shape({5}));
  const int64_t* off = b->columns[0].offsets.data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(off, off + 5), std::vector<int64_t>({0, 0, 1, 3, 6}));

  ro.columns = {"nope"};
  auto missing = (*ds)->Read(0, 1, ro);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("no column 'nope'"), std::string::npos);
  EXPECT_FALSE((*ds)->Read(0, 31).ok());
}

TEST(RootTree, SeveralFilesAreOneDataset) {
  REQUIRE_FIXTURES();
  auto ds = Dataset::Open({RootDir() + "/uproot-Zmumu-lz4.root", RootDir() + "/uproot-Zmumu-zstd.root"},
                          {.tree = "events"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->num_entries(), 2 * 2304);
  ReadOptions ro;
  ro.columns = {"E1", "Type"};
  auto b = (*ds)->Read(2300, 2310, ro);
  ASSERT_TRUE(b.ok()) << b.status();
  const json& e1 = ExpectedFile("uproot-Zmumu-lz4.root")["events"]["columns"]["E1"];
  const json& type = ExpectedFile("uproot-Zmumu-lz4.root")["events"]["columns"]["Type"];
  for (int i = 0; i < 10; ++i) {
    int src = (2300 + i) % 2304;
    EXPECT_EQ(b->columns[0].values.data<double>()[i], e1[src].get<double>());
    EXPECT_EQ(b->columns[1].values.data<std::string>()[i], type[src].get<std::string>());
  }
  // An entry range crossing the files, in batches.
  BatchOptions bo;
  bo.columns = {"Event"};
  bo.batch_size = 64;
  bo.entry_start = 2250;
  bo.entry_stop = 2400;
  BatchIterator it = (*ds)->Batches(bo);
  Batch batch;
  std::vector<int64_t> sizes;
  const json& event = ExpectedFile("uproot-Zmumu-lz4.root")["events"]["columns"]["Event"];
  while (true) {
    auto more = it.Next(&batch);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    sizes.push_back(batch.num_entries);
    for (int64_t i = 0; i < batch.num_entries; ++i) {
      int64_t e = batch.entry_start + i;
      ASSERT_EQ(batch.columns[0].values.data<int32_t>()[i], event[e % 2304].get<int32_t>()) << e;
    }
  }
  EXPECT_EQ(sizes, std::vector<int64_t>({64, 64, 22}));
  bo.entry_stop = 5000;
  BatchIterator bad = (*ds)->Batches(bo);
  EXPECT_EQ(bad.Next(&batch).status().code(), absl::StatusCode::kOutOfRange);

  // Different columns do not make one dataset.
  auto mixed = Dataset::Open({RootDir() + "/uproot-Zmumu-lz4.root", RootDir() + "/uproot-small-flat-tree.root"});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(std::string(mixed.status().message()).find("column 'Type' is missing"), std::string::npos)
      << mixed.status();
}

TEST(RootTree, MissingTreeNamesTheTreesThere) {
  REQUIRE_FIXTURES();
  auto ds = Dataset::Open({RootDir() + "/uproot-Zmumu-zlib.root"}, {.tree = "nope"});
  ASSERT_FALSE(ds.ok());
  std::string msg(ds.status().message());
  EXPECT_NE(msg.find("no TTree or RNTuple 'nope'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("events"), std::string::npos) << msg;
  auto none = Dataset::Open({RootDir() + "/no-such-file.root"});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  auto scheme = Dataset::Open({"gopher://host/file.root"});
  EXPECT_NE(std::string(scheme.status().message()).find("gopher"), std::string::npos);
}

// --- Bad input -------------------------------------------------------------

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TempFile {
 public:
  explicit TempFile(const std::string& bytes, const std::string& suffix = ".root") {
    path_ = (fs::temp_directory_path() /
             ("hepml_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + suffix))
                .string();
    std::ofstream(path_, std::ios::binary).write(bytes.data(), bytes.size());
  }
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// Opens and reads everything; returns the status. Any outcome but a crash
// is acceptable to the caller, which checks the status or the data.
absl::Status ReadEverything(const std::string& path, const DatasetOptions& options = {},
                            std::vector<Batch>* batches = nullptr) {
  auto ds = Dataset::Open({path}, options);
  if (!ds.ok()) return ds.status();
  BatchOptions bo;
  bo.batch_size = 1000;
  BatchIterator it = (*ds)->Batches(bo);
  Batch b;
  while (true) {
    auto more = it.Next(&b);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (batches) batches->push_back(b);
  }
  return absl::OkStatus();
}

bool SameBatches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].columns.size() != b[i].columns.size()) return false;
    for (size_t c = 0; c < a[i].columns.size(); ++c) {
      const Tensor& x = a[i].columns[c].values;
      const Tensor& y = b[i].columns[c].values;
      if (x.shape() != y.shape() || x.dtype() != y.dtype()) return false;
      if (x.dtype() == DType::kString) {
        for (int64_t k = 0; k < x.size(); ++k) {
          if (x.data<std::string>()[k] != y.data<std::string>()[k]) return false;
        }
      } else if (std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) != 0) {
        return false;
      }
    }
  }
  return true;
}

TEST(RootBadInput, TruncatedFilesGiveErrors) {
  REQUIRE_FIXTURES();
  for (const char* name : {"uproot-Zmumu-zlib.root", "uproot-sample-6.20.04-lz4.root",
                           "uproot-small-flat-tree.root", "uproot-Zmumu-zstd.root",
                           "uproot-sample-6.20.04-lzma.root"}) {
    std::string bytes = ReadAll(RootDir() + "/" + name);
    std::vector<Batch> full;
    ASSERT_TRUE(ReadEverything(RootDir() + "/" + name, {}, &full).ok());
    std::mt19937 rng(7);
    int errors = 0;
    std::vector<size_t> cuts = {0, 1, 3, 4, 8, 20, 50, 63, 100, 200, bytes.size() / 2,
                                bytes.size() - 1, bytes.size() - 100};
    for (int i = 0; i < 40; ++i) cuts.push_back(rng() % bytes.size());
    for (size_t cut : cuts) {
      TempFile t(bytes.substr(0, cut));
      std::vector<Batch> got;
      absl::Status s = ReadEverything(t.path(), {}, &got);
      if (cut < 100) {
        EXPECT_FALSE(s.ok()) << name << " cut at " << cut;
      }
      // Cutting only what follows the data and keys (the streamer infos,
      // the free-segment list) still reads, and must read the same values.
      if (s.ok()) {
        EXPECT_TRUE(SameBatches(got, full)) << name << " cut at " << cut;
        EXPECT_GT(cut, bytes.size() / 2) << name << " cut at " << cut;
      } else {
        EXPECT_FALSE(s.message().empty());
        ++errors;
      }
    }
    EXPECT_GT(errors, static_cast<int>(cuts.size()) / 2) << name;
  }
}

TEST(RootBadInput, CorruptBytesGiveErrorsOrData) {
  REQUIRE_FIXTURES();
  int errors = 0, oks = 0;
  for (const char* name : {"uproot-Zmumu-uncompressed.root", "uproot-Zmumu-lz4.root",
                           "uproot-sample-6.20.04-uncompressed.root", "uproot-sample-6.20.04-lzma.root",
                           "uproot-small-flat-tree.root", "uproot-Zmumu-zstd.root"}) {
    std::string bytes = ReadAll(RootDir() + "/" + name);
    std::mt19937 rng(11);
    for (int i = 0; i < 150; ++i) {
      std::string bad = bytes;
      size_t at = rng() % bad.size();
      int len = 1 + rng() % 8;
      for (int k = 0; k < len && at + k < bad.size(); ++k) {
        // Alternate patterns that make sizes and offsets huge or negative.
        bad[at + k] = static_cast<char>(i % 3 == 0 ? 0xFF : i % 3 == 1 ? 0x7F : rng());
      }
      TempFile t(bad);
      absl::Status s = ReadEverything(t.path());
      if (s.ok()) {
        ++oks;
      } else {
        ++errors;
        EXPECT_FALSE(s.message().empty());
      }
    }
  }
  // Both outcomes occur: bytes inside data values change values, bytes in
  // metadata or compressed streams are caught.
  EXPECT_GT(errors, 0);
  EXPECT_GT(oks, 0);
}

// Offsets of every occurrence of `needle` in `hay`.
std::vector<size_t> FindAll(const std::string& hay, const std::string& needle) {
  std::vector<size_t> at;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) at.push_back(p);
  return at;
}

TEST(RootBadInput, EveryByteOfTheTreeMetadataCorrupted) {
  REQUIRE_FIXTURES();
  // The uncompressed file stores the streamed TTree as is: overwrite each
  // of its bytes in turn (with values that make counts and offsets
  // extreme) and read everything. Each read must end in an error or data.
  std::string bytes = ReadAll(RootDir() + "/uproot-sample-6.20.04-uncompressed.root");
  auto at = FindAll(bytes, "TBranch");
  ASSERT_FALSE(at.empty());
  size_t begin = at.front() > 300 ? at.front() - 300 : 0;
  size_t end = std::min(bytes.size(), at.front() + 12000);
  int errors = 0, reads = 0;
  for (size_t pos = begin; pos < end; pos += 3) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(pos % 4 == 0 ? 0xFF : 0x7F);
    TempFile t(bad);
    absl::Status s = ReadEverything(t.path());
    ++reads;
    if (!s.ok()) {
      ++errors;
      EXPECT_FALSE(s.message().empty());
    }
  }
  EXPECT_GT(errors, reads / 20) << reads << " reads";
}

// Found by fuzz/fuzz_root: a basket whose entry offsets are out of order
// failed to load but stayed in the basket cache, and the next read of the
// column used its half-built offset table (a std::length_error abort).
TEST(RootBadInput, BasketThatFailedToLoadIsNotReused) {
  std::string path = std::string(HEPML_SOURCE_DIR) + "/fuzz/regressions/fuzz_root/bad-offset-basket-reused.root";
  auto ds = Dataset::Open({path});
  ASSERT_TRUE(ds.ok()) << ds.status();
  for (int attempt = 0; attempt < 3; ++attempt) {
    bool failed = false;
    for (const Column& c : (*ds)->schema().columns) {
      auto b = (*ds)->Read(0, (*ds)->num_entries(), {.columns = {c.name}});
      if (b.ok()) continue;
      failed = true;
      EXPECT_NE(std::string(b.status().message()).find(path), std::string::npos) << b.status();
    }
    EXPECT_TRUE(failed) << "attempt " << attempt;
  }
}

// Found by fuzz/fuzz_rntuple: an RNTuple anchor declaring a header of 2^63
// bytes or more passed the size limit (compared as a signed number) and the
// reader asked for a string that large.
TEST(RootBadInput, RNTupleHeaderLengthBeyondTheLimitIsRefused) {
  std::string path = std::string(HEPML_SOURCE_DIR) + "/fuzz/regressions/fuzz_rntuple/header-length-2e63.root";
  auto ds = Dataset::Open({path});
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kResourceExhausted) << ds.status();
  EXPECT_NE(std::string(ds.status().message()).find("over the limit"), std::string::npos) << ds.status();
}

TEST(RootBadInput, ObjectLargerThanTheLimitIsRefused) {
  REQUIRE_FIXTURES();
  DatasetOptions options;
  options.max_object_bytes = 4096;  // the Zmumu TTree metadata is larger
  absl::Status s = ReadEverything(RootDir() + "/uproot-Zmumu-zlib.root", options);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(std::string(s.message()).find("limit"), std::string::npos) << s;
}

TEST(RootBadInput, DecompressionBombIsRefused) {
  REQUIRE_FIXTURES();
  // Make every compressed block claim 16 MiB - 1 uncompressed bytes: the
  // header no longer matches the object and no buffer grows to the claim.
  std::string bytes = ReadAll(RootDir() + "/uproot-Zmumu-zstd.root");
  int patched = 0;
  for (size_t p : FindAll(bytes, "ZS")) {
    if (p + 9 > bytes.size() || bytes[p + 2] != 1) continue;
    bytes[p + 6] = bytes[p + 7] = bytes[p + 8] = static_cast<char>(0xFF);
    ++patched;
  }
  ASSERT_GT(patched, 0);
  TempFile t(bytes);
  absl::Status s = ReadEverything(t.path());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("uncompressed bytes"), std::string::npos) << s;
}

TEST(RootBadInput, UnsupportedBranchTypeIsNamed) {
  REQUIRE_FIXTURES();
  // Rename the leaf class of the Double_t branches (same length, so every
  // offset holds): the tree opens, the other columns read, those name
  // themselves and their type.
  std::string bytes = ReadAll(RootDir() + "/uproot-Zmumu-uncompressed.root");
  auto at = FindAll(bytes, std::string("TLeafD\0", 7));
  ASSERT_FALSE(at.empty());
  for (size_t p : at) bytes[p + 5] = 'Q';
  TempFile t(bytes);
  auto ds = Dataset::Open({t.path()});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ReadOptions ro;
  ro.columns = {"Run"};
  EXPECT_TRUE((*ds)->Read(0, 10, ro).ok());
  ro.columns = {"E1"};
  auto b = (*ds)->Read(0, 10, ro);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnimplemented);
  std::string msg(b.status().message());
  EXPECT_NE(msg.find("'E1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TLeafQ"), std::string::npos) << msg;
}

TEST(RootBadInput, NotARootFile) {
  TempFile t("this is not a ROOT file at all", ".root");
  auto ds = Dataset::Open({t.path()});
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(std::string(ds.status().message()).find("not a ROOT file"), std::string::npos);
  TempFile empty("", ".root");
  EXPECT_FALSE(Dataset::Open({empty.path()}).ok());
}

// --- Other formats -----------------------------------------------------------

TEST(Csv, TypesAndQuoting) {
  TempFile t("id,pt,label\n1,2.5,\"a,b\"\n2,,\"say \"\"hi\"\"\"\n3,1e3,c\n", ".csv");
  auto ds = Dataset::Open({t.path()});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const Schema& s = (*ds)->schema();
  ASSERT_EQ(s.columns.size(), 3u);
  EXPECT_EQ(s.columns[0].dtype, DType::kInt64);
  EXPECT_EQ(s.columns[1].dtype, DType::kFloat64);
  EXPECT_EQ(s.columns[2].dtype, DType::kString);
  auto b = (*ds)->Read(0, 3);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->columns[0].values.data<int64_t>()[2], 3);
  EXPECT_TRUE(std::isnan(b->columns[1].values.data<double>()[1]));
  EXPECT_EQ(b->columns[1].values.data<double>()[2], 1000.0);
  EXPECT_EQ(b->columns[2].values.data<std::string>()[0], "a,b");
  EXPECT_EQ(b->columns[2].values.data<std::string>()[1], "say \"hi\"");

  TempFile ragged("a,b\n1,2\n3\n", ".csv");
  auto bad = Dataset::Open({ragged.path()});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("line 3"), std::string::npos) << bad.status();
}

TEST(Npy, ArrayIsOneColumn) {
  Tensor a = Tensor::FromVector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::FromVector<float>({1, 2}, {7, 8});
  TempFile fa(SerializeNpy(a), ".npy");
  TempFile fb(SerializeNpy(b), ".npy");
  auto ds = Dataset::Open({fa.path(), fb.path()});
  ASSERT_FALSE(ds.ok());  // column names come from the file names: they differ
  DatasetOptions o;
  o.format = Format::kNpy;
  auto one = Dataset::Open({fa.path()}, o);
  ASSERT_TRUE(one.ok()) << one.status();
  const Column& c = (*one)->schema().columns[0];
  EXPECT_EQ(c.dtype, DType::kFloat32);
  EXPECT_EQ(c.shape, Shape({2}));
  auto batch = (*one)->Read(1, 3);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->columns[0].values.shape(), Shape({2, 2}));
  EXPECT_EQ(batch->columns[0].values.data<float>()[0], 3.0f);
  TempFile junk("\x93NUMPY garbage", ".npy");
  EXPECT_FALSE(Dataset::Open({junk.path()}).ok());
}

// A file held in memory, served through a registered scheme.
class BytesFile final : public RandomAccessFile {
 public:
  BytesFile(std::string bytes, std::string name) : bytes_(std::move(bytes)), name_(std::move(name)) {}
  uint64_t size() const override { return bytes_.size(); }
  const std::string& name() const override { return name_; }
  absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) override {
    if (offset > bytes_.size() || length > bytes_.size() - offset) return absl::OutOfRangeError(name_ + ": past the end");
    std::memcpy(out, bytes_.data() + offset, length);
    return absl::OkStatus();
  }

 private:
  std::string bytes_, name_;
};

TEST(Npy, NpzArchiveThroughARegisteredScheme) {
  // Written by numpy.savez (pt float32[4], n int32[4]); read from its bytes,
  // not a local path.
  std::string npz = ReadAll(std::string(HEPML_SOURCE_DIR) + "/fuzz/corpus/fuzz_npy/two.npz");
  ASSERT_FALSE(npz.empty());
  RegisterFileScheme("npztest", [npz](const std::string& url) -> absl::StatusOr<std::unique_ptr<RandomAccessFile>> {
    return std::unique_ptr<RandomAccessFile>(new BytesFile(npz, url));
  });
  auto ds = Dataset::Open({"npztest://two.npz"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->schema().columns.size(), 2u);
  EXPECT_EQ((*ds)->num_entries(), 4);
  auto batch = (*ds)->Read(0, 4, {.columns = {"n"}});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(batch->columns[0].values.data<int32_t>()[3], 3);
  // A deflated entry that declares more than deflate can expand to.
  std::string bomb = ReadAll(std::string(HEPML_SOURCE_DIR) + "/fuzz/corpus/fuzz_npy/deflated.npz");
  ASSERT_EQ(bomb.substr(0, 4), std::string("PK\x03\x04", 4));
  bomb[22] = bomb[23] = bomb[24] = '\xff';
  bomb[25] = '\x7f';
  TempFile f(bomb, ".npz");
  auto bad = Dataset::Open({f.path()});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("more than deflate can expand to"), std::string::npos)
      << bad.status();
}

// Writes an HDF5 file with the HDF5 library: a float64 [5] and an int32
// [5,2] dataset at the root, a compound [5] {px float32, id int64, p
// float64[3]} and a vlen<float32> [5] dataset in group "events".
void WriteHdf5(const std::string& path) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t d1[1] = {5}, d2[2] = {5, 2};
  double x[5] = {0.5, 1.5, 2.5, 3.5, 4.5};
  int32_t y[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  hid_t s1 = H5Screate_simple(1, d1, nullptr), s2 = H5Screate_simple(2, d2, nullptr);
  hid_t ds = H5Dcreate2(f, "x", H5T_IEEE_F64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
  H5Dclose(ds);
  ds = H5Dcreate2(f, "y", H5T_STD_I32BE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
  H5Dclose(ds);
  hid_t g = H5Gcreate2(f, "events", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  struct Rec { float px; int64_t id; double p[3]; };
  Rec recs[5];
  for (int i = 0; i < 5; ++i) recs[i] = {i * 1.25f, 100 + i, {i * 1.0, i * 2.0, i * 3.0}};
  hsize_t three[1] = {3};
  hid_t arr = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, three);
  hid_t ct = H5Tcreate(H5T_COMPOUND, sizeof(Rec));
  H5Tinsert(ct, "px", offsetof(Rec, px), H5T_NATIVE_FLOAT);
  H5Tinsert(ct, "id", offsetof(Rec, id), H5T_NATIVE_INT64);
  H5Tinsert(ct, "p", offsetof(Rec, p), arr);
  ds = H5Dcreate2(g, "muons", ct, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, recs);
  H5Dclose(ds);
  float items[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  hvl_t vl[5] = {{0, items}, {1, items}, {2, items + 1}, {3, items + 3}, {4, items + 6}};
  hid_t vt = H5Tvlen_create(H5T_NATIVE_FLOAT);
  ds = H5Dcreate2(g, "hits", vt, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, vl);
  H5Dclose(ds);
  H5Tclose(vt);
  H5Tclose(ct);
  H5Tclose(arr);
  H5Gclose(g);
  H5Sclose(s1);
  H5Sclose(s2);
  H5Fclose(f);
}

// A wide compound like bench/make_hdf5.py's /events, and then some: a
// uint8 flag, 16 float32 features, an int64 and 9 int32 counts per row
// (runs of eight 4-byte members are gathered sixteen rows at a time), 40031
// rows in 1000-row chunks (batches across chunks that start mid cache line,
// several 256 KiB sub-reads per batch through HDF5, a tail that is not a
// multiple of 16; the whole file in one batch is over 4 MiB, written with
// non-temporal stores and gathered by two threads, gather_threads = 2 asked
// for whatever the machine). Every member of every row read back in batches
// of several sizes.
// With `big_endian_feature`, f5 is stored big-endian: the rows then come
// through HDF5's conversion, not straight from the mapped file.
void CheckWideCompound(bool big_endian_feature) {
  TempFile t("", ".h5");
  constexpr int kRows = 40031;
  struct Row {
    uint8_t flag;
    float f[16];
    int64_t event;
    int32_t c[9];
  };
  auto value_f = [](int r, int k) { return static_cast<float>(r) * 0.5f + static_cast<float>(k) * 1000.0f; };
  auto value_c = [](int r, int k) { return r * 10 + k - 50000; };
  {
    std::vector<Row> rows(kRows);
    for (int r = 0; r < kRows; ++r) {
      rows[r].flag = static_cast<uint8_t>(r % 251);
      for (int k = 0; k < 16; ++k) rows[r].f[k] = value_f(r, k);
      rows[r].event = int64_t{1} << 40 | r;
      for (int k = 0; k < 9; ++k) rows[r].c[k] = value_c(r, k);
    }
    // The file type packs the members (no padding), as h5py writes them.
    hid_t ft = H5Tcreate(H5T_COMPOUND, 1 + 16 * 4 + 8 + 9 * 4);
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(Row));
    size_t at = 0;
    H5Tinsert(ft, "flag", at, H5T_STD_U8LE), at += 1;
    H5Tinsert(mt, "flag", offsetof(Row, flag), H5T_NATIVE_UINT8);
    for (int k = 0; k < 16; ++k) {
      std::string name = absl::StrCat("f", k);
      H5Tinsert(ft, name.c_str(), at, big_endian_feature && k == 5 ? H5T_IEEE_F32BE : H5T_IEEE_F32LE), at += 4;
      H5Tinsert(mt, name.c_str(), offsetof(Row, f) + 4 * k, H5T_NATIVE_FLOAT);
    }
    H5Tinsert(ft, "event", at, H5T_STD_I64LE), at += 8;
    H5Tinsert(mt, "event", offsetof(Row, event), H5T_NATIVE_INT64);
    for (int k = 0; k < 9; ++k) {
      std::string name = absl::StrCat("c", k);
      H5Tinsert(ft, name.c_str(), at, H5T_STD_I32LE), at += 4;
      H5Tinsert(mt, name.c_str(), offsetof(Row, c) + 4 * k, H5T_NATIVE_INT32);
    }
    hid_t f = H5Fcreate(t.path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {kRows}, chunk[1] = {1000};
    hid_t sp = H5Screate_simple(1, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    hid_t ds = H5Dcreate2(f, "events", ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ASSERT_GE(H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(ft);
    H5Tclose(mt);
    H5Fclose(f);
  }
  DatasetOptions two_threads;
  two_threads.gather_threads = 2;
  auto ds = Dataset::Open({t.path()}, two_threads);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->schema().columns.size(), 27u);
  for (int64_t batch : {int64_t{kRows}, int64_t{4099}, int64_t{13}}) {
    SCOPED_TRACE(absl::StrCat("batch ", batch));
    BatchOptions bo;
    bo.batch_size = batch;
    BatchIterator it = (*ds)->Batches(bo);
    Batch b;
    int64_t seen = 0;
    while (true) {
      auto more = it.Next(&b);
      ASSERT_TRUE(more.ok()) << more.status();
      if (!*more) break;
      const uint8_t* flag = b.Find("flag")->values.data<uint8_t>();
      const int64_t* event = b.Find("event")->values.data<int64_t>();
      for (int64_t e = 0; e < b.num_entries; ++e) {
        const int r = static_cast<int>(b.entry_start + e);
        ASSERT_EQ(flag[e], r % 251) << "row " << r;
        ASSERT_EQ(event[e], int64_t{1} << 40 | r) << "row " << r;
        for (int k = 0; k < 16; ++k) {
          ASSERT_EQ(b.Find(absl::StrCat("f", k))->values.data<float>()[e], value_f(r, k)) << "row " << r << " f" << k;
        }
        for (int k = 0; k < 9; ++k) {
          ASSERT_EQ(b.Find(absl::StrCat("c", k))->values.data<int32_t>()[e], value_c(r, k)) << "row " << r << " c" << k;
        }
      }
      seen += b.num_entries;
    }
    EXPECT_EQ(seen, kRows);
  }
  // A member read twice from one batch: the second read is a copy of its own.
  ReadOptions ro;
  ro.columns = {"f3", "f3"};
  auto twice = (*ds)->Read(100, 200, ro);
  if (twice.ok()) {
    ASSERT_EQ(twice->columns.size(), 2u);
    EXPECT_NE(twice->columns[0].values.raw_data(), twice->columns[1].values.raw_data());
    EXPECT_EQ(twice->columns[1].values.data<float>()[5], value_f(105, 3));
  }
  if (!big_endian_feature) {
    // The file cut short after its rows were mapped: reading on is an error
    // or data (HDF5 reads zeros past the end), never a SIGBUS.
    const std::string bytes = ReadAll(t.path());
    TempFile copy(bytes, ".h5");
    auto cut = Dataset::Open({copy.path()});
    ASSERT_TRUE(cut.ok()) << cut.status();
    ASSERT_TRUE((*cut)->Read(0, 100).ok());
    ASSERT_EQ(::truncate(copy.path().c_str(), static_cast<off_t>(bytes.size() / 3)), 0);
    for (int64_t s = 0; s < kRows; s += 1000) (void)(*cut)->Read(s, std::min<int64_t>(kRows, s + 1000));
  }
}

TEST(Hdf5, WideCompoundMembersInEveryBatching) {
  {
    SCOPED_TRACE("stored as read: gathered from the mapped file");
    CheckWideCompound(false);
  }
  {
    SCOPED_TRACE("a big-endian member: read through HDF5");
    CheckWideCompound(true);
  }
}

TEST(Hdf5, DatasetsCompoundMembersAndVlen) {
  TempFile t("", ".h5");
  WriteHdf5(t.path());
  auto ds = Dataset::Open({t.path()});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const Schema& s = (*ds)->schema();
  ASSERT_EQ(s.columns.size(), 2u);
  EXPECT_EQ(s.columns[s.IndexOf("y")].shape, Shape({2}));
  EXPECT_EQ(s.columns[s.IndexOf("y")].dtype, DType::kInt32);
  auto b = (*ds)->Read(2, 5);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->Find("x")->values.data<double>()[0], 2.5);
  EXPECT_EQ(b->Find("y")->values.data<int32_t>()[1], 5);  // big-endian on disk, native here
  EXPECT_EQ(b->Find("y")->values.shape(), Shape({3, 2}));

  auto ev = Dataset::Open({t.path()}, {.format = Format::kHdf5, .tree = "events"});
  ASSERT_TRUE(ev.ok()) << ev.status();
  const Schema& es = (*ev)->schema();
  ASSERT_GE(es.IndexOf("px"), 0);
  ASSERT_GE(es.IndexOf("p"), 0);
  ASSERT_GE(es.IndexOf("hits"), 0);
  EXPECT_EQ(es.columns[es.IndexOf("p")].shape, Shape({3}));
  EXPECT_TRUE(es.columns[es.IndexOf("hits")].jagged);
  ReadOptions ro;
  ro.columns = {"id", "p", "hits"};
  auto eb = (*ev)->Read(1, 5, ro);
  ASSERT_TRUE(eb.ok()) << eb.status();
  EXPECT_EQ(eb->columns[0].values.data<int64_t>()[0], 101);
  EXPECT_EQ(eb->columns[1].values.data<double>()[3 * 3 + 2], 12.0);  // entry 4, p[2]
  const int64_t* off = eb->columns[2].offsets.data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(off, off + 5), std::vector<int64_t>({0, 1, 3, 6, 10}));
  EXPECT_EQ(eb->columns[2].values.data<float>()[9], 10.0f);

  auto missing = Dataset::Open({t.path()}, {.tree = "nope"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  // A truncated HDF5 file is an error, not a crash.
  std::string bytes = ReadAll(t.path());
  for (size_t cut : {size_t{10}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 10}) {
    TempFile cutf(bytes.substr(0, cut), ".h5");
    EXPECT_FALSE(ReadEverything(cutf.path(), {.tree = "events"}).ok()) << "cut at " << cut;
  }
  // Overwritten bytes: an error or data, never a crash.
  std::mt19937 rng(3);
  for (int i = 0; i < 60; ++i) {
    std::string bad = bytes;
    size_t at = rng() % bad.size();
    for (int k = 0; k < 4 && at + k < bad.size(); ++k) bad[at + k] = static_cast<char>(rng());
    TempFile badf(bad, ".h5");
    // A corrupt row count can claim billions of rows: read the first few.
    for (const char* group : {"", "events"}) {
      auto d = Dataset::Open({badf.path()}, {.tree = group});
      if (d.ok()) (void)(*d)->Read(0, std::min<int64_t>((*d)->num_entries(), 100));
    }
  }
}

TEST(RNTuple, CorruptCopiesGiveErrorsOrData) {
  REQUIRE_FIXTURES();
  for (const char* name : {"ntpl001_staff_rntuple_v1-0-1-0.root", "test_1jag_int_float_rntuple_v1-0-0-0.root",
                           "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"}) {
    std::string bytes = ReadAll(RootDir() + "/" + name);
    std::mt19937 rng(5);
    int errors = 0;
    for (int i = 0; i < 120; ++i) {
      std::string bad = bytes;
      if (i % 2 == 0) {
        bad.resize(rng() % bytes.size());
      } else {
        size_t at = rng() % bad.size();
        for (int k = 0; k < 4 && at + k < bad.size(); ++k) bad[at + k] = static_cast<char>(rng());
      }
      TempFile t(bad);
      absl::Status s = ReadEverything(t.path());
      if (!s.ok()) {
        ++errors;
        EXPECT_FALSE(s.message().empty());
      }
    }
    EXPECT_GT(errors, 60) << name;  // every cut fails; checksums catch most flips
  }
}

}  // namespace
}  // namespace hepml::data
