// root:// against a real xrootd server started on a loopback port: the same
// values as the local file, and clear errors for a missing file or server.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "hepml/data.h"

namespace hepml::data {
namespace {

namespace fs = std::filesystem;

std::string Fixture() { return std::string(HEPML_TEST_DATA_DIR) + "/root/uproot-Zmumu-zstd.root"; }

int FreePort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

bool Accepts(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(s);
  return ok;
}

// An xrootd serving a temporary folder, as user nobody (xrootd refuses root).
class XRootDServer {
 public:
  bool Start() {
    dir_ = fs::temp_directory_path() / ("hepml_xrd_" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "export");
    fs::permissions(dir_, fs::perms::all & ~fs::perms::others_write & ~fs::perms::group_write);
    fs::permissions(dir_ / "export", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                         fs::perms::others_read | fs::perms::others_exec);
    fs::copy_file(Fixture(), dir_ / "export/zmumu.root");
    fs::permissions(dir_ / "export/zmumu.root", fs::perms::owner_read | fs::perms::owner_write |
                                                    fs::perms::group_read | fs::perms::others_read);
    // xrootd runs as nobody: it writes its log and admin files here.
    if (const passwd* pw = ::getpwnam("nobody")) {
      for (const auto& e : fs::recursive_directory_iterator(dir_)) {
        (void)::chown(e.path().c_str(), pw->pw_uid, pw->pw_gid);
      }
      (void)::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid);
    }
    port_ = FreePort();
    std::string log = (dir_ / "xrootd.log").string();
    std::string port = std::to_string(port_);
    std::string exported = (dir_ / "export").string();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("xrootd", "xrootd", "-R", "nobody", "-p", port.c_str(), "-l", log.c_str(),
               exported.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (Accepts(port_)) return true;
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  ~XRootDServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Url(const std::string& name) const {
    return "root://127.0.0.1:" + std::to_string(port_) + "/" + (dir_ / "export" / name).string();
  }

 private:
  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(XRootD, ReadsTheSameValuesAsTheLocalFile) {
  if (!fs::exists(Fixture())) GTEST_SKIP() << "fixture missing: " << Fixture();
  if (::getuid() != 0) GTEST_SKIP() << "xrootd is started as user nobody, which needs root";
  if (std::system("command -v xrootd > /dev/null") != 0) GTEST_SKIP() << "xrootd not installed";
  XRootDServer server;
  ASSERT_TRUE(server.Start()) << "xrootd did not start";
  auto remote = Dataset::Open({server.Url("zmumu.root")});
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto local = Dataset::Open({Fixture()});
  ASSERT_TRUE(local.ok());
  ASSERT_EQ((*remote)->num_entries(), (*local)->num_entries());
  auto a = (*remote)->Read(0, (*remote)->num_entries());
  auto b = (*local)->Read(0, (*local)->num_entries());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok());
  ASSERT_EQ(a->columns.size(), b->columns.size());
  for (size_t c = 0; c < a->columns.size(); ++c) {
    const Tensor& x = a->columns[c].values;
    const Tensor& y = b->columns[c].values;
    ASSERT_EQ(x.shape(), y.shape());
    if (x.dtype() == DType::kString) {
      for (int64_t i = 0; i < x.size(); ++i) EXPECT_EQ(x.data<std::string>()[i], y.data<std::string>()[i]);
    } else {
      EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << a->columns[c].name;
    }
  }
  // The raw interface: a vectored read returns the same bytes as positional reads.
  auto file = OpenFile(server.Url("zmumu.root"));
  ASSERT_TRUE(file.ok()) << file.status();
  std::string v1(100, '\0'), v2(300, '\0'), p1(100, '\0'), p2(300, '\0');
  std::vector<RandomAccessFile::Range> ranges = {{0, 100, v1.data()}, {5000, 300, v2.data()}};
  ASSERT_TRUE((*file)->ReadV(ranges).ok());
  ASSERT_TRUE((*file)->ReadAt(0, 100, p1.data()).ok());
  ASSERT_TRUE((*file)->ReadAt(5000, 300, p2.data()).ok());
  EXPECT_EQ(v1, p1);
  EXPECT_EQ(v2, p2);
  EXPECT_EQ(v1.substr(0, 4), "root");
  EXPECT_FALSE((*file)->ReadAt((*file)->size() - 10, 20, p1.data()).ok());

  auto missing = Dataset::Open({server.Url("nope.root")});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("nope.root"), std::string::npos);
}

}  // namespace
}  // namespace hepml::data
