// The Registry API on both metadata backends: SQLite (a temp file) and a real
// PostgreSQL 15 server this binary starts on a free loopback port (skipped,
// with a message, only when the PostgreSQL binaries are absent).
#include "hepml/registry.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "onnx/onnx_pb.h"
#include "registry/metadata_db.h"
#include "registry/metadata_schema.h"
#include "registry/blob_store.h"

namespace hepml::registry {
namespace {
namespace fs = std::filesystem;

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

// A one-node ONNX model y = x + bias (x: float[batch, 3]); `bias` makes
// distinct files.
void WriteOnnxModel(const fs::path& path, float bias) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("add");
  auto value = [](onnx::ValueInfoProto* v, const char* name) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(onnx::TensorProto::FLOAT);
    t->mutable_shape()->add_dim()->set_dim_param("batch");
    t->mutable_shape()->add_dim()->set_dim_value(3);
  };
  value(g->add_input(), "x");
  value(g->add_output(), "y");
  onnx::TensorProto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(3);
  for (int i = 0; i < 3; ++i) w->add_float_data(bias + i);
  onnx::NodeProto* n = g->add_node();
  n->set_op_type("Add");
  n->add_input("x");
  n->add_input("w");
  n->add_output("y");
  std::ofstream out(path, std::ios::binary);
  m.SerializeToOstream(&out);
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// One PostgreSQL server for the whole binary, started on first use and
// stopped by the test environment at exit.
class PostgresServer {
 public:
  static PostgresServer& Get() {
    static PostgresServer* server = new PostgresServer();
    return *server;
  }
  const std::string& skip_reason() const { return skip_reason_; }

  // A fresh, empty database; returns its URI.
  std::string NewDatabase() {
    std::string name = absl::StrCat("t", ++databases_);
    auto admin = MetadataDb::Open(absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/postgres"));
    EXPECT_TRUE(admin.ok()) << admin.status();
    if (!admin.ok()) return "";
    EXPECT_TRUE((*admin)->Exec(absl::StrCat("CREATE DATABASE ", name)).ok());
    return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", name);
  }

  void Stop() {
    if (!started_) return;
    std::system(absl::StrCat(AsPostgres(absl::StrCat(kPgBin, "/pg_ctl -D ", dir_, "/data -m fast -w stop")),
                             " > /dev/null 2>&1")
                    .c_str());
    std::error_code ec;
    fs::remove_all(dir_, ec);
    started_ = false;
  }

 private:
  PostgresServer() {
    if (!fs::exists(fs::path(kPgBin) / "initdb") || !fs::exists(fs::path(kPgBin) / "pg_ctl")) {
      skip_reason_ = absl::StrCat("PostgreSQL 15 binaries not found in ", kPgBin,
                                  " (apt-get install postgresql-15); PostgreSQL cases skipped");
      return;
    }
    char tmpl[] = "/tmp/hepml_pg_XXXXXX";
    dir_ = mkdtemp(tmpl);
    as_root_ = geteuid() == 0;
    if (as_root_) {
      std::system(absl::StrCat("chown postgres ", dir_).c_str());
      fs::permissions(dir_, fs::perms::owner_all);
    }
    port_ = FreePort();
    std::string init = AsPostgres(absl::StrCat(kPgBin, "/initdb -D ", dir_, "/data -A trust -U postgres"));
    if (std::system(absl::StrCat(init, " > ", dir_, "/initdb.log 2>&1").c_str()) != 0) {
      ADD_FAILURE() << "initdb failed: " << ReadFile(fs::path(dir_) / "initdb.log");
      skip_reason_ = "initdb failed";
      return;
    }
    std::string start = AsPostgres(absl::StrCat(kPgBin, "/pg_ctl -D ", dir_, "/data -w -o \\\"-p ", port_, " -k ", dir_,
                                                " -c listen_addresses=127.0.0.1\\\" -l ", dir_, "/log start"));
    if (std::system(absl::StrCat(start, " > /dev/null 2>&1").c_str()) != 0) {
      ADD_FAILURE() << "pg_ctl start failed: " << ReadFile(fs::path(dir_) / "log");
      skip_reason_ = "PostgreSQL did not start";
      return;
    }
    started_ = true;
  }

  std::string AsPostgres(const std::string& cmd) const {
    if (!as_root_) return absl::StrCat("sh -c \"", cmd, "\"");
    return absl::StrCat("su postgres -s /bin/sh -c \"", cmd, "\"");
  }

  std::string dir_;
  std::string skip_reason_;
  bool as_root_ = false;
  bool started_ = false;
  int port_ = 0;
  int databases_ = 0;
};

class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PostgresServer::Get().Stop(); }
};
::testing::Environment* const kPgEnv = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// ---------------------------------------------------------------------------

class RegistryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hepml_registry_test_XXXXXX";
    dir_ = mkdtemp(tmpl);
    if (GetParam() == "Postgres") {
      PostgresServer& pg = PostgresServer::Get();
      if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
      uri_ = pg.NewDatabase();
      ASSERT_FALSE(uri_.empty());
    } else {
      uri_ = absl::StrCat("sqlite://", (dir_ / "registry.db").string());
    }
    reg_ = OpenRegistry();
    ASSERT_NE(reg_, nullptr);
    WriteOnnxModel(dir_ / "m1.onnx", 1.0f);
    WriteOnnxModel(dir_ / "m2.onnx", 2.0f);
    WriteOnnxModel(dir_ / "m3.onnx", 3.0f);
  }
  void TearDown() override {
    reg_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Registry> OpenRegistry(const std::string& user = "tester", double hook_timeout_s = 30) {
    auto blobs = BlobStore::Open(BlobUri());
    EXPECT_TRUE(blobs.ok()) << blobs.status();
    RegistryOptions opts;
    opts.user = user;
    opts.hook_timeout_s = hook_timeout_s;
    auto r = Registry::OpenWithBlobStore(uri_, std::move(*blobs), opts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::string P(const std::string& name) const { return (dir_ / name).string(); }
  std::string BlobUri() const { return "file://" + (dir_ / "blobs").string(); }

  fs::path dir_;
  std::string uri_;
  std::unique_ptr<Registry> reg_;
};

TEST_P(RegistryTest, PushedVersionsAreNumberedAndCarryTheirRecord) {
  ASSERT_TRUE(reg_->CreateModel("btag", "jet flavour").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->CreateModel("btag").status()));
  PushOptions o;
  o.params = {{"lr", "0.001"}};
  o.metrics = {{"auc", 0.93}};
  o.tags = {{"owner", "btv"}};
  o.code_version = "abc123";
  auto v1 = reg_->PushModelVersion("btag", {P("m1.onnx")}, o);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto v2 = reg_->PushModelVersion("btag", {P("m2.onnx")});
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v2->version, 2);

  auto got = reg_->GetVersion("btag", 1);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->files.size(), 1u);
  EXPECT_EQ(got->files[0].name, "m1.onnx");
  EXPECT_EQ(got->files[0].size, fs::file_size(dir_ / "m1.onnx"));
  EXPECT_EQ(got->files[0].sha256.size(), 64u);
  EXPECT_NE(got->files[0].sha256, v2->files[0].sha256);
  ASSERT_EQ(got->inputs.size(), 1u);
  EXPECT_EQ(got->inputs[0].name, "x");
  EXPECT_TRUE(absl::StrContains(got->inputs[0].type, "float")) << got->inputs[0].type;
  EXPECT_TRUE(absl::StrContains(got->inputs[0].type, "batch")) << got->inputs[0].type;
  ASSERT_EQ(got->outputs.size(), 1u);
  EXPECT_EQ(got->outputs[0].name, "y");
  EXPECT_EQ(got->params.at("lr"), "0.001");
  EXPECT_DOUBLE_EQ(got->metrics.at("auc"), 0.93);
  EXPECT_EQ(got->tags.at("owner"), "btv");
  EXPECT_EQ(got->code_version, "abc123");
  EXPECT_EQ(got->created_by, "tester");

  auto models = reg_->ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].latest_version, 2);

  // Pull by number and by "latest" gives back the exact bytes.
  ASSERT_TRUE(reg_->Pull("btag@1", P("out1.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "out1.onnx"), ReadFile(dir_ / "m1.onnx"));
  ASSERT_TRUE(reg_->Pull("btag", P("latest.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "latest.onnx"), ReadFile(dir_ / "m2.onnx"));
  fs::create_directories(dir_ / "pulled");
  auto paths = reg_->Pull("btag@2", P("pulled"));
  ASSERT_TRUE(paths.ok());
  EXPECT_EQ(ReadFile(dir_ / "pulled" / "m2.onnx"), ReadFile(dir_ / "m2.onnx"));
}

TEST_P(RegistryTest, BadPushesLeaveTheRegistryUnchanged) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m1.onnx")}).ok());

  PushOptions over;
  over.version = 1;
  auto s = reg_->PushModelVersion("btag", {P("m2.onnx")}, over).status();
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "immutable")) << s;

  auto unknown = reg_->PushModelVersion("nosuch", {P("m1.onnx")}).status();
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;
  EXPECT_TRUE(absl::StrContains(unknown.message(), "nosuch")) << unknown;

  WriteFile(dir_ / "text.onnx", "this is not an ONNX model\n");
  auto bad = reg_->PushModelVersion("btag", {P("text.onnx")}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_TRUE(absl::StrContains(bad.message(), "text.onnx")) << bad;

  auto missing = reg_->PushModelVersion("btag", {P("missing.onnx")}).status();
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;

  PushOptions bad_ds;
  bad_ds.datasets = {{"nods", 1}};
  EXPECT_TRUE(absl::IsNotFound(reg_->PushModelVersion("btag", {P("m2.onnx")}, bad_ds).status()));

  auto versions = reg_->ListVersions("btag");
  ASSERT_TRUE(versions.ok());
  EXPECT_EQ(versions->size(), 1u);
  EXPECT_EQ(ReadFile(dir_ / "m1.onnx").size(), (*versions)[0].files[0].size);
  // The number refused pushes drew is given back: the next one is 2.
  auto next = reg_->PushModelVersion("btag", {P("m2.onnx")});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->version, 2);
  auto events = reg_->Events();
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);
}

TEST_P(RegistryTest, AliasesMoveAndKeepTheirHistory) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m1.onnx")}).ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m2.onnx")}).ok());
  ASSERT_TRUE(reg_->SetAlias("btag", "production", 1).ok());
  auto other = OpenRegistry("shifter");
  ASSERT_TRUE(other->SetAlias("btag", "production", 2).ok());
  ASSERT_TRUE(reg_->SetAlias("btag", "staging", 1).ok());

  auto prod = reg_->ResolveRef("btag@production");
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(prod->version, 2);
  EXPECT_EQ(prod->aliases, std::vector<std::string>{"production"});
  ASSERT_TRUE(reg_->Pull("btag@staging", P("staging.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "staging.onnx"), ReadFile(dir_ / "m1.onnx"));

  auto hist = reg_->AliasHistory("btag", "production");
  ASSERT_TRUE(hist.ok());
  ASSERT_EQ(hist->size(), 2u);
  EXPECT_FALSE((*hist)[0].from_version.has_value());
  EXPECT_EQ((*hist)[0].to_version, 1);
  EXPECT_EQ((*hist)[0].moved_by, "tester");
  EXPECT_EQ((*hist)[1].from_version, 1);
  EXPECT_EQ((*hist)[1].to_version, 2);
  EXPECT_EQ((*hist)[1].moved_by, "shifter");

  // Bad moves: clear errors, alias and history unchanged.
  EXPECT_TRUE(absl::IsNotFound(reg_->SetAlias("btag", "production", 7)));
  EXPECT_TRUE(absl::IsNotFound(reg_->SetAlias("nosuch", "production", 1)));
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->SetAlias("btag", "42", 1)));
  EXPECT_TRUE(absl::IsNotFound(reg_->ResolveRef("btag@nosuch").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->ResolveRef("btag@").status()));
  EXPECT_EQ(reg_->GetAlias("btag", "production")->version, 2);
  EXPECT_EQ(reg_->AliasHistory("btag", "production")->size(), 2u);

  ASSERT_TRUE(reg_->RemoveAlias("btag", "staging").ok());
  EXPECT_TRUE(absl::IsNotFound(reg_->GetAlias("btag", "staging").status()));
  auto all = reg_->AliasHistory("btag");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  EXPECT_FALSE(all->back().to_version.has_value());
}

TEST_P(RegistryTest, IntervalsResolveRunsAndRefuseOverlaps) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m1.onnx")}).ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m2.onnx")}).ok());
  ASSERT_TRUE(reg_->AddInterval("btag_2026", "btag", 1, {.first_run = 1, .last_run = 100}).ok());
  ASSERT_TRUE(reg_->AddInterval("btag_2026", "btag", 2, {.first_run = 101, .last_run = 200}).ok());
  ASSERT_TRUE(reg_->AddInterval("btag_2026", "btag", 1,
                                {.first_run = 500, .last_run = 600, .first_time = 1700000000, .last_time = 1700086400})
                  .ok());
  for (auto [run, version] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {50, 1}, {100, 1}, {101, 2}, {200, 2}, {550, 1}}) {
    auto iv = reg_->Resolve("btag_2026", run);
    ASSERT_TRUE(iv.ok()) << run << ": " << iv.status();
    EXPECT_EQ(iv->version, version) << "run " << run;
    EXPECT_EQ(iv->model, "btag");
  }
  auto gap = reg_->Resolve("btag_2026", 300).status();
  EXPECT_TRUE(absl::IsNotFound(gap));
  EXPECT_TRUE(absl::StrContains(gap.message(), "300")) << gap;
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("btag_2026", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("btag_2026", 601).status()));
  EXPECT_TRUE(absl::StrContains(reg_->Resolve("nosuch", 1).status().message(), "unknown IOV tag"));

  for (IntervalSpec bad : {IntervalSpec{150, 250}, IntervalSpec{50, 60}, IntervalSpec{0, 1}, IntervalSpec{200, 200},
                           IntervalSpec{0, 1000}}) {
    auto s = reg_->AddInterval("btag_2026", "btag", 2, bad);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << bad.first_run << "-" << bad.last_run << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "overlaps")) << s;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->AddInterval("btag_2026", "btag", 2, {.first_run = 9, .last_run = 3})));
  EXPECT_TRUE(absl::IsNotFound(reg_->AddInterval("btag_2026", "btag", 9, {.first_run = 300, .last_run = 301})));
  auto list = reg_->ListIntervals("btag_2026");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[2].range.first_time, 1700000000);

  // Time ranges: resolved by time, and refused when they overlap.
  auto by_time = reg_->ResolveTime("btag_2026", 1700000100);
  ASSERT_TRUE(by_time.ok()) << by_time.status();
  EXPECT_EQ(by_time->range.first_run, 500);
  EXPECT_TRUE(absl::IsNotFound(reg_->ResolveTime("btag_2026", 1600000000).status()));
  auto t_overlap = reg_->AddInterval("btag_2026", "btag", 2,
                                     {.first_run = 700, .last_run = 800, .first_time = 1700080000, .last_time = 1700090000});
  EXPECT_TRUE(absl::IsFailedPrecondition(t_overlap)) << t_overlap;
  EXPECT_TRUE(absl::StrContains(t_overlap.message(), "overlap times")) << t_overlap;
  EXPECT_TRUE(absl::IsInvalidArgument(
      reg_->AddInterval("btag_2026", "btag", 2, {.first_run = 700, .last_run = 800, .first_time = 5})));

  auto by_tag = reg_->ResolveRef("btag@tag:btag_2026:150");
  ASSERT_TRUE(by_tag.ok()) << by_tag.status();
  EXPECT_EQ(by_tag->version, 2);
  ASSERT_TRUE(reg_->Pull("btag@tag:btag_2026:42", P("run42.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "run42.onnx"), ReadFile(dir_ / "m1.onnx"));
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->ResolveRef("btag@tag:btag_2026").status()));

  // Another writer fills the gap after this handle has resolved (and cached)
  // the tag: the new interval is found, the old ones still answer, the runs
  // nothing covers are still refused.
  auto other = OpenRegistry("shifter");
  ASSERT_TRUE(other->AddInterval("btag_2026", "btag", 2, {.first_run = 250, .last_run = 350}).ok());
  auto filled = reg_->Resolve("btag_2026", 300);
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(filled->version, 2);
  EXPECT_EQ(filled->range.first_run, 250);
  EXPECT_EQ(reg_->Resolve("btag_2026", 100)->version, 1);
  EXPECT_EQ(reg_->Resolve("btag_2026", 101)->version, 2);
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("btag_2026", 249).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("btag_2026", 351).status()));
  // A tag first resolved through the other handle after it existed.
  ASSERT_TRUE(other->AddInterval("jets_2026", "btag", 1, {.first_run = 10, .last_run = 20}).ok());
  EXPECT_EQ(reg_->Resolve("jets_2026", 15)->range.last_run, 20);
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("jets_2026", 21).status()));

  // Global tags pin a set of tags under record names.
  ASSERT_TRUE(reg_->CreateGlobalTag("GT_2026_v1", "first 2026 set").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->CreateGlobalTag("GT_2026_v1")));
  ASSERT_TRUE(reg_->AddToGlobalTag("GT_2026_v1", "btag_2026", "btag").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->AddToGlobalTag("GT_2026_v1", "btag_2026", "btag")));
  EXPECT_TRUE(absl::IsNotFound(reg_->AddToGlobalTag("GT_2026_v1", "nosuch", "other")));
  auto gt = reg_->Resolve("GT_2026_v1", "btag", 150);
  ASSERT_TRUE(gt.ok()) << gt.status();
  EXPECT_EQ(gt->version, 2);
  EXPECT_EQ(gt->tag, "btag_2026");
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("GT_2026_v1", "nosuch", 150).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->Resolve("GT_nosuch", "btag", 150).status()));
  auto entries = reg_->ListGlobalTag("GT_2026_v1");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].tag, "btag_2026");
}

TEST_P(RegistryTest, ExperimentsGroupRunsAndTagsAnnotateThem) {
  auto e = reg_->CreateExperiment("btag-training");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->CreateExperiment("btag-training").status()));
  auto by_name = reg_->GetExperimentByName("btag-training");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->id, e->id);
  EXPECT_TRUE(absl::IsNotFound(reg_->GetExperiment(e->id + 100).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->StartRun({.name = "x", .experiment_id = e->id + 100}).status()));

  auto r1 = reg_->StartRun({.name = "first", .experiment_id = e->id});
  auto r2 = reg_->StartRun({.name = "second", .experiment_id = e->id});
  auto loose = reg_->StartRun({.name = "loose"});
  ASSERT_TRUE(r1.ok() && r2.ok() && loose.ok());
  ASSERT_TRUE(reg_->SetRunTag(*r1, "team", "flavour").ok());
  ASSERT_TRUE(reg_->SetRunTag(*r1, "team", "btag").ok());  // replaced
  ASSERT_TRUE(reg_->EndRun(*r1, {}).ok());
  ASSERT_TRUE(reg_->SetRunTag(*r1, "reviewed", "yes").ok());  // tags outlive the run
  EXPECT_TRUE(absl::IsNotFound(reg_->SetRunTag(9999, "k", "v")));
  auto run = reg_->GetRun(*r1);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->experiment_id, e->id);
  EXPECT_EQ(run->tags, (std::map<std::string, std::string>{{"reviewed", "yes"}, {"team", "btag"}}));

  auto in_exp = reg_->SearchRuns({e->id}, 100);
  ASSERT_TRUE(in_exp.ok()) << in_exp.status();
  ASSERT_EQ(in_exp->size(), 2u);
  EXPECT_EQ((*in_exp)[0].id, *r2);  // newest first
  EXPECT_EQ((*in_exp)[1].id, *r1);
  auto limited = reg_->SearchRuns({e->id, 0}, 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 1u);
  auto none = reg_->SearchRuns({0}, 100);
  ASSERT_TRUE(none.ok());
  ASSERT_EQ(none->size(), 1u);
  EXPECT_EQ((*none)[0].id, *loose);
  EXPECT_FALSE(reg_->GetRun(*loose)->experiment_id.has_value());
}

// MLflow's lifecycle: deleted runs and experiments are kept, hidden from
// searches unless asked for, closed to writes, and restorable.
TEST_P(RegistryTest, RunsAndExperimentsAreDeletedAndRestored) {
  auto e = reg_->CreateExperiment("sweep");
  ASSERT_TRUE(e.ok()) << e.status();
  auto r1 = reg_->StartRun({.name = "a", .experiment_id = e->id});
  auto r2 = reg_->StartRun({.name = "b", .experiment_id = e->id});
  ASSERT_TRUE(r1.ok() && r2.ok());
  auto ids = [&](LifecycleView view) {
    std::vector<int64_t> out;
    auto runs = reg_->SearchRuns({e->id}, 100, view);
    EXPECT_TRUE(runs.ok()) << runs.status();
    if (runs.ok())
      for (const auto& r : *runs) out.push_back(r.id);
    return out;
  };
  ASSERT_TRUE(reg_->DeleteRun(*r1).ok());
  EXPECT_TRUE(reg_->GetRun(*r1)->deleted);
  EXPECT_FALSE(reg_->GetRun(*r2)->deleted);
  EXPECT_EQ(ids(LifecycleView::kActiveOnly), std::vector<int64_t>{*r2});
  EXPECT_EQ(ids(LifecycleView::kDeletedOnly), std::vector<int64_t>{*r1});
  EXPECT_EQ(ids(LifecycleView::kAll), (std::vector<int64_t>{*r2, *r1}));
  EXPECT_EQ(reg_->SearchRuns({e->id}, 100)->size(), 1u);  // active only by default
  absl::Status s = reg_->LogMetric(*r1, "loss", 0.5, 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "deleted")) << s;
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->SetRunTag(*r1, "k", "v")));
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->EndRun(*r1, {})));
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->DeleteRun(*r1)));
  EXPECT_TRUE(absl::IsNotFound(reg_->DeleteRun(99999)));
  ASSERT_TRUE(reg_->RestoreRun(*r1).ok());
  EXPECT_FALSE(reg_->GetRun(*r1)->deleted);
  EXPECT_TRUE(reg_->LogMetric(*r1, "loss", 0.5, 0).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->RestoreRun(*r1)));

  ASSERT_TRUE(reg_->SetExperimentTag(e->id, "team", "btag").ok());
  ASSERT_TRUE(reg_->SetExperimentTag(e->id, "team", "flavour").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->SetExperimentTag(e->id, "", "x")));
  EXPECT_TRUE(absl::IsNotFound(reg_->SetExperimentTag(e->id + 100, "k", "v")));
  ASSERT_TRUE(reg_->DeleteRun(*r2).ok());  // deleted before the experiment
  ASSERT_TRUE(reg_->DeleteExperiment(e->id).ok());
  auto got = reg_->GetExperiment(e->id);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->deleted);
  EXPECT_EQ(got->tags, (std::map<std::string, std::string>{{"team", "flavour"}}));
  EXPECT_GE(got->updated_at_ms, got->created_at_ms);
  EXPECT_TRUE(reg_->GetRun(*r1)->deleted);  // its runs go with it
  EXPECT_TRUE(ids(LifecycleView::kActiveOnly).empty());
  s = reg_->CreateExperiment("sweep").status();
  EXPECT_TRUE(absl::IsAlreadyExists(s) && absl::StrContains(s.message(), "deleted")) << s;
  s = reg_->StartRun({.name = "c", .experiment_id = e->id}).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "deleted")) << s;
  s = reg_->RestoreRun(*r1);
  EXPECT_TRUE(absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "restore the experiment")) << s;
  ASSERT_TRUE(reg_->RestoreExperiment(e->id).ok());
  EXPECT_FALSE(reg_->GetExperiment(e->id)->deleted);
  EXPECT_FALSE(reg_->GetRun(*r1)->deleted);  // the runs its deletion marked come back
  EXPECT_TRUE(reg_->StartRun({.name = "c", .experiment_id = e->id}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->RestoreExperiment(e->id)));
  auto listed = reg_->ListExperiments();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].tags.at("team"), "flavour");
}

// What MLflow's registry lets change on a published version: stage,
// description, tags. Files and numbers never change; versions are kept.
TEST_P(RegistryTest, VersionStagesDescriptionsAndTags) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  auto v1 = reg_->PushModelVersion("btag", {P("m1.onnx")});
  auto v2 = reg_->PushModelVersion("btag", {P("m2.onnx")});
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(v1->stage, "None");
  auto prod = reg_->SetVersionStage("btag", 1, "production");
  ASSERT_TRUE(prod.ok()) << prod.status();
  EXPECT_EQ(prod->stage, "Production");
  auto prod2 = reg_->SetVersionStage("btag", 2, "Production", /*archive_existing=*/true);
  ASSERT_TRUE(prod2.ok()) << prod2.status();
  EXPECT_EQ(reg_->GetVersion("btag", 1)->stage, "Archived");
  EXPECT_EQ(reg_->GetVersion("btag", 2)->stage, "Production");
  absl::Status s = reg_->SetVersionStage("btag", 2, "Live").status();
  EXPECT_TRUE(absl::IsInvalidArgument(s) && absl::StrContains(s.message(), "'Live'")) << s;
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->SetVersionStage("btag", 2, "None", true).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->SetVersionStage("btag", 7, "Staging").status()));

  ASSERT_TRUE(reg_->UpdateVersionDescription("btag", 2, "retrained").ok());
  ASSERT_TRUE(reg_->SetVersionTag("btag", 2, "validated", "yes").ok());
  ASSERT_TRUE(reg_->SetVersionTag("btag", 2, "scratch", "x").ok());
  ASSERT_TRUE(reg_->DeleteVersionTag("btag", 2, "scratch").ok());
  EXPECT_TRUE(absl::IsNotFound(reg_->DeleteVersionTag("btag", 2, "scratch")));
  auto got = reg_->GetVersion("btag", 2);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->description, "retrained");
  EXPECT_EQ(got->tags, (std::map<std::string, std::string>{{"validated", "yes"}}));
  EXPECT_GE(got->updated_at_ms, got->created_at_ms);
  EXPECT_EQ(got->files[0].sha256, v2->files[0].sha256);  // the files stay

  ASSERT_TRUE(reg_->UpdateModelDescription("btag", "b-jet tagger").ok());
  EXPECT_EQ(reg_->GetModel("btag")->description, "b-jet tagger");
  ASSERT_TRUE(reg_->SetAlias("btag", "champion", 2).ok());
  ASSERT_TRUE(reg_->RenameModel("btag", "btag2").ok());
  EXPECT_TRUE(absl::IsNotFound(reg_->GetModel("btag").status()));
  EXPECT_EQ(reg_->GetAlias("btag2", "champion")->version, 2);  // aliases follow the model
  ASSERT_TRUE(reg_->CreateModel("empty").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->RenameModel("empty", "btag2")));
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->RenameModel("empty", "bad name")));
  s = reg_->DeleteModel("btag2");
  EXPECT_TRUE(absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "published")) << s;
  EXPECT_TRUE(reg_->GetVersion("btag2", 1).ok());
  ASSERT_TRUE(reg_->DeleteModel("empty").ok());
  EXPECT_TRUE(absl::IsNotFound(reg_->GetModel("empty").status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->DeleteModel("empty")));
}

TEST_P(RegistryTest, ExperimentsRenameAndRunTagsAreRemoved) {
  auto e = reg_->CreateExperiment("scratch");
  auto other = reg_->CreateExperiment("taken");
  ASSERT_TRUE(e.ok() && other.ok());
  auto r = reg_->StartRun({.name = "r", .experiment_id = e->id});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(reg_->RenameExperiment(e->id, "renamed").ok());
  EXPECT_EQ(reg_->GetExperiment(e->id)->name, "renamed");
  EXPECT_EQ(reg_->GetExperimentByName("renamed")->id, e->id);
  EXPECT_TRUE(absl::IsNotFound(reg_->GetExperimentByName("scratch").status()));
  EXPECT_EQ(reg_->GetRun(*r)->experiment_id, e->id);  // its runs stay
  absl::Status s = reg_->RenameExperiment(e->id, "taken");
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'taken'")) << s;
  EXPECT_TRUE(absl::IsNotFound(reg_->RenameExperiment(e->id + 100, "x")));
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->RenameExperiment(e->id, "")));
  EXPECT_EQ(reg_->GetExperiment(e->id)->name, "renamed");

  ASSERT_TRUE(reg_->SetRunTag(*r, "keep", "1").ok());
  ASSERT_TRUE(reg_->SetRunTag(*r, "drop", "2").ok());
  ASSERT_TRUE(reg_->EndRun(*r, {}).ok());
  ASSERT_TRUE(reg_->DeleteRunTag(*r, "drop").ok());  // also after the run ended
  EXPECT_EQ(reg_->GetRun(*r)->tags, (std::map<std::string, std::string>{{"keep", "1"}}));
  s = reg_->DeleteRunTag(*r, "drop");
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'drop'")) << s;
  EXPECT_TRUE(absl::IsNotFound(reg_->DeleteRunTag(9999, "keep")));
}

TEST_P(RegistryTest, ClientTimesAreKept) {
  RunStart start;
  start.name = "timed";
  start.start_ms = 1700000000000;
  auto run = reg_->StartRun(start);
  ASSERT_TRUE(run.ok()) << run.status();
  RunBatch batch;
  batch.metrics = {{"loss", 0, 0.9, 1700000001000}, {"loss", 1, 0.5, 0}};  // 0: the time of logging
  ASSERT_TRUE(reg_->LogBatch(*run, batch).ok());
  RunEnd end;
  end.end_ms = 1700000060000;
  ASSERT_TRUE(reg_->EndRun(*run, end).ok());
  auto info = reg_->GetRun(*run);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->start_ms, 1700000000000);
  EXPECT_EQ(info->end_ms, 1700000060000);
  ASSERT_EQ(info->metrics.size(), 2u);
  EXPECT_EQ(info->metrics[0].time_ms, 1700000001000);
  EXPECT_GT(info->metrics[1].time_ms, 1700000060000);  // now, later than the client's times above
}

TEST_P(RegistryTest, LogBatchIsAllOrNothing) {
  auto run = reg_->StartRun({.name = "batch"});
  ASSERT_TRUE(run.ok());
  RunBatch first;
  first.params = {{"lr", "0.01"}};
  first.metrics = {{"loss", 0, 0.9, 0}, {"loss", 1, 0.5, 0}};
  first.tags = {{"team", "btag"}};
  ASSERT_TRUE(reg_->LogBatch(*run, first).ok());
  RunBatch again;  // the same parameter value again is fine
  again.params = {{"lr", "0.01"}, {"epochs", "3"}};
  ASSERT_TRUE(reg_->LogBatch(*run, again).ok());

  RunBatch conflicting;
  conflicting.params = {{"dropout", "0.1"}};
  conflicting.metrics = {{"loss", 2, 0.3, 0}, {"loss", 1, 0.4, 0}};  // step 1 is taken
  conflicting.tags = {{"team", "flavour"}};
  absl::Status s = reg_->LogBatch(*run, conflicting);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  RunBatch changed;
  changed.params = {{"lr", "0.1"}};
  s = reg_->LogBatch(*run, changed);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "'lr'")) << s;

  auto info = reg_->GetRun(*run);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->params, (std::map<std::string, std::string>{{"epochs", "3"}, {"lr", "0.01"}}));
  ASSERT_EQ(info->metrics.size(), 2u);  // nothing of the refused batches
  EXPECT_EQ(info->metrics[1].value, 0.5);
  EXPECT_EQ(info->tags.at("team"), "btag");

  ASSERT_TRUE(reg_->EndRun(*run, {}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->LogBatch(*run, again)));
  RunBatch tags_only;
  tags_only.tags = {{"reviewed", "yes"}};
  EXPECT_TRUE(reg_->LogBatch(*run, tags_only).ok());
}

TEST_P(RegistryTest, DatasetsRunsAndLineage) {
  WriteFile(dir_ / "a.csv", "x,y\n1,2\n");
  WriteFile(dir_ / "b.csv", "x,y\n3,4\n");
  DatasetOptions dso;
  dso.schema_json = R"({"x":"int","y":"int"})";
  dso.entries = 2;
  dso.stats_json = R"({"x":{"mean":2}})";
  auto ds1 = reg_->AddDatasetVersion("jets", {P("a.csv"), P("b.csv")}, dso);
  ASSERT_TRUE(ds1.ok()) << ds1.status();
  EXPECT_EQ(ds1->version, 1);
  EXPECT_EQ(ds1->files.size(), 2u);
  EXPECT_EQ(ds1->entries, 2);
  auto ds2 = reg_->AddDatasetVersion("jets", {P("a.csv")});
  ASSERT_TRUE(ds2.ok());
  EXPECT_EQ(ds2->version, 2);
  DatasetOptions bad;
  bad.schema_json = "{not json";
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->AddDatasetVersion("jets", {P("a.csv")}, bad).status()));
  EXPECT_EQ(reg_->ListDatasetVersions("jets")->size(), 2u);

  RunStart rs;
  rs.name = "train-btag";
  rs.params = {{"epochs", "10"}};
  rs.inputs = {{"jets", 1}};
  auto run = reg_->StartRun(rs);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(reg_->LogParam(*run, "lr", "0.01").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->LogParam(*run, "lr", "0.02")));
  for (int step = 0; step < 3; ++step) ASSERT_TRUE(reg_->LogMetric(*run, "loss", 1.0 / (step + 1), step).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->LogMetric(*run, "loss", 0.1, 2)));
  WriteFile(dir_ / "curve.txt", "loss curve");
  ASSERT_TRUE(reg_->LogArtifact(*run, P("curve.txt")).ok());
  RunEnd end;
  end.cpu_seconds = 12.5;
  end.gpu_seconds = 3.0;
  end.peak_memory_bytes = 1 << 20;
  ASSERT_TRUE(reg_->EndRun(*run, end).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->LogMetric(*run, "loss", 0.1, 9)));
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->EndRun(*run, end)));
  EXPECT_TRUE(absl::IsNotFound(reg_->LogParam(9999, "a", "b")));

  auto info = reg_->GetRun(*run);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->status, "finished");
  EXPECT_EQ(info->params.at("epochs"), "10");
  EXPECT_EQ(info->params.at("lr"), "0.01");
  ASSERT_EQ(info->metrics.size(), 3u);
  EXPECT_DOUBLE_EQ(info->metrics[2].value, 1.0 / 3);
  EXPECT_EQ(info->metrics[2].step, 2);
  EXPECT_EQ(info->artifacts.size(), 1u);
  EXPECT_EQ(info->cpu_seconds, 12.5);
  EXPECT_EQ(info->peak_memory_bytes, 1 << 20);
  EXPECT_TRUE(info->end_ms.has_value());
  EXPECT_FALSE(info->host.empty());

  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  PushOptions po;
  po.source_run = *run;
  po.datasets = {{"jets", 2}};
  auto v = reg_->PushModelVersion("btag", {P("m1.onnx")}, po);
  ASSERT_TRUE(v.ok()) << v.status();

  auto up = reg_->Upstream("btag", 1);
  ASSERT_TRUE(up.ok()) << up.status();
  std::set<std::string> edges;
  for (const auto& e : up->edges) edges.insert(absl::StrCat(e.from, " ", e.relation, " ", e.to));
  std::string run_ref = absl::StrCat("run:", *run);
  EXPECT_TRUE(edges.count(absl::StrCat("btag@1 produced_by ", run_ref)));
  EXPECT_TRUE(edges.count(absl::StrCat(run_ref, " consumed jets@1")));
  EXPECT_TRUE(edges.count("btag@1 trained_on jets@2"));

  auto down = reg_->Downstream("jets", 1);
  ASSERT_TRUE(down.ok());
  std::set<std::string> refs;
  for (const auto& n : down->nodes) refs.insert(n.ref);
  EXPECT_TRUE(refs.count(run_ref));
  EXPECT_TRUE(refs.count("btag@1"));
  auto down2 = reg_->Downstream("jets", 2);
  ASSERT_TRUE(down2.ok());
  EXPECT_EQ(down2->edges.size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(reg_->Downstream("jets", 3).status()));
}

std::set<std::string> EdgeSet(const Lineage& l) {
  std::set<std::string> out;
  for (const auto& e : l.edges) out.insert(absl::StrCat(e.from, " ", e.relation, " ", e.to));
  return out;
}

std::set<std::string> NodeSet(const Lineage& l) {
  std::set<std::string> out;
  for (const auto& n : l.nodes) out.insert(absl::StrCat(n.kind, " ", n.ref));
  return out;
}

// raw dataset -> preprocessing run -> derived dataset -> training run -> base
// model -> fine-tuning run -> tuned model: the whole chain either way.
TEST_P(RegistryTest, LineageWalksTheWholeGraph) {
  WriteFile(dir_ / "raw.csv", "x\n1\n2\n");
  WriteFile(dir_ / "derived.csv", "x\n2\n");
  ASSERT_TRUE(reg_->AddDatasetVersion("raw", {P("raw.csv")}).ok());
  RunStart pre;
  pre.name = "skim";
  pre.inputs = {{"raw", 1}};
  auto pre_run = reg_->StartRun(pre);
  ASSERT_TRUE(pre_run.ok()) << pre_run.status();
  DatasetOptions derived_opts;
  derived_opts.source_run = *pre_run;
  auto derived = reg_->AddDatasetVersion("derived", {P("derived.csv")}, derived_opts);
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ(derived->source_run, *pre_run);
  EXPECT_EQ(reg_->GetDatasetVersion("derived", 1)->source_run, *pre_run);
  EXPECT_FALSE(reg_->GetDatasetVersion("raw", 1)->source_run.has_value());

  RunStart train;
  train.inputs = {{"derived", 1}};
  auto train_run = reg_->StartRun(train);
  ASSERT_TRUE(train_run.ok());
  ASSERT_TRUE(reg_->CreateModel("base").ok());
  PushOptions base_opts;
  base_opts.source_run = *train_run;
  base_opts.datasets = {{"derived", 1}};
  ASSERT_TRUE(reg_->PushModelVersion("base", {P("m1.onnx")}, base_opts).ok());

  RunStart tune;
  tune.model_inputs = {{"base", 1}};
  tune.inputs = {{"derived", 1}};
  auto tune_run = reg_->StartRun(tune);
  ASSERT_TRUE(tune_run.ok()) << tune_run.status();
  auto tune_info = reg_->GetRun(*tune_run);
  ASSERT_TRUE(tune_info.ok());
  ASSERT_EQ(tune_info->model_inputs.size(), 1u);
  EXPECT_EQ(tune_info->model_inputs[0].model, "base");
  EXPECT_EQ(tune_info->model_inputs[0].version, 1);
  ASSERT_TRUE(reg_->CreateModel("tuned").ok());
  PushOptions tuned_opts;
  tuned_opts.source_run = *tune_run;
  ASSERT_TRUE(reg_->PushModelVersion("tuned", {P("m2.onnx")}, tuned_opts).ok());

  const std::string pre_ref = absl::StrCat("run:", *pre_run), train_ref = absl::StrCat("run:", *train_run),
                    tune_ref = absl::StrCat("run:", *tune_run);
  auto up = reg_->Upstream("tuned", 1);
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_FALSE(up->truncated);
  EXPECT_EQ(NodeSet(*up), (std::set<std::string>{"model_version tuned@1", "run " + tune_ref, "model_version base@1",
                                                 "dataset_version derived@1", "run " + train_ref, "run " + pre_ref,
                                                 "dataset_version raw@1"}));
  EXPECT_EQ(up->nodes.size(), 7u);  // each once
  EXPECT_EQ(EdgeSet(*up), (std::set<std::string>{
                              "tuned@1 produced_by " + tune_ref,
                              tune_ref + " consumed base@1",
                              tune_ref + " consumed derived@1",
                              "base@1 produced_by " + train_ref,
                              "base@1 trained_on derived@1",
                              train_ref + " consumed derived@1",
                              "derived@1 produced_by " + pre_ref,
                              pre_ref + " consumed raw@1",
                          }));
  EXPECT_EQ(up->edges.size(), 8u);  // each once, though derived@1 is reached three ways
  EXPECT_EQ(up->nodes[0].ref, "tuned@1");
  for (const auto& n : up->nodes) {
    if (n.ref == "raw@1") EXPECT_EQ(n.depth, 4);
    if (n.ref == "base@1") EXPECT_EQ(n.depth, 2);
  }

  auto down = reg_->Downstream("raw", 1);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(NodeSet(*down), NodeSet(*up));  // the same chain, walked the other way
  EXPECT_EQ(EdgeSet(*down), EdgeSet(*up));

  // Depth limits cut the walk; the node cap flags it.
  LineageOptions two;
  two.max_depth = 2;
  auto cut = reg_->Upstream("tuned", 1, two);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(NodeSet(*cut), (std::set<std::string>{"model_version tuned@1", "run " + tune_ref, "model_version base@1",
                                                  "dataset_version derived@1"}));
  EXPECT_EQ(cut->edges.size(), 3u);
  EXPECT_FALSE(cut->truncated);
  LineageOptions one;
  one.max_depth = 1;
  auto down1 = reg_->Downstream("raw", 1, one);
  ASSERT_TRUE(down1.ok());
  EXPECT_EQ(NodeSet(*down1), (std::set<std::string>{"dataset_version raw@1", "run " + pre_ref}));
  LineageOptions zero;
  zero.max_depth = 0;
  EXPECT_EQ(reg_->Upstream("tuned", 1, zero)->nodes.size(), 1u);
  LineageOptions capped;
  capped.max_nodes = 3;
  auto small = reg_->Upstream("tuned", 1, capped);
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->truncated);
  EXPECT_EQ(small->nodes.size(), 3u);
  capped.max_nodes = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->Upstream("tuned", 1, capped).status()));

  // Refused references leave nothing behind.
  RunStart bad_model;
  bad_model.model_inputs = {{"base", 7}};
  EXPECT_TRUE(absl::IsNotFound(reg_->StartRun(bad_model).status()));
  bad_model.model_inputs = {{"nosuch", 1}};
  EXPECT_TRUE(absl::IsNotFound(reg_->StartRun(bad_model).status()));
  DatasetOptions bad_run;
  bad_run.source_run = 9999;
  EXPECT_TRUE(absl::IsNotFound(reg_->AddDatasetVersion("derived", {P("derived.csv")}, bad_run).status()));
  EXPECT_EQ(reg_->ListDatasetVersions("derived")->size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(reg_->Upstream("tuned", 2).status()));
}

// Downstream of a model version: the runs that used it, what they produced,
// on to the end, and the aliases and IOV tags pointing at every model version
// on the way; downstream of a run the same from the run.
TEST_P(RegistryTest, DownstreamOfAModelVersionOrARunFollowsRunsAndPointers) {
  ASSERT_TRUE(reg_->CreateModel("base").ok());
  ASSERT_TRUE(reg_->PushModelVersion("base", {P("m1.onnx")}).ok());  // base@1
  ASSERT_TRUE(reg_->PushModelVersion("base", {P("m2.onnx")}).ok());  // base@2: used by nothing
  ASSERT_TRUE(reg_->SetAlias("base", "production", 1).ok());
  ASSERT_TRUE(reg_->AddInterval("base_2026", "base", 1, {.first_run = 1, .last_run = 99}).ok());
  ASSERT_TRUE(reg_->AddInterval("base_2026", "base", 1, {.first_run = 100, .last_run = 199}).ok());

  // base@1 -> distill run -> small@1 (+ a derived dataset) -> calibration run -> calibrated@1
  RunStart distill;
  distill.name = "distill";
  distill.model_inputs = {{"base", 1}};
  auto distill_run = reg_->StartRun(distill);
  ASSERT_TRUE(distill_run.ok()) << distill_run.status();
  ASSERT_TRUE(reg_->CreateModel("small").ok());
  PushOptions small_opts;
  small_opts.source_run = *distill_run;
  ASSERT_TRUE(reg_->PushModelVersion("small", {P("m2.onnx")}, small_opts).ok());
  ASSERT_TRUE(reg_->SetAlias("small", "staging", 1).ok());
  WriteFile(dir_ / "soft_labels.csv", "x\n0.5\n");
  DatasetOptions labels_opts;
  labels_opts.source_run = *distill_run;
  ASSERT_TRUE(reg_->AddDatasetVersion("soft_labels", {P("soft_labels.csv")}, labels_opts).ok());
  RunStart calib;
  calib.model_inputs = {{"small", 1}};
  calib.inputs = {{"soft_labels", 1}};
  auto calib_run = reg_->StartRun(calib);
  ASSERT_TRUE(calib_run.ok()) << calib_run.status();
  ASSERT_TRUE(reg_->CreateModel("calibrated").ok());
  PushOptions calib_opts;
  calib_opts.source_run = *calib_run;
  ASSERT_TRUE(reg_->PushModelVersion("calibrated", {P("m1.onnx")}, calib_opts).ok());
  ASSERT_TRUE(reg_->AddInterval("calib_2026", "calibrated", 1, {.first_run = 1, .last_run = 50}).ok());
  // An unrelated run that used base@2 stays out of base@1's answer.
  RunStart other;
  other.model_inputs = {{"base", 2}};
  auto other_run = reg_->StartRun(other);
  ASSERT_TRUE(other_run.ok());

  const std::string d = absl::StrCat("run:", *distill_run), c = absl::StrCat("run:", *calib_run);
  auto down = reg_->DownstreamOfModel("base", 1);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_FALSE(down->truncated);
  EXPECT_EQ(NodeSet(*down),
            (std::set<std::string>{"model_version base@1", "alias base@production", "iov_tag base_2026", "run " + d,
                                   "model_version small@1", "alias small@staging", "dataset_version soft_labels@1",
                                   "run " + c, "model_version calibrated@1", "iov_tag calib_2026"}));
  EXPECT_EQ(down->nodes.size(), 10u);  // each once: base_2026 has two intervals on base@1
  EXPECT_EQ(EdgeSet(*down), (std::set<std::string>{
                                "base@production points_to base@1",
                                "base_2026 points_to base@1",
                                d + " consumed base@1",
                                "small@1 produced_by " + d,
                                "soft_labels@1 produced_by " + d,
                                "small@staging points_to small@1",
                                c + " consumed small@1",
                                c + " consumed soft_labels@1",
                                "calibrated@1 produced_by " + c,
                                "calib_2026 points_to calibrated@1",
                            }));
  EXPECT_EQ(down->edges.size(), 10u);
  EXPECT_EQ(down->nodes[0].ref, "base@1");
  std::map<std::string, int> depth;
  for (const auto& n : down->nodes) depth[n.ref] = n.depth;
  EXPECT_EQ(depth["base@production"], 1);
  EXPECT_EQ(depth["calibrated@1"], 4);
  EXPECT_EQ(depth["calib_2026"], 5);

  // A moved alias no longer points at the old version.
  ASSERT_TRUE(reg_->SetAlias("base", "production", 2).ok());
  auto moved = reg_->DownstreamOfModel("base", 1);
  ASSERT_TRUE(moved.ok());
  EXPECT_FALSE(NodeSet(*moved).count("alias base@production"));
  auto base2 = reg_->DownstreamOfModel("base", 2);
  ASSERT_TRUE(base2.ok());
  EXPECT_EQ(NodeSet(*base2), (std::set<std::string>{"model_version base@2", "alias base@production",
                                                    "run " + absl::StrCat("run:", *other_run)}));

  // From the distillation run: what it made and on from there.
  auto from_run = reg_->DownstreamOfRun(*distill_run);
  ASSERT_TRUE(from_run.ok()) << from_run.status();
  EXPECT_EQ(from_run->nodes[0].ref, d);
  EXPECT_EQ(NodeSet(*from_run),
            (std::set<std::string>{"run " + d, "model_version small@1", "alias small@staging",
                                   "dataset_version soft_labels@1", "run " + c, "model_version calibrated@1",
                                   "iov_tag calib_2026"}));

  // Limits apply to pointers too; unknown starts are NotFound.
  LineageOptions one;
  one.max_depth = 1;
  auto near = reg_->DownstreamOfModel("small", 1, one);
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(NodeSet(*near), (std::set<std::string>{"model_version small@1", "alias small@staging", "run " + c}));
  LineageOptions capped;
  capped.max_nodes = 2;
  auto small = reg_->DownstreamOfModel("small", 1, capped);
  ASSERT_TRUE(small.ok());
  EXPECT_TRUE(small->truncated);
  EXPECT_EQ(small->nodes.size(), 2u);
  EXPECT_TRUE(absl::IsNotFound(reg_->DownstreamOfModel("base", 9).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->DownstreamOfModel("nosuch", 1).status()));
  EXPECT_TRUE(absl::IsNotFound(reg_->DownstreamOfRun(999999).status()));
  // Upstream walks stay as they were: no pointers.
  auto up = reg_->Upstream("calibrated", 1);
  ASSERT_TRUE(up.ok());
  for (const auto& n : up->nodes) EXPECT_TRUE(n.kind != "alias" && n.kind != "iov_tag") << n.ref;
}

// A registry a hepml of schema version 3 wrote: opened by this one, every
// record is still there and the new lineage works on it.
TEST_P(RegistryTest, UpgradeFromSchema3KeepsData) {
  std::string uri = GetParam() == "Postgres" ? PostgresServer::Get().NewDatabase()
                                              : absl::StrCat("sqlite://", (dir_ / "v3.db").string());
  WriteFile(dir_ / "jets.csv", "x\n1\n");
  auto blobs = BlobStore::Open(BlobUri());
  ASSERT_TRUE(blobs.ok());
  auto model_file = (*blobs)->PutFile(P("m1.onnx"));
  auto data_file = (*blobs)->PutFile(P("jets.csv"));
  ASSERT_TRUE(model_file.ok() && data_file.ok());
  {
    auto db = MetadataDb::Open(uri);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(MigrateSchema(**db, 3).ok());
    ASSERT_EQ(*SchemaVersion(**db), 3);
    auto exec = [&](const std::string& sql, std::vector<SqlValue> args) {
      absl::Status s = (*db)->Exec(sql, args);
      ASSERT_TRUE(s.ok()) << sql << ": " << s;
    };
    exec("INSERT INTO models (id, name, description, created_at, created_by, next_version)"
         " VALUES (1, 'btag', 'old', 1, 'alice', 2)", {});
    exec("INSERT INTO runs (id, name, status, host, code_version, created_by, start_at, end_at)"
         " VALUES (1, 'train', 'finished', 'h', 'abc', 'alice', 1, 2)", {});
    exec("INSERT INTO datasets (id, name, description, created_at, next_version) VALUES (1, 'jets', '', 1, 2)", {});
    exec("INSERT INTO dataset_versions (id, dataset_id, version, schema_json, entries, stats_json, created_at,"
         " created_by) VALUES (1, 1, 1, '', 1, '', 1, 'alice')", {});
    exec("INSERT INTO dataset_files (dataset_version_id, name, sha256, size, manifest_id) VALUES (1, 'jets.csv', ?, ?, ?)",
         {data_file->id, static_cast<int64_t>(data_file->size), data_file->id});
    exec("INSERT INTO run_inputs (run_id, dataset_version_id) VALUES (1, 1)", {});
    exec("INSERT INTO model_versions (id, model_id, version, inputs_json, outputs_json, params_json, metrics_json,"
         " tags_json, source_run_id, code_version, created_at, created_by)"
         " VALUES (1, 1, 1, '[]', '[]', '{\"lr\":\"0.1\"}', '{}', '{}', 1, 'abc', 1, 'alice')", {});
    exec("INSERT INTO model_files (version_id, name, sha256, size, manifest_id) VALUES (1, 'm1.onnx', ?, ?, ?)",
         {model_file->id, static_cast<int64_t>(model_file->size), model_file->id});
    exec("INSERT INTO model_version_datasets (version_id, dataset_version_id) VALUES (1, 1)", {});
    if (GetParam() == "Postgres") {
      // Explicit ids leave PostgreSQL's sequences behind; a real v3 registry's are in step.
      for (const char* t : {"models", "runs", "datasets", "dataset_versions", "model_versions"}) {
        exec(absl::StrCat("SELECT setval(pg_get_serial_sequence('", t, "', 'id'), 1)"), {});
      }
    }
  }
  auto opened = Registry::OpenWithBlobStore(uri, std::move(*blobs));
  ASSERT_TRUE(opened.ok()) << opened.status();
  Registry& reg = **opened;
  {
    auto db = MetadataDb::Open(uri);
    EXPECT_EQ(*SchemaVersion(**db), LatestSchemaVersion());
    EXPECT_EQ(LatestSchemaVersion(), 5);
  }
  auto v = reg.GetVersion("btag", 1);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->params.at("lr"), "0.1");
  EXPECT_EQ(v->source_run, 1);
  EXPECT_EQ(v->stage, "None");  // migration 5's default for versions published before it
  EXPECT_EQ(v->updated_at_ms, v->created_at_ms);
  ASSERT_EQ(v->datasets.size(), 1u);
  EXPECT_EQ(v->datasets[0].dataset, "jets");
  auto ds = reg.GetDatasetVersion("jets", 1);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_FALSE(ds->source_run.has_value());
  EXPECT_EQ(ds->files.at(0).name, "jets.csv");
  auto run = reg.GetRun(1);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->inputs.size(), 1u);
  EXPECT_TRUE(run->model_inputs.empty());
  ASSERT_TRUE(reg.Pull("btag@1", P("pulled.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "pulled.onnx"), ReadFile(dir_ / "m1.onnx"));
  EXPECT_EQ(EdgeSet(*reg.Upstream("btag", 1)),
            (std::set<std::string>{"btag@1 produced_by run:1", "btag@1 trained_on jets@1", "run:1 consumed jets@1"}));
  // The new records on the upgraded database.
  RunStart tune;
  tune.model_inputs = {{"btag", 1}};
  auto tune_run = reg.StartRun(tune);
  ASSERT_TRUE(tune_run.ok()) << tune_run.status();
  DatasetOptions o;
  o.source_run = *tune_run;
  auto made = reg.AddDatasetVersion("jets", {P("jets.csv")}, o);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->version, 2);
  auto down = reg.Downstream("jets", 1);
  ASSERT_TRUE(down.ok());
  EXPECT_TRUE(NodeSet(*down).count("dataset_version jets@2")) << absl::StrJoin(NodeSet(*down), ", ");
}

TEST_P(RegistryTest, ArtifactsByPath) {
  auto run = reg_->StartRun({});
  ASSERT_TRUE(run.ok());
  WriteFile(dir_ / "roc.png", "not really a png");
  auto f = reg_->LogArtifact(*run, P("roc.png"), "plots/roc.png");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->name, "plots/roc.png");
  auto b = reg_->LogArtifactBytes(*run, "notes.txt", std::string("hello\0world", 11));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->size, 11u);
  ASSERT_TRUE(reg_->GetArtifact(*run, "notes.txt", P("notes.out")).ok());
  EXPECT_EQ(ReadFile(dir_ / "notes.out"), std::string("hello\0world", 11));
  ASSERT_TRUE(reg_->GetArtifact(*run, "plots/roc.png", P("roc.out")).ok());
  EXPECT_EQ(ReadFile(dir_ / "roc.out"), "not really a png");
  EXPECT_TRUE(absl::IsNotFound(reg_->GetArtifact(*run, "plots/nope.png", P("x")).status()));
  EXPECT_TRUE(absl::IsAlreadyExists(reg_->LogArtifactBytes(*run, "notes.txt", "again").status()));
  for (const char* bad : {"../escape", "/etc/passwd", "a//b", "a/./b", "a/", ""}) {
    auto s = reg_->LogArtifactBytes(*run, bad, "x").status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad << ": " << s;
    if (*bad) EXPECT_TRUE(absl::StrContains(s.message(), bad)) << s;
  }
  EXPECT_TRUE(absl::IsNotFound(reg_->LogArtifactBytes(9999, "x.txt", "x").status()));
  ASSERT_TRUE(reg_->EndRun(*run, {}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(reg_->LogArtifactBytes(*run, "late.txt", "x").status()));
  EXPECT_EQ(reg_->GetRun(*run)->artifacts.size(), 2u);
}

// A minimal HTTP server on a loopback port: records one POST body, answers 200.
class OneShotHttpServer {
 public:
  OneShotHttpServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 4);
    thread_ = std::thread([this] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (true) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, n);
        auto hdr_end = req.find("\r\n\r\n");
        if (hdr_end == std::string::npos) continue;
        auto cl = req.find("Content-Length: ");
        size_t want = cl == std::string::npos ? 0 : std::stoul(req.substr(cl + 16));
        if (req.size() >= hdr_end + 4 + want) break;
      }
      request_ = req;
      std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      close(c);
    });
  }
  ~OneShotHttpServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  std::string Request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST_P(RegistryTest, EventsFireHooksAfterCommit) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  OneShotHttpServer http;
  std::string out = P("hook_out");
  fs::create_directories(out);
  ASSERT_TRUE(reg_->AddHook("model_version.created", absl::StrCat("cat > ", out, "/$HEPML_EVENT_ID.json")).ok());
  ASSERT_TRUE(reg_->AddHook("model_version.created", absl::StrCat("http://127.0.0.1:", http.port(), "/hook")).ok());
  ASSERT_TRUE(reg_->AddHook("alias.moved", "exit 3").ok());
  ASSERT_TRUE(reg_->AddHook("*", "true").ok());  // never reads stdin
  EXPECT_TRUE(absl::IsInvalidArgument(reg_->AddHook("nosuch.event", "true").status()));
  EXPECT_EQ(reg_->ListHooks()->size(), 4u);

  auto v = reg_->PushModelVersion("btag", {P("m1.onnx")});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(reg_->last_hook_failures().empty());
  auto events = reg_->Events();
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "model_version.created");
  auto from_cmd = nlohmann::json::parse(ReadFile(fs::path(out) / absl::StrCat((*events)[0].id, ".json")));
  EXPECT_EQ(from_cmd["kind"], "model_version.created");
  EXPECT_EQ(from_cmd["payload"]["model"], "btag");
  EXPECT_EQ(from_cmd["payload"]["version"], 1);
  std::string req = http.Request();
  EXPECT_TRUE(absl::StartsWith(req, "POST /hook HTTP/1.1")) << req;
  EXPECT_TRUE(absl::StrContains(req, "\"model_version.created\"")) << req;

  // A failing hook is reported; the change stays.
  ASSERT_TRUE(reg_->SetAlias("btag", "production", 1).ok());
  auto failures = reg_->last_hook_failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(absl::StrContains(failures[0].message, "exited with 3")) << failures[0].message;
  EXPECT_EQ(reg_->GetAlias("btag", "production")->version, 1);
  // A refused change records no event and fires nothing.
  EXPECT_FALSE(reg_->SetAlias("btag", "production", 5).ok());
  EXPECT_TRUE(reg_->last_hook_failures().empty());
  EXPECT_EQ(reg_->Events()->size(), 2u);
}

TEST_P(RegistryTest, AHookThatHangsIsKilledAtItsTimeoutAndTheChangeStays) {
  reg_ = OpenRegistry("tester", 0.5);
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  std::string pids = P("hook_pids");
  // The shell and a child it starts: both must be gone after the timeout.
  ASSERT_TRUE(reg_->AddHook("model_version.created",
                            absl::StrCat("sleep 60 & echo $$ $! > ", pids, "; wait"))
                  .ok());
  auto start = std::chrono::steady_clock::now();
  auto v = reg_->PushModelVersion("btag", {P("m1.onnx")});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_LT(took, 20.0) << "the push waited for the hung hook";
  auto failures = reg_->last_hook_failures();
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(absl::StrContains(failures[0].message, "did not finish within 0.5 s")) << failures[0].message;
  EXPECT_EQ(reg_->ResolveRef("btag")->version, 1);
  std::istringstream in(ReadFile(pids));
  pid_t shell = 0, sleeper = 0;
  in >> shell >> sleeper;
  ASSERT_GT(shell, 0);
  ASSERT_GT(sleeper, 0);
  // Killed (a zombie waiting for its new parent counts as gone).
  auto running = [](pid_t pid) {
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    if (!std::getline(stat, line)) return false;
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
  };
  for (int i = 0; i < 100 && running(sleeper); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(running(shell));
  EXPECT_FALSE(running(sleeper));
}

TEST_P(RegistryTest, FsckAndGcUseTheManifestsMetadataReferences) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m1.onnx")}).ok());
  WriteFile(dir_ / "a.csv", "x\n1\n");
  ASSERT_TRUE(reg_->AddDatasetVersion("jets", {P("a.csv")}).ok());
  auto fsck = reg_->Fsck();
  ASSERT_TRUE(fsck.ok()) << fsck.status();
  EXPECT_TRUE(fsck->ok());
  EXPECT_EQ(fsck->referenced, 2u);

  // An orphan (stored, never committed) goes; referenced data stays.
  auto blobs = BlobStore::Open(BlobUri());
  ASSERT_TRUE(blobs.ok());
  auto orphan = (*blobs)->PutBytes("orphan bytes");
  ASSERT_TRUE(orphan.ok());
  auto gc = reg_->Gc(/*grace_seconds=*/0);
  ASSERT_TRUE(gc.ok()) << gc.status();
  EXPECT_EQ(gc->live_manifests, 2u);
  EXPECT_EQ(gc->manifests_removed, 1u);
  EXPECT_FALSE((*blobs)->HasManifest(orphan->id));
  ASSERT_TRUE(reg_->Pull("btag@1", P("back.onnx")).ok());
  EXPECT_EQ(ReadFile(dir_ / "back.onnx"), ReadFile(dir_ / "m1.onnx"));

  // A referenced blob that went missing is a problem fsck names.
  auto v = reg_->GetVersion("btag", 1);
  std::string id = v->files[0].manifest_id;
  // (Whatever the store's layout: every stored file under blobs/ goes.)
  std::vector<fs::path> stored;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "blobs")) {
    if (e.is_regular_file()) stored.push_back(e.path());
  }
  for (const auto& p : stored) fs::remove(p);
  fsck = reg_->Fsck();
  ASSERT_TRUE(fsck.ok());
  ASSERT_FALSE(fsck->ok());
  bool named = false;
  for (const auto& p : fsck->problems) named = named || absl::StrContains(p, id);
  EXPECT_TRUE(named) << "no problem names " << id << ": " << fsck->problems[0];
  EXPECT_FALSE(reg_->Pull("btag@1", P("gone.onnx")).ok());
  EXPECT_FALSE(fs::exists(dir_ / "gone.onnx"));
}

TEST_P(RegistryTest, NewerSchemaIsRefusedByAnOlderBinary) {
  reg_.reset();
  {
    auto db = MetadataDb::Open(uri_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                            {int64_t{999}, std::string("from the future"), int64_t{0}})
                    .ok());
  }
  auto blobs = BlobStore::Open(BlobUri());
  auto r = Registry::OpenWithBlobStore(uri_, std::move(*blobs));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "999")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "newer")) << r.status();
}

TEST_P(RegistryTest, OlderSchemaIsMigratedOnOpen) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  reg_.reset();
  {
    // Take the database back to schema version 1.
    auto db = MetadataDb::Open(uri_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("DROP INDEX model_versions_by_stage").ok());
    for (const char* column : {"stage", "description", "updated_at"}) {
      ASSERT_TRUE((*db)->Exec(absl::StrCat("ALTER TABLE model_versions DROP COLUMN ", column)).ok());
    }
    ASSERT_TRUE((*db)->Exec("DROP TABLE experiment_tags").ok());
    ASSERT_TRUE((*db)->Exec("ALTER TABLE experiments DROP COLUMN updated_at").ok());
    ASSERT_TRUE((*db)->Exec("ALTER TABLE experiments DROP COLUMN deleted_at").ok());
    ASSERT_TRUE((*db)->Exec("ALTER TABLE runs DROP COLUMN deleted_at").ok());
    ASSERT_TRUE((*db)->Exec("DELETE FROM schema_version WHERE version = 5").ok());
    ASSERT_TRUE((*db)->Exec("DROP INDEX run_model_inputs_by_version").ok());
    ASSERT_TRUE((*db)->Exec("DROP TABLE run_model_inputs").ok());
    ASSERT_TRUE((*db)->Exec("DROP INDEX dataset_versions_by_run").ok());
    ASSERT_TRUE((*db)->Exec("ALTER TABLE dataset_versions DROP COLUMN source_run_id").ok());
    ASSERT_TRUE((*db)->Exec("DELETE FROM schema_version WHERE version = 4").ok());
    ASSERT_TRUE((*db)->Exec("DROP TABLE run_tags").ok());
    ASSERT_TRUE((*db)->Exec("DROP INDEX runs_by_experiment").ok());
    ASSERT_TRUE((*db)->Exec("ALTER TABLE runs DROP COLUMN experiment_id").ok());
    ASSERT_TRUE((*db)->Exec("DROP TABLE experiments").ok());
    ASSERT_TRUE((*db)->Exec("DELETE FROM schema_version WHERE version = 3").ok());
    ASSERT_TRUE((*db)->Exec("DROP INDEX iovs_by_tag_first_time").ok());
    ASSERT_TRUE((*db)->Exec("DELETE FROM schema_version WHERE version = 2").ok());
  }
  reg_ = OpenRegistry();
  ASSERT_NE(reg_, nullptr);
  EXPECT_TRUE(reg_->GetModel("btag").ok());  // data kept
  auto db = MetadataDb::Open(uri_);
  auto rows = (*db)->Query("SELECT version FROM schema_version ORDER BY version");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 5u);
  EXPECT_EQ((*rows)[1].Int(0), 2);
  EXPECT_EQ((*rows)[2].Int(0), 3);
  EXPECT_EQ((*rows)[3].Int(0), 4);
  EXPECT_EQ((*rows)[4].Int(0), 5);
  EXPECT_EQ(reg_->GetModel("btag")->name, "btag");
  // The index of migration 2 is back: creating it again fails.
  EXPECT_FALSE((*db)->Exec("CREATE INDEX iovs_by_tag_first_time ON iovs (tag_id, first_time)").ok());
}

// 16 processes' worth of first opens of one empty database at once: the
// schema is created once, every open succeeds.
TEST_P(RegistryTest, ConcurrentFirstOpensMigrateOnce) {
  std::string uri = GetParam() == "Postgres" ? PostgresServer::Get().NewDatabase()
                                              : absl::StrCat("sqlite://", (dir_ / "fresh.db").string());
  constexpr int kOpeners = 16;
  std::vector<std::string> errors(kOpeners);
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto blobs = BlobStore::Open(BlobUri());
      auto r = Registry::OpenWithBlobStore(uri, std::move(*blobs));
      if (!r.ok()) {
        errors[i] = std::string(r.status().message());
        return;
      }
      auto m = (*r)->CreateModel(absl::StrCat("model", i));
      if (!m.ok()) errors[i] = std::string(m.status().message());
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kOpeners; ++i) EXPECT_EQ(errors[i], "") << "opener " << i;
  auto db = MetadataDb::Open(uri);
  ASSERT_TRUE(db.ok());
  auto rows = (*db)->Query("SELECT version FROM schema_version ORDER BY version");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), static_cast<size_t>(LatestSchemaVersion()));  // each migration once
  auto models = (*db)->Query("SELECT count(*) FROM models");
  ASSERT_TRUE(models.ok());
  EXPECT_EQ((*models)[0].Int(0), kOpeners);
}

// 16 writers, each with its own connection, push versions of one model at
// once: every push succeeds, numbers are unique and dense.
TEST_P(RegistryTest, ConcurrentPushesGetUniqueDenseVersions) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  constexpr int kWriters = 16, kPushes = 4;
  std::vector<std::unique_ptr<Registry>> regs;
  for (int i = 0; i < kWriters; ++i) {
    regs.push_back(OpenRegistry(absl::StrCat("writer", i)));
    ASSERT_NE(regs.back(), nullptr);
  }
  std::vector<std::vector<int64_t>> got(kWriters);
  std::vector<std::string> errors(kWriters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kPushes; ++k) {
        PushOptions o;
        o.params = {{"writer", std::to_string(i)}, {"k", std::to_string(k)}};
        auto v = regs[i]->PushModelVersion("btag", {P(k % 2 ? "m1.onnx" : "m2.onnx")}, o);
        if (!v.ok()) {
          errors[i] = std::string(v.status().message());
          return;
        }
        got[i].push_back(v->version);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<int64_t> all;
  size_t count = 0;
  for (int i = 0; i < kWriters; ++i) {
    EXPECT_EQ(errors[i], "") << "writer " << i;
    for (int64_t v : got[i]) all.insert(v);
    count += got[i].size();
  }
  EXPECT_EQ(count, static_cast<size_t>(kWriters * kPushes));
  EXPECT_EQ(all.size(), count) << "a version number was handed out twice";
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kWriters * kPushes);
  auto versions = reg_->ListVersions("btag");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), static_cast<size_t>(kWriters * kPushes));
  // No lost writes: each stored version carries the writer that pushed it.
  for (const ModelVersion& v : *versions) {
    int w = std::stoi(v.params.at("writer"));
    EXPECT_EQ(v.created_by, absl::StrCat("writer", w));
    EXPECT_NE(std::find(got[w].begin(), got[w].end(), v.version), got[w].end());
  }
}

// 16 writers race to claim the same run range: exactly one wins.
TEST_P(RegistryTest, ConcurrentOverlappingIntervalsOneWins) {
  ASSERT_TRUE(reg_->CreateModel("btag").ok());
  ASSERT_TRUE(reg_->PushModelVersion("btag", {P("m1.onnx")}).ok());
  constexpr int kWriters = 16;
  std::vector<std::unique_ptr<Registry>> regs;
  for (int i = 0; i < kWriters; ++i) regs.push_back(OpenRegistry());
  std::atomic<int> ok{0}, overlap{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto s = regs[i]->AddInterval("race", "btag", 1, {.first_run = 100 + i, .last_run = 200 + i});
      if (s.ok()) ++ok;
      else if (absl::IsFailedPrecondition(s)) ++overlap;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(overlap.load(), kWriters - 1);
  EXPECT_EQ(reg_->ListIntervals("race")->size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryTest, ::testing::Values("Sqlite", "Postgres"),
                         [](const auto& info) { return info.param; });

// Opening: broken URIs and a corrupt database file are clear errors.
TEST(RegistryOpenSqlite, BrokenUrisAndCorruptFilesAreClearErrors) {
  char tmpl[] = "/tmp/hepml_registry_open_XXXXXX";
  fs::path dir = mkdtemp(tmpl);
  auto blobs = [&] { return std::move(*BlobStore::Open("file://" + (dir / "blobs").string())); };
  for (std::string uri : {"mysql://db", "sqlite://relative.db", "postgresql://", "sqlite:///"}) {
    auto r = Registry::OpenWithBlobStore(uri, blobs());
    ASSERT_FALSE(r.ok()) << uri;
    EXPECT_TRUE(absl::StrContains(r.status().message(), uri.substr(0, 6))) << r.status();
  }
  auto unreachable = Registry::OpenWithBlobStore(
      absl::StrCat("postgresql://postgres:s3cret@127.0.0.1:", FreePort(), "/x"), blobs());
  ASSERT_FALSE(unreachable.ok());
  EXPECT_TRUE(absl::IsUnavailable(unreachable.status())) << unreachable.status();
  EXPECT_TRUE(absl::StrContains(unreachable.status().message(), "postgres:***@127.0.0.1")) << unreachable.status();
  EXPECT_FALSE(absl::StrContains(unreachable.status().message(), "s3cret")) << unreachable.status();

  WriteFile(dir / "garbage.db", std::string(8192, 'x'));
  auto corrupt = Registry::OpenWithBlobStore(absl::StrCat("sqlite://", (dir / "garbage.db").string()), blobs());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_TRUE(absl::IsDataLoss(corrupt.status())) << corrupt.status();
  EXPECT_TRUE(absl::StrContains(corrupt.status().message(), "garbage.db")) << corrupt.status();
  EXPECT_EQ(ReadFile(dir / "garbage.db"), std::string(8192, 'x'));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace hepml::registry
