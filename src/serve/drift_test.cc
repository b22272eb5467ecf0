#include "serve/drift.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "common/npy.h"
#include "zlib.h"

namespace hepml::serve {
namespace {

// Writes an .npz as numpy's savez does (a zip of .npy members, stored).
absl::Status WriteNpz(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& arrays) {
  std::string zip, central;
  auto u16 = [](std::string& s, uint16_t v) { s.append(reinterpret_cast<const char*>(&v), 2); };
  auto u32 = [](std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); };
  for (const auto& [name, t] : arrays) {
    const std::string file = name + ".npy";
    const std::string data = SerializeNpy(t);
    const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(data.data()), data.size());
    const uint32_t offset = zip.size();
    u32(zip, 0x04034b50); u16(zip, 20); u16(zip, 0); u16(zip, 0); u16(zip, 0); u16(zip, 0);
    u32(zip, crc); u32(zip, data.size()); u32(zip, data.size()); u16(zip, file.size()); u16(zip, 0);
    zip += file + data;
    u32(central, 0x02014b50); u16(central, 20); u16(central, 20); u16(central, 0); u16(central, 0);
    u16(central, 0); u16(central, 0); u32(central, crc); u32(central, data.size()); u32(central, data.size());
    u16(central, file.size()); u16(central, 0); u16(central, 0); u16(central, 0); u16(central, 0);
    u32(central, 0); u32(central, offset);
    central += file;
  }
  const uint32_t central_offset = zip.size();
  zip += central;
  u32(zip, 0x06054b50); u16(zip, 0); u16(zip, 0); u16(zip, arrays.size()); u16(zip, arrays.size());
  u32(zip, central.size()); u32(zip, central_offset); u16(zip, 0);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::InternalError("cannot write " + path);
  std::fwrite(zip.data(), 1, zip.size(), f);
  std::fclose(f);
  return absl::OkStatus();
}

inference::ModelConfig Config(int max_batch, std::vector<int64_t> dims) {
  inference::ModelConfig c;
  c.set_name("m");
  c.set_max_batch_size(max_batch);
  auto* in = c.add_input();
  in->set_name("x");
  in->set_data_type(inference::TYPE_FP32);
  for (int64_t d : dims) in->add_dims(d);
  return c;
}

// `rows` events of 4 features drawn from N(0, 1), feature 2 shifted by `shift`.
Tensor Events(std::mt19937& rng, int64_t rows, float shift) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor t = Tensor::Empty(DType::kFloat32, {rows, 4});
  float* p = t.mutable_data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int f = 0; f < 4; ++f) p[r * 4 + f] = normal(rng) + (f == 2 ? shift : 0.0f);
  }
  return t;
}

DriftOptions Options(int64_t window, int64_t reference) {
  DriftOptions o;
  o.window_events = window;
  o.reference_events = reference;
  return o;
}

TEST(DriftMonitorTest, SameDistributionIsStableAndAShiftIsFound) {
  auto monitor = DriftMonitor::Create(Options(2000, 4000), Config(64, {4}));
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  std::mt19937 rng(7);
  std::optional<DriftReport> report;
  // Requests of 300 events: the reference and the windows end inside requests.
  for (int i = 0; i < 20 && !report; ++i) report = (*monitor)->Observe({{"x", Events(rng, 300, 0.0f)}});
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->window, 1);
  EXPECT_EQ(report->events, 2000);
  EXPECT_LT(report->psi_max, 0.05);
  DriftSnapshot s = (*monitor)->Snapshot();
  EXPECT_TRUE(s.reference_ready);
  EXPECT_EQ(s.reference_events, 4000);

  std::optional<DriftReport> shifted;
  for (int i = 0; i < 20; ++i) {
    if (auto r = (*monitor)->Observe({{"x", Events(rng, 300, 1.0f)}}); r && r->window > 1) {
      // The first window after the stable one may mix both; take a pure one.
      if (r->window == 3) shifted = r;
    }
  }
  ASSERT_TRUE(shifted.has_value());
  EXPECT_GT(shifted->psi_max, 0.25);
  EXPECT_EQ(shifted->worst_input, "x");
  EXPECT_EQ(shifted->worst_feature, 2);
  EXPECT_LT(shifted->psi_mean, shifted->psi_max);
}

TEST(DriftMonitorTest, ReferenceFromAnNpzFile) {
  std::mt19937 rng(11);
  const auto dir = std::filesystem::temp_directory_path() / "hepml_drift_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "reference.npz").string();
  Tensor ref = Events(rng, 5000, 0.0f);
  ASSERT_TRUE(WriteNpz(path, {{"x", ref}}).ok());
  inference::ModelConfig config = Config(64, {4});
  (*config.mutable_parameters())["hepml.drift_reference"].set_string_value("reference.npz");
  (*config.mutable_parameters())["hepml.drift_window"].set_string_value("1000");
  auto options = DriftOptionsFor(config, dir.string(), DriftOptions{});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->window_events, 1000);
  EXPECT_EQ(options->reference_file, path);
  auto monitor = DriftMonitor::Create(*options, config);
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  EXPECT_TRUE((*monitor)->Snapshot().reference_ready);
  auto report = (*monitor)->Observe({{"x", Events(rng, 1000, 2.0f)}});
  ASSERT_TRUE(report.has_value());
  EXPECT_GT(report->psi_max, 1.0);
  EXPECT_EQ(report->worst_feature, 2);

  // A reference without the model's input names it.
  ASSERT_TRUE(WriteNpz(path, {{"y", ref}}).ok());
  auto missing = DriftMonitor::Create(*options, config);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no array 'x'"), std::string::npos) << missing.status();
  // Rows of another width.
  ASSERT_TRUE(WriteNpz(path, {{"x", Tensor::Empty(DType::kFloat32, {10, 3})}}).ok());
  auto wide = DriftMonitor::Create(*options, config);
  ASSERT_FALSE(wide.ok());
  EXPECT_NE(wide.status().message().find("3 values per row"), std::string::npos) << wide.status();
  std::filesystem::remove_all(dir);
}

TEST(DriftMonitorTest, BadParametersAreNamed) {
  inference::ModelConfig config = Config(64, {4});
  (*config.mutable_parameters())["hepml.drift_window"].set_string_value("many");
  auto options = DriftOptionsFor(config, "/tmp", DriftOptions{});
  ASSERT_FALSE(options.ok());
  EXPECT_NE(options.status().message().find("hepml.drift_window 'many'"), std::string::npos) << options.status();
}

// An input that takes one value for most events (a flag, a padding value)
// still detects a move away from it.
TEST(DriftMonitorTest, AConstantFeatureDetectsAnyChange) {
  auto monitor = DriftMonitor::Create(Options(500, 1000), Config(0, {2}));
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  Tensor zero = Tensor::Empty(DType::kFloat32, {2});
  zero.mutable_data<float>()[0] = 0.0f;
  zero.mutable_data<float>()[1] = 1.0f;
  for (int i = 0; i < 1000; ++i) (*monitor)->Observe({{"x", zero}});
  Tensor moved = Tensor::Empty(DType::kFloat32, {2});
  moved.mutable_data<float>()[0] = -1.0f;  // below the constant
  moved.mutable_data<float>()[1] = 1.0f;
  std::optional<DriftReport> report;
  for (int i = 0; i < 500; ++i) {
    if (auto r = (*monitor)->Observe({{"x", moved}})) report = r;
  }
  ASSERT_TRUE(report.has_value());
  EXPECT_GT(report->psi_max, 1.0);
  EXPECT_EQ(report->worst_feature, 0);
}

// Non-numeric inputs and inputs of another width are left out, not misread.
TEST(DriftMonitorTest, UnwatchableInputsAreSkipped) {
  auto monitor = DriftMonitor::Create(Options(10, 10), Config(64, {4}));
  ASSERT_TRUE(monitor.ok());
  Tensor flags = Tensor::Empty(DType::kBool, {5, 4});
  for (int i = 0; i < 10; ++i) (*monitor)->Observe({{"x", flags}});
  Tensor narrow = Tensor::Empty(DType::kFloat32, {5, 3});
  for (int i = 0; i < 10; ++i) (*monitor)->Observe({{"x", narrow}});
  // The events count (the batch dimension) but no value of a bad tensor is
  // read: the windows have nothing to compare and report no drift.
  DriftSnapshot s = (*monitor)->Snapshot();
  EXPECT_TRUE(s.reference_ready);
  EXPECT_EQ(s.windows, 9);
  ASSERT_TRUE(s.last.has_value());
  EXPECT_EQ(s.last->psi_max, 0.0);
}

}  // namespace
}  // namespace hepml::serve
