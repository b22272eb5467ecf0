// Triton's system shared-memory extension: clients register named regions
// of POSIX shared-memory objects (shm_open key, offset, byte size) and then
// pass input and output tensors through them instead of the request body.
// One registry serves both front ends (HTTP and gRPC share the names).
//
//   SharedMemoryManager shm;
//   shm.Register("in0", "/my_key", 0, 4096);           // maps the bytes
//   auto view = shm.Slice("input 'x'", "in0", 64, 32);  // a checked view
//   // view->data: 32 bytes; the mapping stays valid while `view` lives,
//   // even if the region is unregistered meanwhile.
//   shm.Unregister("in0");
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hepml/status.h"
#include "hepml/tensor.h"

namespace hepml::serve {

struct SharedMemoryRegionStatus {
  std::string name;
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// A mapped region; unmapped when the last reference goes.
class SharedMemoryMapping;

// A checked slice of a registered region. Holding it keeps the mapping.
struct SharedMemoryView {
  std::shared_ptr<const SharedMemoryMapping> mapping;
  char* data = nullptr;
  size_t size = 0;
};

// A tensor's shared-memory parameters as a request carries them.
struct SharedMemoryRef {
  std::string region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

class SharedMemoryManager {
 public:
  SharedMemoryManager() = default;
  SharedMemoryManager(const SharedMemoryManager&) = delete;
  SharedMemoryManager& operator=(const SharedMemoryManager&) = delete;

  // Opens `key` (shm_open, read-write) and maps [offset, offset+byte_size).
  // ALREADY_EXISTS when `name` is registered; INVALID_ARGUMENT naming the
  // key when it cannot be opened or the object is smaller than
  // offset+byte_size, or byte_size is 0.
  absl::Status Register(const std::string& name, const std::string& key, uint64_t offset, uint64_t byte_size);
  // Empty `name`: every region. A name not registered is no error (as
  // Triton). Requests that hold a view keep their mapping until they end.
  absl::Status Unregister(const std::string& name);
  // Empty `name`: every region, by name; else that one (NOT_FOUND if none).
  absl::StatusOr<std::vector<SharedMemoryRegionStatus>> Status(const std::string& name) const;

  // `size` bytes at `offset` into region `name`, for the tensor `what`:
  // INVALID_ARGUMENT naming it and the numbers when the region is unknown or
  // the slice runs past the region's end.
  absl::StatusOr<SharedMemoryView> Slice(const std::string& what, const std::string& name, uint64_t offset,
                                         uint64_t size) const;

 private:
  struct Region {
    SharedMemoryRegionStatus status;
    std::shared_ptr<const SharedMemoryMapping> mapping;
  };
  mutable std::mutex mu_;
  std::map<std::string, Region> regions_;
};

// An input tensor read from shared memory: the slice `ref` names, whose
// byte size must be the size of `dtype` x `shape` (INVALID_ARGUMENT naming
// `what` and the numbers otherwise). The bytes are copied.
absl::StatusOr<Tensor> TensorFromSharedMemory(const std::string& what, DType dtype, const Shape& shape,
                                              const SharedMemoryManager& shm, const SharedMemoryRef& ref);

// A requested output to be written into shared memory.
struct SharedMemoryOutput {
  std::string name;
  SharedMemoryRef ref;
  SharedMemoryView view;  // checked when the request was read
};
// Writes `raw` (the output's bytes) into its slice: INVALID_ARGUMENT naming
// the output when they do not fit.
absl::Status WriteSharedMemoryOutput(const SharedMemoryOutput& out, std::string_view raw);

// The reply to any CUDA shared-memory request: this server has no GPU.
absl::Status CudaSharedMemoryUnsupported();

}  // namespace hepml::serve
