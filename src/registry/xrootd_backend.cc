// root:// objects through the XRootD client. Put opens tmp/NAME.UNIQUE with
// kXR_new | kXR_mkpath, writes, syncs (kXR_sync: the server fsyncs) and
// closes it, then renames it into place with FileSystem::Mv; exists and
// mtime come from Stat, listings from DirList, removal from Rm. Touching an
// object truncates it to its own size, which refreshes its modification time
// on the server (XRootD has no utime request).
#include <sys/uio.h>

#include <XProtocol/XProtocol.hh>
#include <XrdCl/XrdClDefaultEnv.hh>
#include <XrdCl/XrdClEnv.hh>
#include <XrdCl/XrdClFile.hh>
#include <XrdCl/XrdClFileSystem.hh>
#include <XrdCl/XrdClXRootDResponses.hh>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "registry/backend.h"

namespace hepml::registry {
namespace {

constexpr uint32_t kMaxIo = 16u << 20;

bool IsNotFound(const XrdCl::XRootDStatus& st) { return st.code == XrdCl::errErrorResponse && st.errNo == kXR_NotFound; }

absl::Status XrdError(const XrdCl::XRootDStatus& st, const std::string& what) {
  std::string msg = absl::StrCat(what, ": ", st.ToString());
  if (IsNotFound(st)) return absl::NotFoundError(msg);
  if (st.code == XrdCl::errErrorResponse) {
    switch (st.errNo) {
      case kXR_NoSpace:
      case kXR_overQuota:
        return absl::ResourceExhaustedError(msg);
      case kXR_NotAuthorized:
      case kXR_fsReadOnly:
        return absl::PermissionDeniedError(msg);
      default:
        return absl::InternalError(msg);
    }
  }
  return absl::UnavailableError(msg);
}

class XRootDBackend final : public Backend {
 public:
  XRootDBackend(std::string uri, std::string server, std::string root)
      : uri_(std::move(uri)), server_(std::move(server)), root_(std::move(root)) {
    std::random_device rd;
    token_ = absl::StrCat(::getpid(), "-", rd() & 0xffffff);
  }

  const std::string& uri() const override { return uri_; }

  absl::Status Init() override {
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    for (const char* sub : {"/chunks", "/manifests", "/tmp"}) {
      XrdCl::XRootDStatus st = fs.MkDir(root_ + sub, XrdCl::MkDirFlags::MakePath, DirMode());
      if (st.IsOK() || (st.code == XrdCl::errErrorResponse && st.errNo == kXR_ItExists)) continue;
      // A read-only server refuses even existing folders: fine if they are there.
      XrdCl::StatInfo* info = nullptr;
      XrdCl::XRootDStatus exists = fs.Stat(root_ + sub, info);
      std::unique_ptr<XrdCl::StatInfo> owned(info);
      if (!exists.IsOK() || !info->TestFlags(XrdCl::StatInfo::IsDir)) {
        return Failed(XrdError(st, absl::StrCat("creating ", root_, sub)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Put(const std::string& name, std::string_view data, std::string_view more) override {
    std::string tmp = absl::StrCat(root_, "/tmp/", absl::StrReplaceAll(name, {{"/", "_"}}), ".", token_, ".",
                                   counter_.fetch_add(1));
    XrdCl::File file;
    XrdCl::XRootDStatus st = file.Open(Url(tmp), XrdCl::OpenFlags::New | XrdCl::OpenFlags::MakePath |
                                                     XrdCl::OpenFlags::Update,
                                       XrdCl::Access::UR | XrdCl::Access::UW | XrdCl::Access::GR |
                                           XrdCl::Access::OR);
    if (!st.IsOK()) return Failed(XrdError(st, "creating " + tmp));
    uint64_t offset = 0;
    if (!more.empty() && data.size() + more.size() <= kMaxIo) {
      // Header and body in one request (one round trip, no copy).
      struct iovec iov[2] = {{const_cast<char*>(data.data()), data.size()},
                             {const_cast<char*>(more.data()), more.size()}};
      st = file.WriteV(0, iov, 2);
      data = more = {};
    }
    for (std::string_view part : {data, more}) {
      for (uint64_t done = 0; st.IsOK() && done < part.size();) {
        uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kMaxIo, part.size() - done));
        st = file.Write(offset, n, part.data() + done);
        offset += n;
        done += n;
      }
    }
    if (st.IsOK()) st = file.Sync();
    XrdCl::XRootDStatus closed = file.Close();
    if (st.IsOK()) st = closed;
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    if (!st.IsOK()) {
      XrdCl::XRootDStatus rm = fs.Rm(tmp);
      (void)rm;
      return Failed(XrdError(st, "writing " + name));
    }
    // The folder chunks/ab may not exist yet (or another worker is creating
    // it): a rename that fails creates it and tries once more.
    std::string final_path = Path(name);
    std::string dir = final_path.substr(0, final_path.rfind('/'));
    bool known = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = known_dirs_.count(dir) > 0;
    }
    st = known ? fs.Mv(tmp, final_path) : XrdCl::XRootDStatus(XrdCl::stError, XrdCl::errUnknown);
    if (!st.IsOK()) {
      st = fs.MkDir(dir, XrdCl::MkDirFlags::MakePath, DirMode());
      if (st.IsOK() || (st.code == XrdCl::errErrorResponse && st.errNo == kXR_ItExists)) st = fs.Mv(tmp, final_path);
    }
    if (!st.IsOK()) {
      XrdCl::XRootDStatus rm = fs.Rm(tmp);
      (void)rm;
      return Failed(XrdError(st, "renaming into " + name));
    }
    std::lock_guard<std::mutex> lock(mu_);
    known_dirs_.insert(dir);
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Get(const std::string& name) override {
    XrdCl::File file;
    XrdCl::XRootDStatus st = file.Open(Url(Path(name)), XrdCl::OpenFlags::Read);
    if (!st.IsOK()) return Failed(XrdError(st, name));
    XrdCl::StatInfo* info = nullptr;
    st = file.Stat(false, info);
    std::unique_ptr<XrdCl::StatInfo> owned(info);
    std::string out;
    if (st.IsOK()) {
      out.resize(info->GetSize());
      uint64_t offset = 0;
      while (st.IsOK() && offset < out.size()) {
        uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(kMaxIo, out.size() - offset));
        uint32_t got = 0;
        st = file.Read(offset, want, out.data() + offset, got);
        if (st.IsOK() && got == 0) {
          XrdCl::XRootDStatus c = file.Close();
          (void)c;
          return Failed(absl::DataLossError(absl::StrCat(name, ": ended at ", offset, " of ", out.size(), " bytes")));
        }
        offset += got;
      }
    }
    XrdCl::XRootDStatus closed = file.Close();
    (void)closed;
    if (!st.IsOK()) return Failed(XrdError(st, "reading " + name));
    return out;
  }

  absl::StatusOr<ObjectInfo> Stat(const std::string& name) override {
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    XrdCl::StatInfo* info = nullptr;
    XrdCl::XRootDStatus st = fs.Stat(Path(name), info);
    std::unique_ptr<XrdCl::StatInfo> owned(info);
    if (!st.IsOK()) return Failed(XrdError(st, name));
    return ObjectInfo{name, info->GetSize(), static_cast<int64_t>(info->GetModTime())};
  }

  absl::StatusOr<bool> TouchIfExists(const std::string& name) override {
    absl::StatusOr<ObjectInfo> info = Stat(name);
    if (!info.ok()) {
      if (absl::IsNotFound(info.status())) return false;
      return info.status();
    }
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    XrdCl::XRootDStatus st = fs.Truncate(Path(name), info->size);
    if (!st.IsOK()) {
      if (IsNotFound(st)) return false;  // removed meanwhile
      return Failed(XrdError(st, "touching " + name));
    }
    return true;
  }

  absl::StatusOr<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    absl::Status s = ListInto(prefix, out);
    if (!s.ok()) return s;
    return out;
  }

  absl::Status Delete(const std::string& name) override {
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    XrdCl::XRootDStatus st = fs.Rm(Path(name));
    if (!st.IsOK() && !IsNotFound(st)) return Failed(XrdError(st, "removing " + name));
    return absl::OkStatus();
  }

  // The server syncs each file before it is renamed; the rename's own
  // durability is the server's.
  absl::Status Sync() override { return absl::OkStatus(); }

  int parallelism() const override { return 8; }

 private:
  static XrdCl::Access::Mode DirMode() {
    return XrdCl::Access::UR | XrdCl::Access::UW | XrdCl::Access::UX | XrdCl::Access::GR | XrdCl::Access::GX |
           XrdCl::Access::OR | XrdCl::Access::OX;
  }
  std::string Path(const std::string& name) const { return root_ + "/" + name; }
  std::string Url(const std::string& path) const { return server_ + "/" + path; }
  absl::Status Failed(const absl::Status& s) const {
    return absl::Status(s.code(), absl::StrCat("store ", uri_, ": ", s.message()));
  }

  absl::Status ListInto(const std::string& rel, std::vector<ObjectInfo>& out) {
    XrdCl::FileSystem fs{XrdCl::URL(server_)};
    XrdCl::DirectoryList* list = nullptr;
    XrdCl::XRootDStatus st = fs.DirList(Path(rel), XrdCl::DirListFlags::Stat, list);
    std::unique_ptr<XrdCl::DirectoryList> owned(list);
    if (!st.IsOK()) {
      if (IsNotFound(st)) return absl::OkStatus();
      return Failed(XrdError(st, "listing " + rel));
    }
    std::vector<std::string> subdirs;
    for (auto it = list->Begin(); it != list->End(); ++it) {
      const std::string& n = (*it)->GetName();
      if (n == "." || n == "..") continue;
      XrdCl::StatInfo* info = (*it)->GetStatInfo();
      std::string child = rel + "/" + n;
      if (info == nullptr) continue;
      if (info->TestFlags(XrdCl::StatInfo::IsDir)) {
        subdirs.push_back(child);
      } else {
        out.push_back({child, info->GetSize(), static_cast<int64_t>(info->GetModTime())});
      }
    }
    for (const std::string& s : subdirs) {
      absl::Status r = ListInto(s, out);
      if (!r.ok()) return r;
    }
    return absl::OkStatus();
  }

  std::string uri_, server_, root_, token_;
  std::atomic<uint64_t> counter_{0};
  std::mutex mu_;
  std::set<std::string> known_dirs_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> OpenXRootDBackend(const std::string& uri, const std::string& server,
                                                           const std::string& root) {
  // Fail in seconds, not minutes, when the server is unreachable (unless the
  // user's XRD_CONNECTIONWINDOW / XRD_CONNECTIONRETRY say otherwise: PutInt
  // does not override shell settings).
  static std::once_flag once;
  std::call_once(once, [] {
    XrdCl::Env* env = XrdCl::DefaultEnv::GetEnv();
    env->PutInt("ConnectionWindow", 10);
    env->PutInt("ConnectionRetry", 1);
  });
  auto b = std::make_unique<XRootDBackend>(uri, server, root);
  absl::Status s = b->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace hepml::registry
