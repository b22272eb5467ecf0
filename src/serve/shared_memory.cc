#include "serve/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "serve/model_config.h"
#include "serve/tensor_codec.h"

namespace hepml::serve {

class SharedMemoryMapping {
 public:
  SharedMemoryMapping(void* base, size_t length, char* data) : base_(base), length_(length), data_(data) {}
  ~SharedMemoryMapping() { munmap(base_, length_); }
  char* data() const { return data_; }

 private:
  void* base_;
  size_t length_;
  char* data_;  // the region's first byte, inside [base_, base_ + length_)
};

absl::Status SharedMemoryManager::Register(const std::string& name, const std::string& key, uint64_t offset,
                                           uint64_t byte_size) {
  if (name.empty()) return absl::InvalidArgumentError("a shared memory region needs a name");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (regions_.count(name))
      return absl::AlreadyExistsError(
          absl::StrCat("shared memory region '", name, "' is already registered (unregister it first)"));
  }
  std::string where = absl::StrCat("shared memory region '", name, "' (key '", key, "')");
  if (byte_size == 0) return absl::InvalidArgumentError(absl::StrCat(where, ": byte_size is 0"));
  if (offset > UINT64_MAX - byte_size)
    return absl::InvalidArgumentError(absl::StrCat(where, ": offset ", offset, " + byte_size ", byte_size, " overflows"));
  int fd = shm_open(key.c_str(), O_RDWR, 0);
  if (fd < 0)
    return absl::InvalidArgumentError(absl::StrCat(where, ": cannot open the shared memory object: ", std::strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(where, ": cannot stat the shared memory object: ", std::strerror(err)));
  }
  uint64_t object_size = static_cast<uint64_t>(st.st_size);
  if (offset + byte_size > object_size) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(where, ": offset ", offset, " + byte_size ", byte_size,
                                                   " runs past the object's ", object_size, " bytes"));
  }
  // mmap offsets must be page-aligned: map from the page holding `offset`.
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t start = offset - offset % page;
  size_t length = static_cast<size_t>(offset + byte_size - start);
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(start));
  int err = errno;
  close(fd);  // the mapping keeps the object
  if (base == MAP_FAILED)
    return absl::InvalidArgumentError(absl::StrCat(where, ": cannot map it: ", std::strerror(err)));
  auto mapping = std::make_shared<const SharedMemoryMapping>(base, length, static_cast<char*>(base) + (offset - start));
  std::lock_guard<std::mutex> lock(mu_);
  // Checked again: another caller may have registered the name meanwhile.
  if (regions_.count(name))
    return absl::AlreadyExistsError(
        absl::StrCat("shared memory region '", name, "' is already registered (unregister it first)"));
  regions_[name] = Region{{name, key, offset, byte_size}, std::move(mapping)};
  return absl::OkStatus();
}

absl::Status SharedMemoryManager::Unregister(const std::string& name) {
  std::map<std::string, Region> dropped;  // unmapped (if unused) outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  if (name.empty()) {
    dropped.swap(regions_);
  } else {
    auto it = regions_.find(name);
    if (it != regions_.end()) {
      dropped.insert(regions_.extract(it));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SharedMemoryRegionStatus>> SharedMemoryManager::Status(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SharedMemoryRegionStatus> out;
  if (name.empty()) {
    for (const auto& [n, r] : regions_) out.push_back(r.status);
    return out;
  }
  auto it = regions_.find(name);
  if (it == regions_.end())
    return absl::NotFoundError(absl::StrCat("no shared memory region '", name, "' is registered"));
  out.push_back(it->second.status);
  return out;
}

absl::StatusOr<SharedMemoryView> SharedMemoryManager::Slice(const std::string& what, const std::string& name,
                                                            uint64_t offset, uint64_t size) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regions_.find(name);
  if (it == regions_.end())
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": shared memory region '", name, "' is not registered"));
  uint64_t region_size = it->second.status.byte_size;
  if (offset > region_size || size > region_size - offset)
    return absl::InvalidArgumentError(absl::StrCat(what, ": shared_memory_offset ", offset,
                                                   " + shared_memory_byte_size ", size, " runs past the ",
                                                   region_size, " bytes of shared memory region '", name, "'"));
  SharedMemoryView view;
  view.mapping = it->second.mapping;
  view.data = it->second.mapping->data() + offset;
  view.size = static_cast<size_t>(size);
  return view;
}

absl::StatusOr<Tensor> TensorFromSharedMemory(const std::string& what, DType dtype, const Shape& shape,
                                              const SharedMemoryManager& shm, const SharedMemoryRef& ref) {
  HEPML_ASSIGN_OR_RETURN(SharedMemoryView view, shm.Slice(what, ref.region, ref.offset, ref.byte_size));
  if (dtype != DType::kString) {
    uint64_t want = static_cast<uint64_t>(NumElements(shape)) * DTypeSize(dtype);
    if (ref.byte_size != want)
      return absl::InvalidArgumentError(absl::StrCat(what, ": shared_memory_byte_size ", ref.byte_size,
                                                     " does not match shape ", ShapeToString(shape), " of ",
                                                     ProtocolDataTypeName(dtype), " (", want, " bytes)"));
  }
  return TensorFromRaw(what, dtype, shape, std::string_view(view.data, view.size));
}

absl::Status WriteSharedMemoryOutput(const SharedMemoryOutput& out, std::string_view raw) {
  if (raw.size() > out.view.size)
    return absl::InvalidArgumentError(absl::StrCat("output '", out.name, "': its ", raw.size(),
                                                   " bytes do not fit the shared_memory_byte_size ", out.view.size,
                                                   " given for shared memory region '", out.ref.region, "'"));
  if (!raw.empty()) std::memcpy(out.view.data, raw.data(), raw.size());
  return absl::OkStatus();
}

absl::Status CudaSharedMemoryUnsupported() {
  return absl::UnimplementedError(
      "CUDA shared memory is not supported on this server (it runs on CPUs); use system shared memory");
}

}  // namespace hepml::serve
