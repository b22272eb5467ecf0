// Read-ahead and streaming readers of hepml::data: the background thread of
// BatchIterator (same batches for a slow consumer, errors at the batch where
// they happen, early destruction, the bound on batches in flight), and .npy,
// .npz and CSV files read on demand with memory bounded by the readers' own
// count, on files much larger than their buffers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/npy.h"
#include "data/root_io.h"
#include "hepml/data.h"

namespace hepml::data {
namespace {

namespace fs = std::filesystem;

class TempFile {
 public:
  TempFile(const std::string& bytes, const std::string& suffix) {
    path_ = (fs::temp_directory_path() /
             ("hepml_stream_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + suffix))
                .string();
    std::ofstream(path_, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

// A file in memory whose reads are counted, optionally slowed, and fail at
// or past `fail_at`.
struct FileControl {
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> largest{0};
  std::atomic<uint64_t> fail_at{UINT64_MAX};
  std::atomic<int> delay_us{0};
};

class ControlledFile final : public RandomAccessFile {
 public:
  ControlledFile(const std::string* bytes, std::string name, FileControl* control)
      : bytes_(bytes), name_(std::move(name)), control_(control) {}
  uint64_t size() const override { return bytes_->size(); }
  const std::string& name() const override { return name_; }
  absl::Status ReadAt(uint64_t offset, uint64_t length, char* out) override {
    if (control_->delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(control_->delay_us));
    if (offset > bytes_->size() || length > bytes_->size() - offset) {
      return absl::OutOfRangeError(name_ + ": past the end");
    }
    if (offset + length > control_->fail_at) {
      return absl::DataLossError(absl::StrCat(name_, ": bad sector at offset ", offset));
    }
    ++control_->reads;
    control_->bytes += static_cast<int64_t>(length);
    int64_t l = static_cast<int64_t>(length), prev = control_->largest;
    while (l > prev && !control_->largest.compare_exchange_weak(prev, l)) {
    }
    std::memcpy(out, bytes_->data() + offset, length);
    return absl::OkStatus();
  }

 private:
  const std::string* bytes_;
  std::string name_;
  FileControl* control_;
};

// Serves `bytes` as SCHEME://NAME through a registered scheme.
void Serve(const std::string& scheme, const std::string* bytes, FileControl* control) {
  RegisterFileScheme(scheme, [bytes, control](const std::string& url)
                                 -> absl::StatusOr<std::unique_ptr<RandomAccessFile>> {
    return std::unique_ptr<RandomAccessFile>(new ControlledFile(bytes, url, control));
  });
}

// float32 [rows, width] with value row * width + col.
Tensor Counting(int64_t rows, int64_t width) {
  Tensor t = Tensor::Empty(DType::kFloat32, {rows, width});
  float* d = t.mutable_data<float>();
  for (int64_t i = 0; i < rows * width; ++i) d[i] = static_cast<float>(i);
  return t;
}

std::vector<Batch> ReadAllBatches(Dataset* ds, BatchOptions bo, absl::Status* status,
                                  int sleep_us = 0) {
  std::vector<Batch> out;
  BatchIterator it = ds->Batches(bo);
  Batch b;
  while (true) {
    auto more = it.Next(&b);
    if (!more.ok()) {
      *status = more.status();
      return out;
    }
    if (!*more) break;
    out.push_back(b);
    if (sleep_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
  }
  *status = absl::OkStatus();
  return out;
}

void ExpectSame(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].entry_start, b[i].entry_start);
    EXPECT_EQ(a[i].num_entries, b[i].num_entries);
    ASSERT_EQ(a[i].columns.size(), b[i].columns.size());
    for (size_t c = 0; c < a[i].columns.size(); ++c) {
      const Tensor& x = a[i].columns[c].values;
      const Tensor& y = b[i].columns[c].values;
      ASSERT_EQ(x.shape(), y.shape());
      ASSERT_EQ(x.dtype(), y.dtype());
      if (x.dtype() == DType::kString) {
        for (int64_t k = 0; k < x.size(); ++k) EXPECT_EQ(x.data<std::string>()[k], y.data<std::string>()[k]);
      } else {
        EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << "batch " << i;
      }
    }
  }
}

// --- Read-ahead ---------------------------------------------------------------

TEST(ReadAhead, SlowConsumerSeesTheSameBatchesAsNoReadAhead) {
  static const std::string npy = SerializeNpy(Counting(5000, 4));
  static FileControl control;
  Serve("ra-same", &npy, &control);
  auto ds = Dataset::Open({"ra-same://x.npy"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  BatchOptions bo;
  bo.batch_size = 97;  // the last batch is short
  bo.read_ahead_batches = 0;
  absl::Status st;
  std::vector<Batch> direct = ReadAllBatches(ds->get(), bo, &st);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(direct.size(), 52u);
  for (int depth : {1, 3}) {
    bo.read_ahead_batches = depth;
    std::vector<Batch> ahead = ReadAllBatches(ds->get(), bo, &st, 300);
    ASSERT_TRUE(st.ok()) << st;
    ExpectSame(direct, ahead);
  }
  // An entry range and a column selection go through the thread as well.
  bo.entry_start = 1234;
  bo.entry_stop = 2000;
  bo.columns = {"x"};
  bo.read_ahead_batches = 0;
  direct = ReadAllBatches(ds->get(), bo, &st);
  ASSERT_TRUE(st.ok());
  bo.read_ahead_batches = 2;
  ExpectSame(direct, ReadAllBatches(ds->get(), bo, &st));
  EXPECT_EQ(direct.front().columns[0].values.data<float>()[0], 1234.0f * 4);
}

TEST(ReadAhead, NeverMoreBatchesInFlightThanAsked) {
  static const std::string npy = SerializeNpy(Counting(4000, 8));
  static FileControl control;
  Serve("ra-bound", &npy, &control);
  auto ds = Dataset::Open({"ra-bound://x.npy"});
  ASSERT_TRUE(ds.ok());
  for (int depth : {1, 2, 4}) {
    BatchOptions bo;
    bo.batch_size = 100;
    bo.read_ahead_batches = depth;
    BatchIterator it = (*ds)->Batches(bo);
    Batch b;
    int64_t consumed = 0;
    while (*it.Next(&b)) {
      ++consumed;
      // The reader's own count: decoded batches never run more than `depth`
      // ahead of those returned, however slow the caller.
      BatchIterator::Stats s = it.stats();
      EXPECT_LE(s.batches_read, consumed + depth);
      EXPECT_LE(s.max_batches_ahead, depth);
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    EXPECT_EQ(consumed, 40);
    EXPECT_EQ(it.stats().batches_read, 40);
    EXPECT_GE(it.stats().max_batches_ahead, 1);
  }
}

TEST(ReadAhead, ErrorArrivesAtTheBatchWhereItHappens) {
  static const std::string npy = SerializeNpy(Counting(1000, 4));  // 16 bytes a row
  static FileControl control;
  Serve("ra-error", &npy, &control);
  auto ds = Dataset::Open({"ra-error://x.npy"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  const uint64_t data_start = npy.size() - 1000 * 16;
  control.fail_at = data_start + 350 * 16;  // rows from 350 on cannot be read
  for (int depth : {0, 1, 3}) {
    BatchOptions bo;
    bo.batch_size = 100;
    bo.read_ahead_batches = depth;
    BatchIterator it = (*ds)->Batches(bo);
    Batch b;
    for (int i = 0; i < 3; ++i) {
      auto more = it.Next(&b);
      ASSERT_TRUE(more.ok()) << "depth " << depth << " batch " << i << ": " << more.status();
      ASSERT_TRUE(*more);
      EXPECT_EQ(b.entry_start, i * 100);
      EXPECT_EQ(b.columns[0].values.data<float>()[0], i * 400.0f);
    }
    auto fourth = it.Next(&b);
    ASSERT_FALSE(fourth.ok()) << "depth " << depth;
    EXPECT_NE(std::string(fourth.status().message()).find("bad sector"), std::string::npos) << fourth.status();
    EXPECT_EQ(b.entry_start, 200);  // the failed Next left the batch alone
    EXPECT_FALSE(it.Next(&b).ok());  // and the error stays
  }
  control.fail_at = UINT64_MAX;
  // Bad options surface at the first Next, through the thread too.
  BatchOptions bo;
  bo.columns = {"nope"};
  auto it = (*ds)->Batches(bo);
  Batch b;
  auto more = it.Next(&b);
  ASSERT_FALSE(more.ok());
  EXPECT_NE(std::string(more.status().message()).find("no column 'nope'"), std::string::npos);
}

TEST(ReadAhead, PrepareRunsOnEachBatchInOrder) {
  static const std::string npy = SerializeNpy(Counting(1000, 2));
  static FileControl control;
  Serve("ra-prepare", &npy, &control);
  auto ds = Dataset::Open({"ra-prepare://x.npy"});
  ASSERT_TRUE(ds.ok());
  for (int depth : {0, 2}) {
    BatchOptions bo;
    bo.batch_size = 100;
    bo.read_ahead_batches = depth;
    std::thread::id caller = std::this_thread::get_id();
    bool on_caller = false;
    bo.prepare = [&](Batch& b) -> absl::Status {
      on_caller |= std::this_thread::get_id() == caller;
      if (b.entry_start == 700) return absl::InvalidArgumentError("cannot build entries 700-800");
      // Replace the column with its row sums.
      Tensor sums = Tensor::Empty(DType::kFloat32, {b.num_entries});
      const float* x = b.columns[0].values.data<float>();
      for (int64_t r = 0; r < b.num_entries; ++r) sums.mutable_data<float>()[r] = x[2 * r] + x[2 * r + 1];
      b.columns[0].name = "sum";
      b.columns[0].values = sums;
      return absl::OkStatus();
    };
    BatchIterator it = (*ds)->Batches(bo);
    Batch b;
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(*it.Next(&b));
      ASSERT_NE(b.Find("sum"), nullptr);
      EXPECT_EQ(b.Find("sum")->values.data<float>()[1], (i * 100 + 1) * 4.0f + 1);
    }
    auto more = it.Next(&b);
    ASSERT_FALSE(more.ok());
    EXPECT_NE(std::string(more.status().message()).find("entries 700-800"), std::string::npos);
    EXPECT_EQ(on_caller, depth == 0);  // with read-ahead, on the thread
  }
}

TEST(ReadAhead, EarlyStopAndMovesJoinTheThread) {
  static const std::string npy = SerializeNpy(Counting(2000, 4));
  static FileControl control;
  Serve("ra-stop", &npy, &control);
  auto ds = Dataset::Open({"ra-stop://x.npy"});
  ASSERT_TRUE(ds.ok());
  control.delay_us = 2000;  // the thread is mid-read when the iterator goes
  BatchOptions bo;
  bo.batch_size = 10;
  bo.read_ahead_batches = 4;
  {
    BatchIterator it = (*ds)->Batches(bo);
    Batch b;
    ASSERT_TRUE(*it.Next(&b));
  }  // destroyed with batches queued and one being read
  {
    BatchIterator never = (*ds)->Batches(bo);  // no Next: no thread
  }
  {
    BatchIterator a = (*ds)->Batches(bo);
    Batch b;
    ASSERT_TRUE(*a.Next(&b));
    BatchIterator moved = std::move(a);
    ASSERT_TRUE(*moved.Next(&b));
    EXPECT_EQ(b.entry_start, 10);
    BatchIterator other = (*ds)->Batches(bo);
    ASSERT_TRUE(*other.Next(&b));
    other = std::move(moved);  // other's thread is stopped and joined
    ASSERT_TRUE(*other.Next(&b));
    EXPECT_EQ(b.entry_start, 20);
    // A Read by the caller while the thread reads ahead takes its turn.
    auto r = (*ds)->Read(1990, 2000);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->columns[0].values.data<float>()[0], 1990.0f * 4);
  }
  control.delay_us = 0;
}

// --- Streaming npy / npz ------------------------------------------------------

TEST(NpyStream, RowsAreReadOnDemandNotTheWholeFile) {
  // 16 MB of float32 [262144, 16]: batches of 1024 rows (64 KiB) read their
  // rows' byte range only.
  static const std::string npy = SerializeNpy(Counting(262144, 16));
  static FileControl control;
  Serve("npy-stream", &npy, &control);
  auto ds = Dataset::Open({"npy-stream://big.npy"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_LT(control.bytes.load(), 8192);  // opening read the header only
  BatchOptions bo;
  bo.batch_size = 1024;
  BatchIterator it = (*ds)->Batches(bo);
  Batch b;
  int64_t rows = 0;
  bool values_ok = true;
  while (*it.Next(&b)) {
    const float* d = b.columns[0].values.data<float>();
    values_ok &= d[0] == static_cast<float>(b.entry_start * 16) &&
                 d[b.num_entries * 16 - 1] == static_cast<float>((b.entry_start + b.num_entries) * 16 - 1);
    rows += b.num_entries;
  }
  EXPECT_TRUE(values_ok);
  EXPECT_EQ(rows, 262144);
  EXPECT_LE(control.largest.load(), 1024 * 16 * 4);          // no read beyond one batch
  EXPECT_LT(control.bytes.load(), static_cast<int64_t>(npy.size()) + 8192);  // each byte once
  EXPECT_GE((*ds)->peak_reader_bytes(), 0);
  EXPECT_LT((*ds)->peak_reader_bytes(), 8192);  // the header, whatever the file's size
}

// An .npz archive whose members are stored (numpy.savez) by hand: local
// headers and data only, as the reader walks them.
std::string StoredNpz(const std::vector<std::pair<std::string, Tensor>>& arrays) {
  std::string z;
  auto u16 = [&](uint32_t v) { z += static_cast<char>(v & 0xff), z += static_cast<char>((v >> 8) & 0xff); };
  auto u32 = [&](uint32_t v) { u16(v & 0xffff), u16(v >> 16); };
  for (const auto& [name, t] : arrays) {
    std::string npy = SerializeNpy(t);
    std::string file = name + ".npy";
    u32(0x04034b50), u16(20), u16(0), u16(0), u16(0), u16(0), u32(0);
    u32(static_cast<uint32_t>(npy.size())), u32(static_cast<uint32_t>(npy.size()));
    u16(static_cast<uint32_t>(file.size())), u16(0);
    z += file;
    z += npy;
  }
  return z;
}

TEST(NpyStream, StoredNpzMembersAreReadInPlace) {
  static const std::string npz = StoredNpz({{"a", Counting(100000, 8)}, {"b", Counting(100000, 1)}});
  static FileControl control;
  Serve("npz-stream", &npz, &control);
  auto ds = Dataset::Open({"npz-stream://two.npz"});
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->schema().columns.size(), 2u);
  EXPECT_EQ((*ds)->schema().columns[0].shape, Shape({8}));
  EXPECT_LT(control.bytes.load(), 16384);  // the headers only
  control.largest = 0;
  auto r = (*ds)->Read(50000, 50010, {.columns = {"b", "a"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->columns[0].values.data<float>()[3], 50003.0f);
  EXPECT_EQ(r->columns[1].values.data<float>()[8 * 3 + 2], 50003.0f * 8 + 2);
  EXPECT_LE(control.largest.load(), 10 * 8 * 4);
  EXPECT_LT((*ds)->peak_reader_bytes(), 16384);
  // Members with different row counts are refused by name.
  static const std::string ragged = StoredNpz({{"a", Counting(10, 1)}, {"b", Counting(11, 1)}});
  Serve("npz-ragged", &ragged, &control);
  auto bad = Dataset::Open({"npz-ragged://r.npz"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("'b' has 11 rows"), std::string::npos) << bad.status();
  // A truncated member is an error naming it, before any batch.
  static const std::string cut = npz.substr(0, npz.size() - 100);
  Serve("npz-cut", &cut, &control);
  auto c = Dataset::Open({"npz-cut://c.npz"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("truncated"), std::string::npos) << c.status();
}

TEST(NpyStream, DeflatedMembersAreDecodedWholeAndCounted) {
  std::string npz = [] {
    std::ifstream in(std::string(HEPML_SOURCE_DIR) + "/fuzz/corpus/fuzz_npy/deflated.npz", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ASSERT_FALSE(npz.empty());
  TempFile f(npz, ".npz");
  auto ds = Dataset::Open({f.path()});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_GT((*ds)->peak_reader_bytes(), 0);
  DatasetOptions small;
  small.max_object_bytes = 16;  // below the member's size
  auto refused = Dataset::Open({f.path()}, small);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("limit"), std::string::npos) << refused.status();
}

// --- Streaming CSV ------------------------------------------------------------

TEST(CsvStream, LargeFileThroughASmallBuffer) {
  // ~5 MB: int, float, text with quotes, separators and line breaks inside
  // fields, CRLF line ends, one record far longer than the buffer.
  std::string csv = "id,x,label\r\n";
  std::vector<std::string> labels;
  const int64_t rows = 100000;
  for (int64_t i = 0; i < rows; ++i) {
    std::string label;
    if (i % 7 == 0) {
      label = absl::StrCat("line\none ", i, ", \"q\"");
      csv += absl::StrCat(i, ",", i * 0.5, ",\"line\none ", i, ", \"\"q\"\"\"\r\n");
    } else if (i == 54321) {
      label = std::string(20000, 'L');
      csv += absl::StrCat(i, ",", i * 0.5, ",", label, "\r\n");
    } else {
      label = absl::StrCat("plain", i, "-padding-to-make-it-longer");
      csv += absl::StrCat(i, ",", i * 0.5, ",", label, "\r\n");
    }
    labels.push_back(label);
    if (i == 500) csv += "\r\n";  // a blank line is skipped
  }
  static std::string bytes;
  bytes = csv;
  static FileControl control;
  Serve("csv-stream", &bytes, &control);
  DatasetOptions o;
  o.format = Format::kCsv;
  o.read_buffer_bytes = 4096;
  auto ds = Dataset::Open({"csv-stream://big.csv"}, o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->num_entries(), rows);
  const Schema& s = (*ds)->schema();
  EXPECT_EQ(s.columns[0].dtype, DType::kInt64);
  EXPECT_EQ(s.columns[1].dtype, DType::kFloat64);
  EXPECT_EQ(s.columns[2].dtype, DType::kString);
  EXPECT_LE(control.largest.load(), 4096);
  BatchOptions bo;
  bo.batch_size = 1000;
  BatchIterator it = (*ds)->Batches(bo);
  Batch b;
  int64_t seen = 0, wrong = 0;
  while (*it.Next(&b)) {
    for (int64_t r = 0; r < b.num_entries; ++r) {
      int64_t e = b.entry_start + r;
      wrong += b.columns[0].values.data<int64_t>()[r] != e;
      wrong += b.columns[1].values.data<double>()[r] != e * 0.5;
      wrong += b.columns[2].values.data<std::string>()[r] != labels[e];
    }
    seen += b.num_entries;
  }
  EXPECT_EQ(seen, rows);
  EXPECT_EQ(wrong, 0);
  // Random access lands on the right rows through the sparse index.
  auto r = (*ds)->Read(54320, 54323, {.columns = {"label", "id"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->columns[0].values.data<std::string>()[1], labels[54321]);
  EXPECT_EQ(r->columns[1].values.data<int64_t>()[2], 54322);
  // The reader's own count: the buffer (grown once for the 20000-byte
  // record), the index and one batch of parsed values; not the file.
  int64_t held = (*ds)->peak_reader_bytes();
  EXPECT_GT(held, 0);
  EXPECT_LT(held, 300000) << "of a " << bytes.size() << "-byte file";
  EXPECT_GT(static_cast<int64_t>(bytes.size()), 20 * held);
}

TEST(CsvStream, ErrorsNameTheLine) {
  static std::string quote = "a,b\n1,2\n3,\"open\n4,5\n";
  static std::string ragged = "a,b\n1,2\n3,4\n5\n";
  static FileControl control;
  Serve("csv-quote", &quote, &control);
  Serve("csv-ragged", &ragged, &control);
  DatasetOptions o;
  o.format = Format::kCsv;
  o.read_buffer_bytes = 64;
  auto q = Dataset::Open({"csv-quote://q.csv"}, o);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(std::string(q.status().message()).find("line 3: unterminated quote"), std::string::npos) << q.status();
  auto g = Dataset::Open({"csv-ragged://g.csv"}, o);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(std::string(g.status().message()).find("line 4 has 1 fields"), std::string::npos) << g.status();
  // A record longer than max_object_bytes is refused, not buffered.
  static std::string longrec = "a\n" + std::string(5000, 'x') + "\n";
  Serve("csv-long", &longrec, &control);
  o.max_object_bytes = 1000;
  auto l = Dataset::Open({"csv-long://l.csv"}, o);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(std::string(l.status().message()).find("longer than"), std::string::npos) << l.status();
}

// --- ROOT std::vector<number> entries ---------------------------------------
// No shared fixture holds a std::vector branch, so the entry layout
// TBranchElement writes is built here byte by byte: byte count | 0x40000000,
// version, int32 length, big-endian items.
std::string VectorBytes(const std::vector<float>& v, int32_t declared, uint32_t byte_count_extra = 0) {
  std::string out;
  auto be32 = [&](uint32_t x) {
    for (int i = 3; i >= 0; --i) out += static_cast<char>((x >> (8 * i)) & 0xff);
  };
  uint32_t body = 2 + 4 + static_cast<uint32_t>(v.size()) * 4;
  be32(0x40000000u | (body + byte_count_extra));
  out += '\x00', out += '\x09';  // version 9
  be32(static_cast<uint32_t>(declared));
  for (float f : v) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    be32(x);
  }
  return out;
}

TEST(RootVector, EntryLayoutAsTBranchElementWritesIt) {
  std::string e = VectorBytes({1.5f, -2.0f, 3.25f}, 3);
  int32_t count = -1;
  size_t at = 0;
  std::string why;
  ASSERT_TRUE(root::VectorEntry(e.data(), e.size(), 4, &count, &at, &why)) << why;
  EXPECT_EQ(count, 3);
  EXPECT_EQ(at, 10u);  // 4 byte count + 2 version + 4 length
  EXPECT_EQ(static_cast<unsigned char>(e[at]), 0x3f);  // 1.5f = 0x3fc00000
  std::string empty = VectorBytes({}, 0);
  ASSERT_TRUE(root::VectorEntry(empty.data(), empty.size(), 4, &count, &at, &why));
  EXPECT_EQ(count, 0);
  // A length past the entry, a negative length, a byte count past the
  // buffer, a truncated header: errors, never a read past the bytes.
  std::string longer = VectorBytes({1.0f}, 1000);
  EXPECT_FALSE(root::VectorEntry(longer.data(), longer.size(), 4, &count, &at, &why));
  EXPECT_NE(why.find("bad vector length 1000"), std::string::npos) << why;
  std::string negative = VectorBytes({1.0f}, -1);
  EXPECT_FALSE(root::VectorEntry(negative.data(), negative.size(), 4, &count, &at, &why));
  std::string overrun = VectorBytes({1.0f}, 1, 100);
  EXPECT_FALSE(root::VectorEntry(overrun.data(), overrun.size(), 4, &count, &at, &why));
  EXPECT_FALSE(root::VectorEntry(e.data(), 5, 4, &count, &at, &why));
  // Items beyond the byte count (the next object's bytes) are not taken.
  std::string two = VectorBytes({1.0f, 2.0f}, 2);
  two[3] -= 4;  // the byte count now ends one item early
  EXPECT_FALSE(root::VectorEntry(two.data(), two.size(), 4, &count, &at, &why));
}

}  // namespace
}  // namespace hepml::data
