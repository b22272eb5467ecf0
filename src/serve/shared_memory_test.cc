#include "serve/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace hepml::serve {
namespace {

// A POSIX shared-memory object of `size` bytes, removed at the end.
struct ShmObject {
  std::string key;
  explicit ShmObject(size_t size) {
    key = "/hepml-shm-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    int fd = shm_open(key.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }
  ~ShmObject() { shm_unlink(key.c_str()); }
  static inline int counter = 0;
};

TEST(SharedMemoryTest, RegisterSliceStatusUnregister) {
  ShmObject obj(10000);
  SharedMemoryManager shm;
  // Offsets need not be page-aligned.
  ASSERT_TRUE(shm.Register("r", obj.key, 4100, 64).ok());
  auto view = shm.Slice("input 'x'", "r", 8, 16);
  ASSERT_TRUE(view.ok()) << view.status();
  std::memcpy(view->data, "0123456789abcdef", 16);
  // Another registration of the same bytes sees the write.
  ASSERT_TRUE(shm.Register("whole", obj.key, 0, 10000).ok());
  auto whole = shm.Slice("t", "whole", 4108, 16);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(std::string(whole->data, 16), "0123456789abcdef");

  auto status = shm.Status("");
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].name, "r");
  EXPECT_EQ((*status)[0].key, obj.key);
  EXPECT_EQ((*status)[0].offset, 4100u);
  EXPECT_EQ((*status)[0].byte_size, 64u);
  EXPECT_EQ(shm.Status("nope").status().code(), absl::StatusCode::kNotFound);

  EXPECT_TRUE(shm.Unregister("r").ok());
  EXPECT_TRUE(shm.Unregister("never-registered").ok());  // as Triton: no error
  EXPECT_EQ(shm.Status("")->size(), 1u);
  EXPECT_TRUE(shm.Unregister("").ok());
  EXPECT_TRUE(shm.Status("")->empty());
}

TEST(SharedMemoryTest, ViewOutlivesUnregister) {
  ShmObject obj(4096);
  SharedMemoryManager shm;
  ASSERT_TRUE(shm.Register("r", obj.key, 0, 4096).ok());
  auto view = shm.Slice("output 'y'", "r", 100, 200);
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(shm.Unregister("r").ok());
  // The request holding the view still writes into mapped memory (it would
  // crash if the region had been unmapped).
  std::memset(view->data, 7, view->size);
  EXPECT_EQ(view->data[199], 7);
  EXPECT_EQ(view.value().mapping.use_count(), 1);
  // New requests are refused.
  auto again = shm.Slice("output 'y'", "r", 0, 1);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("'r' is not registered"), std::string::npos) << again.status();
}

TEST(SharedMemoryTest, ErrorsNameWhatAndTheNumbers) {
  ShmObject obj(1000);
  SharedMemoryManager shm;
  auto missing = shm.Register("m", "/hepml-shm-test-missing-key", 0, 10);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("hepml-shm-test-missing-key"), std::string::npos) << missing;
  auto past = shm.Register("p", obj.key, 900, 200);
  EXPECT_EQ(past.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(past.message().find("1000 bytes"), std::string::npos) << past;
  EXPECT_EQ(shm.Register("z", obj.key, 0, 0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(shm.Register("r", obj.key, 0, 100).ok());
  auto twice = shm.Register("r", obj.key, 0, 10);
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(twice.message().find("'r'"), std::string::npos);

  auto beyond = shm.Slice("input 'x'", "r", 90, 20);
  EXPECT_EQ(beyond.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(beyond.status().message().find("input 'x'"), std::string::npos);
  EXPECT_NE(beyond.status().message().find("90"), std::string::npos);
  EXPECT_NE(beyond.status().message().find("100 bytes"), std::string::npos) << beyond.status();
  // Offsets near 2^64 do not wrap around.
  EXPECT_FALSE(shm.Slice("input 'x'", "r", UINT64_MAX - 5, 10).ok());

  auto wrong = TensorFromSharedMemory("input 'x'", DType::kFloat32, Shape{2, 3}, shm, {"r", 0, 20});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("20"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("24 bytes"), std::string::npos) << wrong.status();
  auto right = TensorFromSharedMemory("input 'x'", DType::kFloat32, Shape{2, 3}, shm, {"r", 4, 24});
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ(right->nbytes(), 24u);

  auto view = shm.Slice("output 'y'", "r", 0, 8);
  ASSERT_TRUE(view.ok());
  SharedMemoryOutput out{"y", {"r", 0, 8}, *view};
  auto too_big = WriteSharedMemoryOutput(out, std::string(12, 'a'));
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.message().find("output 'y'"), std::string::npos);
  EXPECT_NE(too_big.message().find("12 bytes"), std::string::npos) << too_big;
  EXPECT_TRUE(WriteSharedMemoryOutput(out, std::string(8, 'a')).ok());
  EXPECT_EQ(CudaSharedMemoryUnsupported().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace hepml::serve
