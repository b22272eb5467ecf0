// Per-thread reusable scratch memory for kernels (im2col matrices, GEMM
// packing buffers), so that hot paths allocate nothing once warm.
//
//   ScratchBuffer<float> col(rows * cols);  // contents unspecified
//   Fill(col.data()); ...
//
// Each thread keeps a pool of 64-byte aligned blocks. A buffer takes a block
// from its thread's pool (growing it when too small) and gives it back when
// it goes out of scope. Buffers nest: a TBB thread that steals another task
// while it waits inside a parallel loop gets a different block for that
// task, never the one its suspended caller is using.
//
// REQUIRES: T is trivially copyable and destructible; a buffer is used and
// destroyed on the thread that made it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <vector>

namespace hepml::ops {

namespace scratch_internal {

struct Block {
  void* data = nullptr;
  size_t bytes = 0;
};

inline constexpr std::align_val_t kAlign{64};

// Blocks not lent out, per thread; freed when the thread ends.
class Pool {
 public:
  ~Pool() {
    for (Block& b : free_) ::operator delete(b.data, kAlign);
  }
  Block Take(size_t bytes) {
    Block b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    }
    if (b.bytes < bytes) {
      if (b.data != nullptr) ::operator delete(b.data, kAlign);
      b.bytes = std::max(bytes, b.bytes * 2);
      b.data = ::operator new(b.bytes, kAlign);
    }
    return b;
  }
  void Give(Block b) { free_.push_back(b); }

 private:
  std::vector<Block> free_;
};

inline Pool& ThreadPool() {
  thread_local Pool pool;
  return pool;
}

}  // namespace scratch_internal

template <typename T>
class ScratchBuffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  explicit ScratchBuffer(int64_t n)
      : block_(scratch_internal::ThreadPool().Take(
            sizeof(T) * static_cast<size_t>(std::max<int64_t>(n, 1)))) {}
  ~ScratchBuffer() { scratch_internal::ThreadPool().Give(block_); }
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;

  T* data() { return static_cast<T*>(block_.data); }

 private:
  scratch_internal::Block block_;
};

}  // namespace hepml::ops
