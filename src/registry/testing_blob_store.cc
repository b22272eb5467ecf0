// TEST ONLY: see testing_blob_store.h.
#include "registry/testing_blob_store.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hepml::registry {
namespace {
namespace fs = std::filesystem;

std::string Sha256Hex(const std::string& bytes) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
}

absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TestingBlobStore : public BlobStore {
 public:
  explicit TestingBlobStore(fs::path root) : root_(std::move(root)), uri_("file://" + root_.string()) {}
  const std::string& uri() const override { return uri_; }

  fs::path ObjectPath(const std::string& id) const { return root_ / "objects" / id.substr(0, 2) / id; }

  absl::StatusOr<Manifest> PutFile(const std::string& path, PutStats* stats) override {
    auto bytes = ReadAll(path);
    if (!bytes.ok()) return bytes.status();
    return PutBytes(*bytes, stats);
  }
  absl::StatusOr<Manifest> PutBytes(const std::string& bytes, PutStats* stats) override {
    Manifest m;
    m.id = Sha256Hex(bytes);
    m.size = bytes.size();
    m.chunks.push_back({m.id, m.size});
    fs::path dest = ObjectPath(m.id);
    std::error_code ec;
    if (!fs::exists(dest, ec)) {
      fs::create_directories(dest.parent_path(), ec);
      fs::path tmp = root_ / "tmp" / absl::StrCat(m.id, ".", reinterpret_cast<uintptr_t>(this));
      fs::create_directories(tmp.parent_path(), ec);
      {
        std::ofstream out(tmp, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", tmp.string()));
      }
      fs::rename(tmp, dest, ec);
      if (ec) return absl::UnavailableError(absl::StrCat("cannot rename into ", dest.string()));
    }
    if (stats) {
      stats->bytes_in += bytes.size();
      stats->chunks_total += 1;
    }
    return m;
  }
  bool HasManifest(const std::string& id) override {
    std::error_code ec;
    return id.size() == 64 && fs::exists(ObjectPath(id), ec);
  }
  absl::StatusOr<Manifest> GetManifest(const std::string& id) override {
    if (!HasManifest(id)) return absl::NotFoundError(absl::StrCat("no manifest ", id));
    Manifest m;
    m.id = id;
    m.size = fs::file_size(ObjectPath(id));
    m.chunks.push_back({id, m.size});
    return m;
  }
  absl::StatusOr<std::string> GetBytes(const std::string& id) override {
    if (!HasManifest(id)) return absl::NotFoundError(absl::StrCat("no manifest ", id));
    auto bytes = ReadAll(ObjectPath(id).string());
    if (!bytes.ok()) return bytes.status();
    if (Sha256Hex(*bytes) != id) return absl::DataLossError(absl::StrCat("object ", id, " does not match its hash"));
    return bytes;
  }
  absl::Status GetFile(const std::string& id, const std::string& dest) override {
    auto bytes = GetBytes(id);
    if (!bytes.ok()) return bytes.status();
    std::string tmp = dest + ".partial";
    {
      std::ofstream out(tmp, std::ios::binary);
      out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      if (!out) return absl::UnavailableError(absl::StrCat("cannot write '", tmp, "'"));
    }
    std::error_code ec;
    fs::rename(tmp, dest, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot write '", dest, "': ", ec.message()));
    return absl::OkStatus();
  }
  absl::StatusOr<FsckReport> Fsck(const std::vector<std::string>& referenced) override {
    FsckReport rep;
    for (const auto& id : referenced) {
      if (!HasManifest(id)) rep.problems.push_back(absl::StrCat("manifest ", id, " is referenced but missing"));
    }
    std::error_code ec;
    if (fs::exists(root_ / "objects", ec)) {
      for (const auto& e : fs::recursive_directory_iterator(root_ / "objects")) {
        if (!e.is_regular_file()) continue;
        ++rep.manifests_checked;
        ++rep.chunks_checked;
        auto bytes = ReadAll(e.path().string());
        if (!bytes.ok() || Sha256Hex(*bytes) != e.path().filename().string()) {
          rep.problems.push_back(absl::StrCat("object ", e.path().string(), " does not match its name"));
        }
      }
    }
    return rep;
  }
  absl::StatusOr<GcReport> Gc(const std::vector<std::string>& live, int64_t grace_seconds) override {
    GcReport rep;
    std::set<std::string> keep(live.begin(), live.end());
    std::error_code ec;
    if (!fs::exists(root_ / "objects", ec)) return rep;
    auto now = fs::file_time_type::clock::now();
    std::vector<fs::path> doomed;
    for (const auto& e : fs::recursive_directory_iterator(root_ / "objects")) {
      if (!e.is_regular_file() || keep.count(e.path().filename().string())) continue;
      auto age = std::chrono::duration_cast<std::chrono::seconds>(now - e.last_write_time()).count();
      if (age < grace_seconds) continue;
      doomed.push_back(e.path());
    }
    for (const auto& p : doomed) {
      rep.bytes_freed += fs::file_size(p, ec);
      fs::remove(p, ec);
      ++rep.manifests_removed;
      ++rep.chunks_removed;
    }
    return rep;
  }

 private:
  fs::path root_;
  std::string uri_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<BlobStore>> OpenTestingBlobStore(const std::string& root) {
  std::error_code ec;
  fs::create_directories(fs::path(root) / "objects", ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create blob store '", root, "': ", ec.message()));
  return std::unique_ptr<BlobStore>(std::make_unique<TestingBlobStore>(fs::absolute(root)));
}

}  // namespace hepml::registry
