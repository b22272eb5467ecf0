// HDF5 through the HDF5 C library: the datasets of one group are the
// columns. A numeric dataset [N, d1, ...] is one column with per-entry shape
// [d1, ...]; a compound dataset gives one column per numeric member (array
// members keep their shape); a variable-length numeric dataset is a jagged
// column. Rows are read by hyperslab, so only the requested range is read.
// Compound members stored as the native types read (no filters) are
// gathered straight from the file mapped read-only, a batch's pages dropped
// again after each gather; other compounds go through H5Dread.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/source.h"

namespace hepml::data {
namespace {

// RAII for HDF5 identifiers.
class Id {
 public:
  Id() = default;
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept {
    Reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
    return *this;
  }
  ~Id() { Reset(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  void Reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

void QuietErrors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

// The native memory type and DType of a numeric HDF5 type; false if it is
// not a plain number (or an h5py-style bool enum).
bool NumericType(hid_t type, DType* dtype, hid_t* native) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    switch (size) {
      case 1: *dtype = is_signed ? DType::kInt8 : DType::kUInt8; *native = is_signed ? H5T_NATIVE_INT8 : H5T_NATIVE_UINT8; return true;
      case 2: *dtype = is_signed ? DType::kInt16 : DType::kUInt16; *native = is_signed ? H5T_NATIVE_INT16 : H5T_NATIVE_UINT16; return true;
      case 4: *dtype = is_signed ? DType::kInt32 : DType::kUInt32; *native = is_signed ? H5T_NATIVE_INT32 : H5T_NATIVE_UINT32; return true;
      case 8: *dtype = is_signed ? DType::kInt64 : DType::kUInt64; *native = is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64; return true;
      default: return false;
    }
  }
  if (cls == H5T_FLOAT) {
    if (size == 4) { *dtype = DType::kFloat32; *native = H5T_NATIVE_FLOAT; return true; }
    if (size == 8) { *dtype = DType::kFloat64; *native = H5T_NATIVE_DOUBLE; return true; }
    return false;
  }
  if (cls == H5T_ENUM && size == 1 && H5Tget_nmembers(type) == 2) {
    char* n0 = H5Tget_member_name(type, 0);
    char* n1 = H5Tget_member_name(type, 1);
    bool is_bool = n0 && n1 && std::strcmp(n0, "FALSE") == 0 && std::strcmp(n1, "TRUE") == 0;
    H5free_memory(n0);
    H5free_memory(n1);
    if (is_bool) {
      *dtype = DType::kBool;
      *native = H5T_NATIVE_HBOOL;
      return H5Tget_size(H5T_NATIVE_HBOOL) == 1;
    }
  }
  return false;
}

std::string TypeText(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return absl::StrCat(H5Tget_sign(type) == H5T_SGN_2 ? "int" : "uint", 8 * H5Tget_size(type));
    case H5T_FLOAT: return absl::StrCat("float", 8 * H5Tget_size(type));
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "vlen";
    case H5T_ENUM: return "enum";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    default: return "other";
  }
}

// One compound member's copy from packed rows into its column.
struct Gather {
  size_t from;  // offset in a packed row
  size_t item;  // bytes per entry
  char* to;     // the member's column
};

#if defined(__x86_64__)
// Eight 4-byte members at consecutive offsets of eight rows, transposed in
// AVX2 registers: out[k] holds member k of the eight rows.
__attribute__((target("avx2"), always_inline)) inline void Transpose8x8(const char* p, size_t stride, __m256* out) {
  const __m256 a0 = _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  const __m256 a1 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + stride));
  const __m256 a2 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 2 * stride));
  const __m256 a3 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 3 * stride));
  const __m256 a4 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 4 * stride));
  const __m256 a5 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 5 * stride));
  const __m256 a6 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 6 * stride));
  const __m256 a7 = _mm256_loadu_ps(reinterpret_cast<const float*>(p + 7 * stride));
  const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
  const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
  const __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
  const __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Eight 4-byte members at consecutive offsets, `rows` rows (a multiple of
// 16) into columns whose destinations `dst` are 64-byte aligned: two 8x8
// transposes per sixteen rows, so that each member's sixteen values are one
// whole cache line, written in two stores one after the other. kStream: with
// non-temporal stores, which write the line to memory without first reading
// it into the cache (a large batch's columns would leave the core's caches
// before anyone reads them anyway).
template <bool kStream>
__attribute__((target("avx2"))) void TransposeEight(const char* src, size_t stride, int64_t rows, char* const* dst) {
  for (int64_t r = 0; r < rows; r += 16) {
    const char* p = src + static_cast<size_t>(r) * stride;
    __m256 lo[8], hi[8];
    Transpose8x8(p, stride, lo);
    Transpose8x8(p + 8 * stride, stride, hi);
    const size_t at = static_cast<size_t>(r) * 4;
    for (int k = 0; k < 8; ++k) {
      float* d = reinterpret_cast<float*>(dst[k] + at);
      if constexpr (kStream) {
        _mm256_stream_ps(d, lo[k]);
        _mm256_stream_ps(d + 8, hi[k]);
      } else {
        _mm256_store_ps(d, lo[k]);
        _mm256_store_ps(d + 8, hi[k]);
      }
    }
  }
}

// An 8-byte member of `rows` rows (a multiple of 4) into a 32-byte aligned
// `dst`, four rows per non-temporal store.
__attribute__((target("avx2"))) void StreamEightBytes(const char* src, size_t stride, int64_t rows, char* dst) {
  for (int64_t r = 0; r < rows; r += 4) {
    const char* p = src + static_cast<size_t>(r) * stride;
    long long v[4];
    for (int k = 0; k < 4; ++k) std::memcpy(&v[k], p + k * stride, 8);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + r * 8), _mm256_set_epi64x(v[3], v[2], v[1], v[0]));
  }
}

bool HaveAvx2() {
  static const bool have = __builtin_cpu_supports("avx2");
  return have;
}
#endif

// One member's rows [lo, hi) of a tile into its column from row `row0`.
void CopyMember(const Gather& gm, const char* tile, size_t stride, int64_t lo, int64_t hi, size_t row0,
                bool stream) {
  const char* src = tile + gm.from;
  char* dst = gm.to + row0 * gm.item;
#if defined(__x86_64__)
  if (stream && gm.item == 8) {
    int64_t r = lo;
    auto one = [&](int64_t row) {
      long long v;
      std::memcpy(&v, src + row * stride, 8);
      _mm_stream_si64(reinterpret_cast<long long*>(dst + row * 8), v);
    };
    for (; r < hi && reinterpret_cast<uintptr_t>(dst + r * 8) % 32 != 0; ++r) one(r);
    if (HaveAvx2()) {
      const int64_t whole = (hi - r) / 4 * 4;
      StreamEightBytes(src + r * stride, stride, whole, dst + r * 8);
      r += whole;
    }
    for (; r < hi; ++r) one(r);
    return;
  }
  if (stream && gm.item == 4) {
    for (int64_t r = lo; r < hi; ++r) {
      int v;
      std::memcpy(&v, src + r * stride, 4);
      _mm_stream_si32(reinterpret_cast<int*>(dst + r * 4), v);
    }
    return;
  }
#endif
  // Constant sizes let the compiler turn each copy into one load and store.
  auto copy = [&](auto size_tag) {
    constexpr size_t k = decltype(size_tag)::value;
    for (int64_t r = lo; r < hi; ++r) std::memcpy(dst + r * k, src + r * stride, k);
  };
  switch (gm.item) {
    case 1: copy(std::integral_constant<size_t, 1>()); break;
    case 2: copy(std::integral_constant<size_t, 2>()); break;
    case 4: copy(std::integral_constant<size_t, 4>()); break;
    case 8: copy(std::integral_constant<size_t, 8>()); break;
    default:
      for (int64_t r = lo; r < hi; ++r) std::memcpy(dst + r * gm.item, src + r * stride, gm.item);
  }
}

// Copies `rows` packed rows (`stride` bytes each) into the members' columns
// (each 64-byte aligned) from row `first` on. Rows go in tiles that stay in
// L1 while every member is taken from them; runs of eight 4-byte members are
// transposed sixteen rows at a time where the CPU has AVX2, from column rows
// that are multiples of 16 (whole cache lines). `stream`: write the columns
// with non-temporal stores (see TransposeEight).
void GatherMembers(const char* rows_data, size_t stride, int64_t rows, const std::vector<Gather>& gathers,
                   size_t first, bool stream) {
  constexpr int64_t kTileRows = 256;
#if defined(__x86_64__)
  const bool avx2 = HaveAvx2();
#endif
  for (int64_t t = 0; t < rows;) {
    const size_t row0 = first + static_cast<size_t>(t);
    // Tiles end at column rows that are multiples of kTileRows.
    const int64_t m = std::min<int64_t>(kTileRows - static_cast<int64_t>(row0 % kTileRows), rows - t);
    const char* tile = rows_data + static_cast<size_t>(t) * stride;
    // Rows [a, b) of the tile start whole 16-row lines of the columns.
    const int64_t a = std::min<int64_t>(m, static_cast<int64_t>((16 - row0 % 16) % 16));
    const int64_t b = a + (m - a) / 16 * 16;
    for (size_t g = 0; g < gathers.size();) {
#if defined(__x86_64__)
      if (g + 8 <= gathers.size() && b > a && avx2) {
        bool run = true;
        for (size_t k = 0; k < 8 && run; ++k) {
          run = gathers[g + k].item == 4 && gathers[g + k].from == gathers[g].from + 4 * k &&
                reinterpret_cast<uintptr_t>(gathers[g + k].to) % 64 == 0;
        }
        if (run) {
          char* dst[8];
          for (size_t k = 0; k < 8; ++k) dst[k] = gathers[g + k].to + (row0 + static_cast<size_t>(a)) * 4;
          const char* from = tile + static_cast<size_t>(a) * stride + gathers[g].from;
          if (stream) {
            TransposeEight<true>(from, stride, b - a, dst);
          } else {
            TransposeEight<false>(from, stride, b - a, dst);
          }
          for (size_t k = 0; k < 8; ++k) {
            CopyMember(gathers[g + k], tile, stride, 0, a, row0, false);
            CopyMember(gathers[g + k], tile, stride, b, m, row0, false);
          }
          g += 8;
          continue;
        }
      }
#endif
      CopyMember(gathers[g], tile, stride, 0, m, row0, stream);
      ++g;
    }
    t += m;
  }
#if defined(__x86_64__)
  // Non-temporal stores are weakly ordered: make them visible before the
  // batch is handed to another thread.
  if (stream) _mm_sfence();
#endif
}

struct Hdf5Column {
  std::string dataset;
  std::string member;   // compound member, or empty
  hid_t native = -1;    // the element's native type (a library constant)
  Shape item_shape;     // array member's dims, or the dataset's inner dims
  bool vlen = false;
};

class Hdf5Source final : public Source {
 public:
  Hdf5Source(std::string url, Id file, const DatasetOptions& options)
      : url_(std::move(url)), file_(std::move(file)), options_(options) {}
  ~Hdf5Source() override {
    if (helper_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(helper_mu_);
        helper_stop_ = true;
      }
      helper_cv_.notify_all();
      helper_.join();
    }
    if (map_ != nullptr) ::munmap(const_cast<char*>(map_), map_bytes_);
    if (map_fd_ >= 0) ::close(map_fd_);
  }

  absl::Status Open(const std::string& group_path);
  const Schema& schema() const override { return schema_; }
  int64_t num_entries() const override { return rows_; }
  FileInfo Info() const override { return info_; }
  absl::StatusOr<ColumnData> ReadColumn(int column, int64_t start, int64_t stop) override;

 private:
  absl::Status AddDataset(const std::string& name, const std::string& path);
  // Variable-length rows are decoded here, not by H5Dread: HDF5 1.10's
  // global-heap reader trusts the heap references it follows, so a corrupt
  // file can crash it. Every reference is checked against the file first.
  absl::StatusOr<ColumnData> ReadVlen(hid_t ds, const Column& col, int64_t start, int64_t stop);
  // A global heap collection's objects: index -> (offset, size) in bytes.
  absl::StatusOr<const std::pair<std::string, std::map<uint16_t, std::pair<uint64_t, uint64_t>>>*> Collection(uint64_t addr);

  // The dataset at `path`, opened once (its chunk cache lives as long).
  absl::StatusOr<hid_t> Dataset(const std::string& path);
  // Compound members: the first member read of a batch reads the batch's
  // rows of every member (a few H5Dreads into a packed buffer) and gathers
  // all the member columns into one block; the others are cut from it.
  struct CompoundRows {
    Id mtype;                               // packed native members
    size_t row_bytes = 0;
    std::map<std::string, size_t> offset;   // member -> offset in a row
    int64_t start = -1, stop = -1;          // rows in `rows`
    std::string rows;
    // The batch's member columns, one after another (64-byte aligned) in
    // one block that the returned tensors share.
    std::shared_ptr<void> block;
    BlockPool pool;  // blocks of earlier batches, taken again once released
    std::vector<size_t> column_at;  // by column index: the member's offset in `block`
    std::vector<bool> handed_out;   // by column index: its slice of `block` was returned
    // Rows gathered straight from the mapped file, without H5Dread's copy
    // into `rows`: for unfiltered (uncompressed) chunked or contiguous
    // datasets whose members are stored as the native types read.
    // A run of a batch's rows that lie one after another in the file.
    struct Piece {
      uint64_t from;  // file offset of the piece's first row
      int64_t rows;
      size_t first;  // its first row in the batch
    };
    struct Direct {
      bool checked = false, ok = false;
      std::vector<Piece> pieces;  // of the batch being read (kept for its capacity)
      size_t row_bytes = 0;                  // bytes of a row in the file
      std::map<std::string, size_t> offset;  // member -> offset in a file row
      int64_t chunk_rows = 0;                // chunked; 0: contiguous at `address`
      uint64_t address = 0;
      // Chunk number -> file address, for the chunks looked up so far:
      // HDF5 1.10 finds a chunk's address by walking the dataset's chunk
      // index from its start, so a lookup costs more the further the chunk
      // is, and a batch's first chunk is often the previous batch's last.
      std::unordered_map<int64_t, uint64_t> chunk_address;
    } direct;
  };
  // Decides whether the dataset's rows can be gathered from the mapped file
  // (maps it on first use).
  void CheckDirect(hid_t ds, CompoundRows& cr);
  // Gathers rows [start, start + n) from the mapped file; false where a
  // chunk is not stored as expected (not written, or outside the file): the
  // caller reads them through HDF5 then.
  bool ReadDirect(hid_t ds, CompoundRows& cr, int64_t start, int64_t n, const std::vector<Gather>& gathers,
                  bool stream);
  // Gathers the batch's n rows, in `pieces` of the mapped file, into the
  // member columns; a large batch in two halves on two threads.
  void GatherPieces(const std::vector<CompoundRows::Piece>& pieces, size_t stride, int64_t n,
                    const std::vector<Gather>& gathers, bool stream);
  // REQUIRES: `fspace` is the dataset's (one-dimensional) space; its
  // selection is replaced.
  absl::StatusOr<ColumnData> ReadMember(hid_t ds, hid_t fspace, const Hdf5Column& hc,
                                        const Column& col, int64_t start, int64_t stop);
  // The member's column of the batch in `cr` (n rows): a view of the block
  // the first time, a copy after that.
  ColumnData CutMember(CompoundRows& cr, int column, int64_t n);

  std::string url_;
  Id file_;
  DatasetOptions options_;
  std::map<std::string, Id> datasets_;
  std::map<std::string, CompoundRows> compounds_;
  std::vector<BlockPool> pools_;  // per column: blocks of numeric datasets' batches
  std::unique_ptr<RandomAccessFile> raw_;  // for vlen data
  // The whole file mapped read-only for CompoundRows::Direct; null if not
  // (yet) mapped or the mapping failed.
  const char* map_ = nullptr;
  size_t map_bytes_ = 0;
  bool map_tried_ = false;
  int map_fd_ = -1;  // the mapped file, for its current size
  uint64_t pending_window_ = UINT64_MAX;  // the mapped window still held, if any
  // The second gathering thread (GatherPieces), started on the first large
  // batch and kept: starting a thread per batch cost ~8% of a 4 MiB gather.
  std::thread helper_;
  std::mutex helper_mu_;
  std::condition_variable helper_cv_;
  std::function<void()> helper_task_;  // set: a task waiting; cleared when taken
  bool helper_busy_ = false, helper_stop_ = false;
  std::map<uint64_t, std::pair<std::string, std::map<uint16_t, std::pair<uint64_t, uint64_t>>>> heaps_;
  std::string group_;
  Schema schema_;
  std::vector<Hdf5Column> cols_;
  int64_t rows_ = -1;
  std::string first_dataset_;
  FileInfo info_;
};

absl::Status Hdf5Source::AddDataset(const std::string& name, const std::string& path) {
  Id ds(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return absl::DataLossError(absl::StrCat(url_, ": cannot open dataset '", path, "'"));
  Id space(H5Dget_space(ds.get()), H5Sclose);
  Id type(H5Dget_type(ds.get()), H5Tclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 1 || rank > 8) {
    info_.other_objects.push_back(absl::StrCat(path, " (rank ", rank, ", not a column)"));
    return absl::OkStatus();
  }
  hsize_t dims[8];
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  int64_t rows = static_cast<int64_t>(dims[0]);
  if (rows_ >= 0 && rows != rows_) {
    return absl::InvalidArgumentError(absl::StrCat(url_, ": dataset '", path, "' has ", rows,
                                                   " rows but '", first_dataset_, "' has ", rows_,
                                                   "; the columns of a group need the same length"));
  }
  Shape inner;
  for (int i = 1; i < rank; ++i) inner.push_back(static_cast<int64_t>(dims[i]));
  DType dtype;
  hid_t native;
  std::vector<Column> new_cols;
  std::vector<Hdf5Column> new_h;
  H5T_class_t cls = H5Tget_class(type.get());
  if (NumericType(type.get(), &dtype, &native)) {
    Column c{name, dtype, inner, false, TypeText(type.get())};
    new_cols.push_back(c);
    new_h.push_back({path, "", native, inner, false});
  } else if (cls == H5T_VLEN && rank == 1) {
    Id base(H5Tget_super(type.get()), H5Tclose);
    if (!NumericType(base.get(), &dtype, &native)) {
      return absl::UnimplementedError(absl::StrCat(url_, ": dataset '", path, "' of type vlen<",
                                                   TypeText(base.get()), "> is not supported"));
    }
    if (H5Tget_order(base.get()) != H5T_ORDER_LE || H5Tget_size(base.get()) != DTypeSize(dtype) ||
        dtype == DType::kBool) {
      return absl::UnimplementedError(absl::StrCat(url_, ": dataset '", path, "' of type vlen<",
                                                   TypeText(base.get()), "> (big-endian or bool items) is not supported"));
    }
    Column c{name, dtype, {}, true, absl::StrCat("vlen<", TypeText(base.get()), ">")};
    new_cols.push_back(c);
    new_h.push_back({path, "", native, {}, true});
  } else if (cls == H5T_COMPOUND) {
    int n = H5Tget_nmembers(type.get());
    for (int m = 0; m < n; ++m) {
      char* raw = H5Tget_member_name(type.get(), m);
      std::string member = raw ? raw : "";
      H5free_memory(raw);
      Id mt(H5Tget_member_type(type.get(), m), H5Tclose);
      Shape shape = inner;
      hid_t elem = mt.get();
      Id array_base;
      if (H5Tget_class(mt.get()) == H5T_ARRAY) {
        int ar = H5Tget_array_ndims(mt.get());
        hsize_t adims[8];
        if (ar < 1 || ar > 8) continue;
        H5Tget_array_dims2(mt.get(), adims);
        for (int i = 0; i < ar; ++i) shape.push_back(static_cast<int64_t>(adims[i]));
        array_base = Id(H5Tget_super(mt.get()), H5Tclose);
        elem = array_base.get();
      }
      if (!NumericType(elem, &dtype, &native)) {
        return absl::UnimplementedError(absl::StrCat(url_, ": member '", member, "' of compound dataset '",
                                                     path, "' has type ", TypeText(mt.get()),
                                                     ", which is not supported"));
      }
      Column c{member, dtype, shape, false, absl::StrCat(TypeText(elem), " in ", name)};
      new_cols.push_back(c);
      new_h.push_back({path, member, native, shape, false});
    }
  } else {
    return absl::UnimplementedError(absl::StrCat(url_, ": dataset '", path, "' of type ",
                                                 TypeText(type.get()), " is not supported"));
  }
  if (rows_ < 0) {
    rows_ = rows;
    first_dataset_ = path;
  }
  for (size_t i = 0; i < new_cols.size(); ++i) {
    if (schema_.IndexOf(new_cols[i].name) >= 0) new_cols[i].name = name + "." + new_cols[i].name;
    schema_.columns.push_back(new_cols[i]);
    cols_.push_back(new_h[i]);
  }
  return absl::OkStatus();
}

absl::Status Hdf5Source::Open(const std::string& group_path) {
  group_ = group_path.empty() ? "/" : group_path;
  Id group(H5Gopen2(file_.get(), group_.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) return absl::NotFoundError(absl::StrCat(url_, ": no group '", group_, "'"));
  std::vector<std::pair<std::string, H5O_type_t>> members;
  H5G_info_t ginfo;
  if (H5Gget_info(group.get(), &ginfo) < 0) return absl::DataLossError(absl::StrCat(url_, ": cannot list '", group_, "'"));
  if (ginfo.nlinks > 100000) return absl::ResourceExhaustedError(absl::StrCat(url_, ": too many objects"));
  for (hsize_t i = 0; i < ginfo.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0 || len > 4096) continue;
    std::string name(static_cast<size_t>(len), '\0');
    H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), len + 1, H5P_DEFAULT);
    H5O_info_t oinfo;
    if (H5Oget_info_by_name(group.get(), name.c_str(), &oinfo, H5P_DEFAULT) < 0) continue;
    members.emplace_back(name, oinfo.type);
  }
  for (const auto& [name, type] : members) {
    std::string path = group_ == "/" ? "/" + name : group_ + "/" + name;
    if (type == H5O_TYPE_DATASET) {
      absl::Status s = AddDataset(name, path);
      if (!s.ok()) return s;
    } else if (type == H5O_TYPE_GROUP) {
      info_.other_objects.push_back(absl::StrCat(path, " (group)"));
    }
  }
  if (schema_.columns.empty()) {
    return absl::NotFoundError(absl::StrCat(url_, ": group '", group_, "' holds no datasets to read",
                                            info_.other_objects.empty() ? "" : " (it holds ",
                                            absl::StrJoin(info_.other_objects, ", "),
                                            info_.other_objects.empty() ? "" : ")"));
  }
  info_.url = url_;
  info_.format = Format::kHdf5;
  info_.object = group_;
  info_.num_entries = rows_;
  hsize_t size = 0;
  H5Fget_filesize(file_.get(), &size);
  info_.file_bytes = size;
  return absl::OkStatus();
}

absl::StatusOr<const std::pair<std::string, std::map<uint16_t, std::pair<uint64_t, uint64_t>>>*>
Hdf5Source::Collection(uint64_t addr) {
  auto it = heaps_.find(addr);
  if (it != heaps_.end()) return &it->second;
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(url_, ": global heap collection at ", addr, ": ", why));
  };
  if (heaps_.size() > 4096) heaps_.clear();
  char head[16];
  if (addr > raw_->size() || raw_->size() - addr < 16) return bad("outside the file");
  absl::Status st = raw_->ReadAt(addr, 16, head);
  if (!st.ok()) return st;
  if (std::memcmp(head, "GCOL", 4) != 0) return bad("no GCOL signature");
  uint64_t size = 0;
  for (int i = 7; i >= 0; --i) size = (size << 8) | static_cast<uint8_t>(head[8 + i]);
  if (size < 16 || size > raw_->size() - addr || static_cast<int64_t>(size) > options_.max_object_bytes) {
    return bad(absl::StrCat("bad size ", size));
  }
  auto& entry = heaps_[addr];
  entry.first.assign(size, '\0');
  st = raw_->ReadAt(addr, size, entry.first.data());
  if (!st.ok()) return st;
  const std::string& b = entry.first;
  auto le = [&](uint64_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
    return v;
  };
  uint64_t pos = 16;
  while (pos + 16 <= size) {
    uint16_t index = static_cast<uint16_t>(le(pos, 2));
    uint64_t osize = le(pos + 8, 8);
    if (index == 0) break;  // free space to the end
    if (osize > size - pos - 16) return bad("object runs past the collection");
    entry.second[index] = {pos + 16, osize};
    pos += 16 + ((osize + 7) / 8) * 8;
  }
  return &entry;
}

absl::StatusOr<ColumnData> Hdf5Source::ReadVlen(hid_t ds, const Column& col, int64_t start, int64_t stop) {
  ColumnData out;
  haddr_t addr = H5Dget_offset(ds);
  if (addr == HADDR_UNDEF) {
    return absl::UnimplementedError(absl::StrCat(url_, ": '", col.name,
                                                 "': chunked or compressed vlen datasets are not supported"));
  }
  Id fcpl(H5Fget_create_plist(file_.get()), H5Pclose);
  size_t sizeof_addr = 0, sizeof_size = 0;
  hsize_t userblock = 0;
  H5Pget_sizes(fcpl.get(), &sizeof_addr, &sizeof_size);
  H5Pget_userblock(fcpl.get(), &userblock);
  if (sizeof_addr != 8 || sizeof_size != 8) {
    return absl::UnimplementedError(absl::StrCat(url_, ": vlen data with ", sizeof_addr, "-byte addresses is not supported"));
  }
  if (!raw_) {
    auto f = OpenFile(url_);
    if (!f.ok()) return f.status();
    raw_ = std::move(*f);
  }
  uint64_t n = static_cast<uint64_t>(stop - start);
  uint64_t at = static_cast<uint64_t>(addr) + static_cast<uint64_t>(start) * 16;
  if (at > raw_->size() || n * 16 > raw_->size() - at) {
    return absl::DataLossError(absl::StrCat(url_, ": vlen rows of '", col.name, "' lie outside the file"));
  }
  std::string refs(n * 16, '\0');
  absl::Status st = raw_->ReadAt(at, refs.size(), refs.data());
  if (!st.ok()) return st;
  auto le = [&](uint64_t p, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(refs[p + i]);
    return v;
  };
  size_t item = DTypeSize(col.dtype);
  std::string values;
  out.offsets.push_back(0);
  for (uint64_t r = 0; r < n; ++r) {
    uint64_t len = le(r * 16, 4), heap = le(r * 16 + 4, 8), index = le(r * 16 + 12, 4);
    if (len > 0) {
      auto c = Collection(heap + userblock);
      if (!c.ok()) return c.status();
      auto obj = (*c)->second.find(static_cast<uint16_t>(index));
      if (index > 0xFFFF || obj == (*c)->second.end() || len * item > obj->second.second) {
        return absl::DataLossError(absl::StrCat(url_, ": row ", start + r, " of '", col.name,
                                                "' refers to a missing or short heap object"));
      }
      if (values.size() + len * item > static_cast<size_t>(options_.max_object_bytes)) {
        return absl::ResourceExhaustedError(absl::StrCat(url_, ": '", col.name, "' holds too many items"));
      }
      values.append((*c)->first.data() + obj->second.first, len * item);
    }
    out.offsets.push_back(out.offsets.back() + static_cast<int64_t>(len));
  }
  out.values = Tensor::Empty(col.dtype, {out.offsets.back()});
  if (!values.empty()) std::memcpy(out.values.raw_mutable_data(), values.data(), values.size());
  return out;
}

absl::StatusOr<hid_t> Hdf5Source::Dataset(const std::string& path) {
  auto it = datasets_.find(path);
  if (it != datasets_.end()) return it->second.get();
  Id ds(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return absl::DataLossError(absl::StrCat(url_, ": cannot open dataset '", path, "'"));
  hid_t id = ds.get();
  datasets_.emplace(path, std::move(ds));
  return id;
}

absl::StatusOr<ColumnData> Hdf5Source::ReadMember(hid_t ds, hid_t fspace, const Hdf5Column& hc,
                                                  const Column& col, int64_t start, int64_t stop) {
  CompoundRows& cr = compounds_[hc.dataset];
  if (!cr.mtype.ok()) {
    // Every member of this dataset, packed in column order.
    std::vector<std::pair<const Hdf5Column*, Id>> members;
    for (const Hdf5Column& m : cols_) {
      if (m.dataset != hc.dataset || m.member.empty()) continue;
      Id elem;
      if (!m.item_shape.empty()) {
        std::vector<hsize_t> adims(m.item_shape.begin(), m.item_shape.end());
        elem = Id(H5Tarray_create2(m.native, static_cast<unsigned>(adims.size()), adims.data()), H5Tclose);
      } else {
        elem = Id(H5Tcopy(m.native), H5Tclose);
      }
      cr.offset[m.member] = cr.row_bytes;
      cr.row_bytes += H5Tget_size(elem.get());
      members.emplace_back(&m, std::move(elem));
    }
    cr.mtype = Id(H5Tcreate(H5T_COMPOUND, cr.row_bytes), H5Tclose);
    for (const auto& [m, elem] : members) H5Tinsert(cr.mtype.get(), m->member.c_str(), cr.offset[m->member], elem.get());
  }
  const int64_t n = stop - start;
  if (cr.start != start || cr.stop != stop) {
    cr.start = cr.stop = -1;
    cr.block.reset();
    if (static_cast<int64_t>(cr.row_bytes) > 0 && n > options_.max_object_bytes / static_cast<int64_t>(cr.row_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(url_, ": reading ", n, " rows of '", hc.dataset,
                                                       "' needs more than the limit of ", options_.max_object_bytes,
                                                       " bytes; read fewer entries at a time"));
    }
    // The member columns one after another, each 64-byte aligned. Columns
    // of 4 KiB and more are staggered so that column k starts 3k cache lines
    // into a 4 KiB page: at the same offset in every page (a batch of 65536
    // float32 is 256 KiB), the rows being written of all the columns would
    // fall into one set of the L1 and L2 caches, which hold 8 lines a set,
    // and evict one another's lines half written.
    std::vector<Gather> gathers;
    std::vector<size_t> at_of;
    size_t total = 0;
    for (size_t m = 0; m < cols_.size(); ++m) {
      if (cols_[m].dataset != hc.dataset || cols_[m].member.empty()) continue;
      const Column& c = schema_.columns[m];
      const size_t item = static_cast<size_t>(NumElements(c.shape)) * DTypeSize(c.dtype);
      const size_t bytes = static_cast<size_t>(n) * item;
      if (bytes >= 4096) {
        const size_t want = (3 * gathers.size() % 64) * 64;
        total += (want + 4096 - total % 4096) % 4096;
      }
      if (cr.column_at.size() < cols_.size()) cr.column_at.resize(cols_.size());
      cr.column_at[m] = total;
      at_of.push_back(total);
      gathers.push_back({cr.offset[cols_[m].member], item, nullptr});
      total += (bytes + 63) / 64 * 64;
    }
    cr.block = cr.pool.Get(total);
    for (size_t g = 0; g < gathers.size(); ++g) gathers[g].to = static_cast<char*>(cr.block.get()) + at_of[g];
    // Batches past twice a core's L2 cache are written with non-temporal
    // stores: most of such a batch would be evicted to memory before it is
    // read, after having been read from memory into the cache to be written.
    constexpr size_t kStreamBytes = size_t{2} << 20;
    const bool stream = total >= kStreamBytes;
    // The rows are read kPackedBytes at a time, and every member is gathered
    // from them right after each read: the packed rows stay in the core's L2
    // cache between the read and the gathers (one pass over memory, as a
    // plain read of the rows would be), where gathering each member from a
    // whole batch of packed rows streamed the batch through memory once per
    // member. The packed buffer is reused from batch to batch.
    if (!cr.direct.checked) CheckDirect(ds, cr);
    bool done = false;
    if (cr.direct.ok) {
      std::vector<Gather> from_file = gathers;
      for (size_t m = 0, g = 0; m < cols_.size(); ++m) {
        if (cols_[m].dataset != hc.dataset || cols_[m].member.empty()) continue;
        from_file[g++].from = cr.direct.offset[cols_[m].member];
      }
      done = ReadDirect(ds, cr, start, n, from_file, stream);
    }
    constexpr size_t kPackedBytes = size_t{256} << 10;
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(kPackedBytes / std::max<size_t>(cr.row_bytes, 1)));
    if (!done) cr.rows.resize(static_cast<size_t>(std::min(n, step)) * cr.row_bytes);
    const size_t stride = cr.row_bytes;
    for (int64_t s = 0; s < n && !done; s += step) {
      const int64_t m = std::min(step, n - s);
      hsize_t off = static_cast<hsize_t>(start + s), cnt = static_cast<hsize_t>(m);
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &off, nullptr, &cnt, nullptr);
      Id sub(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
      if (H5Dread(ds, cr.mtype.get(), sub.get(), fspace, H5P_DEFAULT, cr.rows.data()) < 0) {
        return absl::DataLossError(absl::StrCat(url_, ": reading '", col.name, "' from dataset '", hc.dataset,
                                                "' failed (corrupt or truncated file)"));
      }
      GatherMembers(cr.rows.data(), stride, m, gathers, static_cast<size_t>(s), stream);
    }
    cr.handed_out.assign(cols_.size(), false);
    cr.start = start, cr.stop = stop;
  }
  return CutMember(cr, static_cast<int>(&hc - cols_.data()), n);
}

ColumnData Hdf5Source::CutMember(CompoundRows& cr, int column, int64_t n) {
  const Column& col = schema_.columns[column];
  Shape shape{n};
  for (int64_t d : col.shape) shape.push_back(d);
  ColumnData out;
  char* at = static_cast<char*>(cr.block.get()) + cr.column_at[column];
  if (!cr.handed_out[column]) {
    cr.handed_out[column] = true;
    out.values = Tensor::Wrap(col.dtype, shape, at, cr.block);
  } else {  // read again: a buffer of its own, never one the caller holds
    out.values = NewColumnTensor(col.dtype, shape);
    std::memcpy(out.values.raw_mutable_data(), at, out.values.nbytes());
  }
  return out;
}

void Hdf5Source::CheckDirect(hid_t ds, CompoundRows& cr) {
  CompoundRows::Direct& d = cr.direct;
  d.checked = true;
  Id dcpl(H5Dget_create_plist(ds), H5Pclose);
  Id ftype(H5Dget_type(ds), H5Tclose);
  if (!dcpl.ok() || !ftype.ok() || H5Pget_nfilters(dcpl.get()) != 0 || H5Tget_class(ftype.get()) != H5T_COMPOUND) {
    return;
  }
  d.row_bytes = H5Tget_size(ftype.get());
  const int nmembers = H5Tget_nmembers(cr.mtype.get());
  for (int i = 0; i < nmembers; ++i) {
    char* name = H5Tget_member_name(cr.mtype.get(), static_cast<unsigned>(i));
    if (name == nullptr) return;
    const std::string member(name);
    H5free_memory(name);
    const int fi = H5Tget_member_index(ftype.get(), member.c_str());
    if (fi < 0) return;
    Id want(H5Tget_member_type(cr.mtype.get(), static_cast<unsigned>(i)), H5Tclose);
    Id stored(H5Tget_member_type(ftype.get(), static_cast<unsigned>(fi)), H5Tclose);
    const size_t at = H5Tget_member_offset(ftype.get(), static_cast<unsigned>(fi));
    if (H5Tequal(want.get(), stored.get()) <= 0 || at + H5Tget_size(want.get()) > d.row_bytes) return;
    d.offset[member] = at;
  }
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout == H5D_CHUNKED) {
    hsize_t chunk[1] = {0};
    if (H5Pget_chunk(dcpl.get(), 1, chunk) != 1 || chunk[0] == 0) return;
    d.chunk_rows = static_cast<int64_t>(chunk[0]);
  } else if (layout == H5D_CONTIGUOUS) {
    const haddr_t address = H5Dget_offset(ds);
    if (address == HADDR_UNDEF) return;
    d.address = address;
  } else {
    return;
  }
  if (!map_tried_) {
    map_tried_ = true;
    std::string path = url_;
    if (path.rfind("file://", 0) == 0) path = path.substr(7);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && ::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        map_ = static_cast<const char*>(p);
        map_bytes_ = static_cast<size_t>(st.st_size);
      }
    }
    if (map_ != nullptr) {
      map_fd_ = fd;
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  d.ok = map_ != nullptr;
}

bool Hdf5Source::ReadDirect(hid_t ds, CompoundRows& cr, int64_t start, int64_t n,
                            const std::vector<Gather>& gathers, bool stream) {
  CompoundRows::Direct& d = cr.direct;
  const int64_t stop = start + n;
  // Touching a mapped page past the end of a file that was cut short since
  // it was mapped is a SIGBUS, not an error: a file shorter than its mapping
  // is read through HDF5 (which reports it) instead.
  struct stat st;
  if (::fstat(map_fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) < map_bytes_) return false;
  // First the pieces of the batch, one per chunk (the chunk lookups are HDF5
  // calls, on this thread), then the gathers, split between threads for a
  // large batch, then the mappings dropped.
  std::vector<CompoundRows::Piece>& pieces = d.pieces;
  pieces.clear();
  for (int64_t r = start; r < stop;) {
    uint64_t address = d.address;
    int64_t first = 0, end = stop;
    if (d.chunk_rows > 0) {
      first = r / d.chunk_rows * d.chunk_rows;
      end = std::min(first + d.chunk_rows, stop);
      auto known = d.chunk_address.find(first / d.chunk_rows);
      if (known != d.chunk_address.end()) {
        address = known->second;
      } else {
        hsize_t offset[1] = {static_cast<hsize_t>(first)};
        unsigned filter_mask = 0;
        haddr_t chunk_address = HADDR_UNDEF;
        hsize_t chunk_bytes = 0;
        if (H5Dget_chunk_info_by_coord(ds, offset, &filter_mask, &chunk_address, &chunk_bytes) < 0 ||
            chunk_address == HADDR_UNDEF || chunk_bytes != static_cast<hsize_t>(d.chunk_rows) * d.row_bytes) {
          return false;
        }
        address = chunk_address;
        constexpr size_t kMaxChunks = size_t{1} << 20;  // 16 MiB or so of addresses at most
        if (d.chunk_address.size() >= kMaxChunks) d.chunk_address.clear();
        d.chunk_address.emplace(first / d.chunk_rows, address);
      }
    }
    // Every byte gathered lies inside the mapped file.
    const uint64_t bytes = static_cast<uint64_t>(end - first) * d.row_bytes;
    if (address > map_bytes_ || bytes > map_bytes_ - address) return false;
    const uint64_t from = address + static_cast<uint64_t>(r - first) * d.row_bytes;
    pieces.push_back({from, end - r, static_cast<size_t>(r - start)});
    r = end;
  }
  GatherPieces(pieces, d.row_bytes, n, gathers, stream);
  for (const CompoundRows::Piece& p : pieces) {
    const uint64_t from = p.from;
    const uint64_t length = static_cast<uint64_t>(p.rows) * d.row_bytes;
    // Drop the page mappings of what was read (the page cache keeps the
    // pages): the process's resident size stays that of its batches, not of
    // the file. Whole 2 MiB windows, since a page fault also maps the pages
    // around the faulting one (fault-around); the window holding the range's
    // end stays mapped while the next range goes on in it, and is dropped
    // once a range does not.
    constexpr uint64_t kWindow = uint64_t{2} << 20;
    const uint64_t lo = from / kWindow * kWindow;
    const uint64_t hi = (from + length) / kWindow * kWindow;
    if (pending_window_ != UINT64_MAX && pending_window_ != lo) {
      ::madvise(const_cast<char*>(map_) + pending_window_, std::min(kWindow, map_bytes_ - pending_window_),
                MADV_DONTNEED);
    }
    if (hi > lo) ::madvise(const_cast<char*>(map_) + lo, hi - lo, MADV_DONTNEED);
    pending_window_ = (from + length) % kWindow != 0 ? hi : UINT64_MAX;
  }
  return true;
}

void Hdf5Source::GatherPieces(const std::vector<CompoundRows::Piece>& pieces, size_t stride, int64_t n,
                              const std::vector<Gather>& gathers, bool stream) {
  auto gather = [&](int64_t lo, int64_t hi) {  // batch rows [lo, hi)
    for (const CompoundRows::Piece& p : pieces) {
      const int64_t a = std::max<int64_t>(lo, static_cast<int64_t>(p.first));
      const int64_t b = std::min<int64_t>(hi, static_cast<int64_t>(p.first) + p.rows);
      if (a >= b) continue;
      GatherMembers(map_ + p.from + static_cast<uint64_t>(a - static_cast<int64_t>(p.first)) * stride, stride, b - a,
                    gathers, static_cast<size_t>(a), stream);
    }
  };
  constexpr uint64_t kSplitBytes = uint64_t{4} << 20;
  if (options_.gather_threads == 1 || static_cast<uint64_t>(n) * stride < kSplitBytes) {
    gather(0, n);
    return;
  }
  // (glibc reads /sys for the core count on every call: once per process.)
  static const unsigned cores = std::thread::hardware_concurrency();
  if (options_.gather_threads <= 0 && cores < 2) {
    gather(0, n);
    return;
  }
  // Two halves split at a multiple of 256 rows, where the gathers' tiles
  // and whole cache lines of every column begin: no line is written by
  // both threads. Each ends its non-temporal stores with a fence before the
  // join.
  const int64_t mid = (n / 2) / 256 * 256;
  if (!helper_.joinable()) {
    helper_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(helper_mu_);
      for (;;) {
        helper_cv_.wait(lock, [&] { return helper_stop_ || helper_task_; });
        if (helper_stop_) return;
        std::function<void()> task = std::move(helper_task_);
        helper_task_ = nullptr;
        lock.unlock();
        task();
        lock.lock();
        helper_busy_ = false;
        helper_cv_.notify_all();
      }
    });
  }
  {
    std::lock_guard<std::mutex> lock(helper_mu_);
    helper_task_ = [&] { gather(mid, n); };
    helper_busy_ = true;
  }
  helper_cv_.notify_all();
  gather(0, mid);
  std::unique_lock<std::mutex> lock(helper_mu_);
  helper_cv_.wait(lock, [&] { return !helper_busy_; });
}

absl::StatusOr<ColumnData> Hdf5Source::ReadColumn(int column, int64_t start, int64_t stop) {
  const Hdf5Column& hc = cols_[column];
  const Column& col = schema_.columns[column];
  if (!hc.member.empty() && stop > start) {
    // The compound's rows of this batch are gathered already (by the read of
    // another member): no HDF5 calls.
    auto c = compounds_.find(hc.dataset);
    if (c != compounds_.end() && c->second.start == start && c->second.stop == stop && c->second.block) {
      return CutMember(c->second, column, stop - start);
    }
  }
  auto dsid = Dataset(hc.dataset);
  if (!dsid.ok()) return dsid.status();
  Id fspace(H5Dget_space(*dsid), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(fspace.get());
  hsize_t dims[8];
  H5Sget_simple_extent_dims(fspace.get(), dims, nullptr);
  hsize_t offset[8] = {0}, count[8];
  for (int i = 0; i < rank; ++i) count[i] = dims[i];
  offset[0] = static_cast<hsize_t>(start);
  count[0] = static_cast<hsize_t>(stop - start);
  ColumnData out;
  if (stop == start) {
    Shape shape{0};
    if (!col.jagged) for (int64_t d : col.shape) shape.push_back(d);
    out.values = Tensor::Empty(col.dtype, shape);
    if (col.jagged) out.offsets = {0};
    return out;
  }
  // Rows come from the file: bound what one read may allocate.
  int64_t per_row = hc.vlen ? static_cast<int64_t>(sizeof(hvl_t)) : NumElements(col.shape) * DTypeSize(col.dtype);
  if (per_row > 0 && (stop - start) > options_.max_object_bytes / per_row) {
    return absl::ResourceExhaustedError(absl::StrCat(url_, ": reading ", stop - start, " rows of '", col.name,
                                                     "' needs more than the limit of ", options_.max_object_bytes,
                                                     " bytes; read fewer entries at a time"));
  }
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, offset, nullptr, count, nullptr);
  Id mspace(H5Screate_simple(rank, count, nullptr), H5Sclose);
  auto fail = [&]() {
    return absl::DataLossError(absl::StrCat(url_, ": reading '", col.name, "' from dataset '",
                                            hc.dataset, "' failed (corrupt or truncated file)"));
  };
  if (hc.vlen) return ReadVlen(*dsid, col, start, stop);
  // Compounds of one-dimensional datasets: all members at once.
  if (!hc.member.empty() && rank == 1) return ReadMember(*dsid, fspace.get(), hc, col, start, stop);
  Shape shape{stop - start};
  for (int64_t d : col.shape) shape.push_back(d);
  {
    // From the column's pool: a block of an earlier batch once released.
    if (pools_.size() < cols_.size()) pools_.resize(cols_.size());
    const size_t bytes = static_cast<size_t>(NumElements(shape)) * DTypeSize(col.dtype);
    std::shared_ptr<void> block = pools_[column].Get(std::max<size_t>(bytes, 1));
    void* at = block.get();
    out.values = Tensor::Wrap(col.dtype, shape, at, std::move(block));
  }
  Id mtype;
  hid_t read_type = hc.native;
  if (!hc.member.empty()) {
    // A compound with just this member: HDF5 converts by member name.
    hid_t elem = hc.native;
    Id array;
    Shape member_shape(col.shape.begin() + (rank - 1), col.shape.end());
    if (!member_shape.empty()) {
      std::vector<hsize_t> adims(member_shape.begin(), member_shape.end());
      array = Id(H5Tarray_create2(hc.native, static_cast<unsigned>(adims.size()), adims.data()), H5Tclose);
      elem = array.get();
    }
    mtype = Id(H5Tcreate(H5T_COMPOUND, H5Tget_size(elem)), H5Tclose);
    H5Tinsert(mtype.get(), hc.member.c_str(), 0, elem);
    read_type = mtype.get();
  }
  if (H5Dread(*dsid, read_type, mspace.get(), fspace.get(), H5P_DEFAULT, out.values.raw_mutable_data()) < 0) {
    return fail();
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Source>> OpenHdf5Source(const std::string& url,
                                                       const DatasetOptions& options) {
  QuietErrors();
  std::string path = url;
  if (path.rfind("file://", 0) == 0) path = path.substr(7);
  if (path.find("://") != std::string::npos) {
    return absl::UnimplementedError(absl::StrCat(url, ": HDF5 files are read from local paths only"));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(url, ": not an HDF5 file (or unreadable)"));
  }
  Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.ok()) return absl::DataLossError(absl::StrCat(url, ": cannot open the HDF5 file"));
  auto source = std::make_unique<Hdf5Source>(url, std::move(file), options);
  absl::Status s = source->Open(options.tree);
  if (!s.ok()) return s;
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace hepml::data
