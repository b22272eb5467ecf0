#!/usr/bin/env python3
"""`hepml registry` end to end with the real binary: once on an embedded
registry (--registry DIR: SQLite + file blobs) and once on a PostgreSQL 15
server this script starts on a free loopback port (--metadata postgresql://
--blobs file://; skipped with a message only when the PostgreSQL binaries are
absent). Checks pushes, pulls (bytes identical), aliases and their history,
validity intervals, global tags, datasets, runs, lineage, hooks, fsck and gc,
16 concurrent `push` processes (dense, unique versions), and bad input: one
line on stderr naming what and why, exit 1 (or 2 for a bad command line), the
registry unchanged. Ends 'N passed, M failed'."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

PG_BIN = "/usr/lib/postgresql/15/bin"


def write_model(path, bias):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    w = numpy_helper.from_array(np.array([bias, bias + 1, bias + 2], dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def write_big_model(path, seed):
    """A model with 2.4 MB of float32 weights ~ N(0, 0.05): stored as raw chunks."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 600000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 600000])
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(0, 0.05, 600000).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hepml_pg_cli_")
        self.port = free_port()
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o700)
        self.sh(f"{PG_BIN}/initdb -D {self.dir}/data -A trust -U postgres > {self.dir}/initdb.log 2>&1")
        self.sh(f"{PG_BIN}/pg_ctl -D {self.dir}/data -w -o '-p {self.port} -k {self.dir} "
                f"-c listen_addresses=127.0.0.1' -l {self.dir}/log start > /dev/null 2>&1")
        self.sh(f"{PG_BIN}/createdb -h 127.0.0.1 -p {self.port} -U postgres registry")
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/registry"

    def sh(self, cmd):
        if self.root:
            subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd], check=True)
        else:
            subprocess.run(["sh", "-c", cmd], check=True)

    def stop(self):
        try:
            self.sh(f"{PG_BIN}/pg_ctl -D {self.dir}/data -m fast -w stop > /dev/null 2>&1")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class Suite:
    def __init__(self, hepml, where, tmp, label):
        self.hepml, self.where, self.tmp, self.label = hepml, where, tmp, label
        self.passed = self.failed = 0

    def run(self, *args, where=None):
        cmd = [self.hepml, "registry", *(self.where if where is None else where), *args]
        env = dict(os.environ)
        env.pop("HEPML_REGISTRY", None)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise AssertionError(f"{' '.join(args)}: exit {rc}: {err.strip()}")
        return out

    def refused(self, args, code, needle):
        rc, out, err = self.run(*args)
        lines = err.strip().splitlines()
        assert rc == code, f"{' '.join(args)}: exit {rc}, wanted {code}; stderr {err!r}"
        assert len(lines) == 1 and lines[0].startswith("hepml registry: "), f"stderr not one line: {err!r}"
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"

    def check(self, name, fn):
        try:
            fn()
            self.passed += 1
            print(f"ok    {self.label}: {name}")
        except Exception as e:  # noqa: BLE001 -- report and go on
            self.failed += 1
            print(f"FAIL  {self.label}: {name}: {e}")

    def p(self, name):
        return os.path.join(self.tmp, name)

    def all(self):
        for i in (1, 2, 3):
            write_model(self.p(f"m{i}.onnx"), float(i))
        read = lambda name: open(self.p(name), "rb").read()

        def models_and_versions():
            self.ok("init")
            self.ok("model", "create", "btag", "--description", "jet flavour tagger")
            out = self.ok("push", "btag", self.p("m1.onnx"), "--param", "lr=0.01", "--metric", "auc=0.93",
                          "--tag", "owner=btv", "--code-version", "abc123")
            assert "btag@1" in out, out
            assert "btag@2" in self.ok("push", "btag", self.p("m2.onnx"))
            v = json.loads(self.ok("--json", "model", "show", "btag@1"))
            assert v["version"] == 1 and v["params"] == {"lr": "0.01"} and v["metrics"] == {"auc": 0.93}, v
            assert v["inputs"][0]["name"] == "x" and "batch" in v["inputs"][0]["type"], v
            assert v["files"][0]["size"] == os.path.getsize(self.p("m1.onnx")), v
            # Options may also follow the subcommand.
            rc, out, err = self.run("model", "list", "--json", *self.where, where=[])
            assert rc == 0, err
            models = json.loads(out)
            assert [m["name"] for m in models] == ["btag"] and models[0]["latest_version"] == 2, models
            self.ok("pull", "btag@1", self.p("out1.onnx"))
            assert read("out1.onnx") == read("m1.onnx")
            os.makedirs(self.p("pulled"), exist_ok=True)
            self.ok("pull", "btag@2", self.p("pulled"))
            assert read("pulled/m2.onnx") == read("m2.onnx")

        def aliases():
            self.ok("alias", "set", "btag", "production", "1")
            self.ok("alias", "set", "btag", "production", "2")
            assert self.ok("alias", "show", "btag", "production").strip() == "btag@production -> 2"
            hist = json.loads(self.ok("alias", "history", "btag", "production", "--json"))
            assert [(h["from"], h["to"]) for h in hist] == [(None, 1), (1, 2)], hist
            self.ok("pull", "btag@production", self.p("prod.onnx"))
            assert read("prod.onnx") == read("m2.onnx")
            self.refused(["alias", "set", "btag", "production", "9"], 1, "has no version 9")
            self.refused(["pull", "btag@nosuch", self.p("x.onnx")], 1, "no alias 'nosuch'")
            assert not os.path.exists(self.p("x.onnx"))
            assert len(json.loads(self.ok("alias", "history", "btag", "--json"))) == 2

        def intervals_and_global_tags():
            self.ok("iov", "add", "btag_2026", "btag@1", "--runs", "1000-1999")
            self.ok("iov", "add", "btag_2026", "btag@2", "--runs", "2000-2999", "--times", "1700000000-1700086400")
            assert self.ok("resolve", "btag_2026", "1500").strip() == "btag@1"
            assert self.ok("resolve", "btag_2026", "2000").strip() == "btag@2"
            assert json.loads(self.ok("resolve", "btag_2026", "2999", "--json"))["first_time"] == 1700000000
            assert self.ok("resolve", "btag_2026", "--time", "1700000500").strip() == "btag@2"
            self.refused(["resolve", "btag_2026"], 2, "RUN or --time")
            self.refused(["iov", "add", "btag_2026", "btag@2", "--runs", "1900-2100"], 1, "overlaps runs 2000-2999")
            self.refused(["iov", "add", "btag_2026", "btag@2", "--runs", "x-y"], 2, "--runs")
            self.refused(["resolve", "btag_2026", "5000"], 1, "covers run 5000")
            assert len(json.loads(self.ok("iov", "list", "btag_2026", "--json"))) == 2
            self.ok("pull", "btag@tag:btag_2026:1234", self.p("run1234.onnx"))
            assert read("run1234.onnx") == read("m1.onnx")
            self.ok("globaltag", "create", "GT_2026_v1")
            self.ok("globaltag", "add", "GT_2026_v1", "btag_2026", "--record", "BTagRcd")
            assert self.ok("globaltag", "resolve", "GT_2026_v1", "BTagRcd", "2500").strip() == "btag@2"
            self.refused(["globaltag", "resolve", "GT_2026_v1", "Nope", "2500"], 1, "no record 'Nope'")

        def datasets_runs_lineage():
            with open(self.p("a.csv"), "w") as f:
                f.write("x,y\n1,2\n")
            out = self.ok("dataset", "add", "jets", self.p("a.csv"), "--schema", '{"x":"int"}', "--entries", "1")
            assert "jets@1" in out, out
            run = self.ok("run", "start", "--name", "train", "--param", "epochs=3", "--dataset", "jets:1").strip()
            for loss in ("0.9", "0.5", "0.3"):
                self.ok("run", "log", run, "--metric", f"loss={loss}")
            self.ok("run", "log", run, "--param", "lr=0.01", "--artifact", self.p("a.csv"))
            self.ok("run", "end", run, "--cpu-seconds", "12.5", "--peak-memory", "1048576")
            info = json.loads(self.ok("run", "show", run))
            assert info["status"] == "finished" and [m["step"] for m in info["metrics"]] == [0, 1, 2], info
            assert info["params"] == {"epochs": "3", "lr": "0.01"} and info["inputs"] == ["jets@1"], info
            self.refused(["run", "log", run, "--metric", "loss=0.1"], 1, "has ended")
            assert "btag@3" in self.ok("push", "btag", self.p("m3.onnx"), "--run", run, "--dataset", "jets:1")
            up = self.ok("lineage", "btag@3")
            assert f"btag@3 produced_by run:{run}" in up and f"run:{run} consumed jets@1" in up, up
            down = self.ok("lineage", "--down", "jets@1")
            assert "btag@3 trained_on jets@1" in down and f"run:{run} consumed jets@1" in down, down

        def lineage_chain():
            # raw -> skim run -> derived -> training run -> base model -> fine-tune run -> tuned model
            with open(self.p("raw.csv"), "w") as f:
                f.write("x\n1\n2\n")
            with open(self.p("derived.csv"), "w") as f:
                f.write("x\n2\n")
            self.ok("dataset", "add", "raw", self.p("raw.csv"))
            skim = self.ok("run", "start", "--name", "skim", "--dataset", "raw@1").strip()
            assert "derived@1" in self.ok("dataset", "add", "derived", self.p("derived.csv"), "--run", skim)
            assert json.loads(self.ok("--json", "dataset", "show", "derived@1"))[0]["source_run"] == int(skim)
            train = self.ok("run", "start", "--dataset", "derived:1").strip()
            self.ok("model", "create", "base")
            self.ok("push", "base", self.p("m1.onnx"), "--run", train, "--dataset", "derived:1")
            tune = self.ok("run", "start", "--name", "fine-tune", "--model", "base@1").strip()
            assert json.loads(self.ok("run", "show", tune))["model_inputs"] == ["base@1"]
            self.ok("model", "create", "tuned")
            self.ok("push", "tuned", self.p("m2.onnx"), "--run", tune)
            up = json.loads(self.ok("--json", "lineage", "tuned@1"))
            edges = {(e["from"], e["relation"], e["to"]) for e in up["edges"]}
            assert edges == {("tuned@1", "produced_by", f"run:{tune}"), (f"run:{tune}", "consumed", "base@1"),
                             ("base@1", "produced_by", f"run:{train}"), ("base@1", "trained_on", "derived@1"),
                             (f"run:{train}", "consumed", "derived@1"), ("derived@1", "produced_by", f"run:{skim}"),
                             (f"run:{skim}", "consumed", "raw@1")}, edges
            assert len(up["nodes"]) == 7 and not up["truncated"], up["nodes"]
            down = self.ok("lineage", "--down", "raw@1")
            assert f"tuned@1 produced_by run:{tune}" in down, down
            cut = json.loads(self.ok("--json", "lineage", "tuned@1", "--depth", "2"))
            assert {n["ref"] for n in cut["nodes"]} == {"tuned@1", f"run:{tune}", "base@1"}, cut
            rc, out, err = self.run("--json", "lineage", "tuned@1", "--max-nodes", "3")
            assert rc == 0 and json.loads(out)["truncated"] and "more than 3 nodes" in err, (rc, err)
            dot = self.ok("lineage", "tuned@1", "--dot")
            assert dot.startswith("digraph lineage {") and '"tuned@1" -> "run:' in dot, dot
            # Downstream from a model version, a run, and what points at the versions reached.
            self.ok("alias", "set", "tuned", "production", "1")
            self.ok("iov", "add", "tuned_2026", "tuned@1", "--runs", "1-100")
            down = self.ok("lineage", "--downstream", "base@1")
            for edge in (f"run:{tune} consumed base@1", f"tuned@1 produced_by run:{tune}",
                         "tuned@production points_to tuned@1", "tuned_2026 points_to tuned@1"):
                assert edge in down, (edge, down)
            assert "derived@1" not in down, down
            nodes = json.loads(self.ok("--json", "lineage", "--downstream", f"run:{skim}"))["nodes"]
            assert [(n["kind"], n["ref"]) for n in nodes][:2] == [("run", f"run:{skim}"),
                                                                  ("dataset_version", "derived@1")], nodes
            assert ("alias", "tuned@production") in {(n["kind"], n["ref"]) for n in nodes}, nodes
            self.ok("model", "create", "derived")  # now derived@1 could be either
            self.refused(["lineage", "--downstream", "derived@1"], 1, "write model:derived@1 or dataset:derived@1")
            assert f"base@1 trained_on derived@1" in self.ok("lineage", "--downstream", "dataset:derived@1")
            self.refused(["lineage", "--downstream", "model:derived@1"], 1, "derived")
            self.refused(["lineage", f"run:{skim}"], 2, "add --downstream")
            self.refused(["lineage", "--downstream", "run:x"], 2, "run:ID")
            self.refused(["lineage", "--downstream", "run:99999"], 1, "unknown run 99999")
            self.refused(["run", "start", "--model", "base@9"], 1, "has no version 9")
            self.refused(["run", "start", "--model", "base"], 2, "expected NAME@VERSION")
            self.refused(["dataset", "add", "derived", self.p("derived.csv"), "--run", "99999"], 1, "unknown run 99999")
            assert len(json.loads(self.ok("--json", "dataset", "show", "derived"))) == 1

        def run_artifacts():
            run = self.ok("run", "start").strip()
            with open(self.p("curve.txt"), "w") as f:
                f.write("loss curve\n")
            self.ok("run", "log", run, "--artifact", self.p("curve.txt"))
            listed = self.ok("run", "artifacts", run)
            assert listed.startswith("curve.txt  11  sha256:"), listed
            assert json.loads(self.ok("--json", "run", "artifacts", run))[0]["size"] == 11
            self.ok("run", "get-artifact", run, "curve.txt", self.p("curve.out"))
            assert read("curve.out") == read("curve.txt")
            self.refused(["run", "get-artifact", run, "nope.txt", self.p("x.out")], 1, "no artifact 'nope.txt'")
            self.refused(["run", "get-artifact", run, "../curve.txt", self.p("x.out")], 1, "'../curve.txt'")
            assert not os.path.exists(self.p("x.out"))

        def hooks():
            out = self.p("hook.json")
            self.ok("hook", "add", "model_version.created", f"cat > {out}")
            self.ok("hook", "add", "alias.moved", "exit 4")
            self.ok("push", "btag", self.p("m1.onnx"))
            event = json.load(open(out))
            assert event["kind"] == "model_version.created" and event["payload"]["version"] == 4, event
            rc, _, err = self.run("alias", "set", "btag", "staging", "4")
            assert rc == 0 and "hook" in err and "exited with 4" in err, (rc, err)
            kinds = [json.loads(l)["kind"] for l in self.ok("events").splitlines()]
            assert kinds.count("model_version.created") == 4 and kinds.count("alias.moved") == 3, kinds

        def bad_input_leaves_registry_unchanged():
            before = self.ok("--json", "model", "show", "btag")
            self.refused(["push", "btag@1", self.p("m2.onnx")], 1, "immutable")
            self.refused(["push", "nosuch", self.p("m1.onnx")], 1, "unknown model 'nosuch'")
            with open(self.p("text.onnx"), "w") as f:
                f.write("not a model\n")
            self.refused(["push", "btag", self.p("text.onnx")], 1, "text.onnx")
            self.refused(["push", "btag", self.p("missing.onnx")], 1, "missing.onnx")
            self.refused(["push", "btag", self.p("m1.onnx"), "--metric", "auc=high"], 2, "not a number")
            self.refused(["push", "btag", self.p("m1.onnx"), "--dataset", "nods:1"], 1, "nods@1")
            self.refused(["model", "show", "nosuch"], 1, "unknown model 'nosuch'")
            self.refused(["model", "create", "btag"], 1, "already exists")
            self.refused(["model", "create", "bad name"], 1, "bad name")
            assert self.ok("--json", "model", "show", "btag") == before

        def concurrent_pushes():
            self.ok("model", "create", "race")
            procs = []
            for i in range(16):
                cmd = [self.hepml, "registry", *self.where, "push", "race", self.p(f"m{1 + i % 3}.onnx"),
                       "--param", f"writer={i}"]
                procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            outs = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
            bad = [(o, e, rc) for o, e, rc in outs if rc != 0]
            assert not bad, bad[:2]
            numbers = sorted(int(o.split("race@")[1].split()[0]) for o, _, _ in outs)
            assert numbers == list(range(1, 17)), numbers
            versions = json.loads(self.ok("--json", "model", "show", "race"))["versions"]
            assert sorted(v["params"]["writer"] for v in versions) == sorted(str(i) for i in range(16))

        def fsck_and_gc():
            out = self.ok("fsck")
            assert "0 problems" in out, out
            self.ok("gc", "--grace", "0")
            self.ok("pull", "btag@1", self.p("after_gc.onnx"))
            assert read("after_gc.onnx") == read("m1.onnx")
            # Float weights are stored raw (header byte 4 = 0): one flipped bit in one
            # such chunk is found by fsck and refused by pull, both naming the chunk.
            write_big_model(self.p("big.onnx"), 1)
            self.ok("model", "create", "big")
            self.ok("push", "big", self.p("big.onnx"))
            blobs = self.blob_dir()
            raw = []
            for root, _, files in os.walk(os.path.join(blobs, "chunks")):
                for name in files:
                    with open(os.path.join(root, name), "rb") as f:
                        head = f.read(16)
                    if head[:4] == b"HPC1" and head[4] == 0 and os.path.getsize(os.path.join(root, name)) > 1 << 16:
                        raw.append(os.path.join(root, name))
            assert raw, "no raw chunk stored for 2.4 MB of float weights"
            victim = raw[0]
            good = open(victim, "rb").read()
            bad = bytearray(good)
            bad[16 + len(good) // 2] ^= 0x01
            open(victim, "wb").write(bytes(bad))
            rc, out, err = self.run("fsck")
            assert rc == 1 and os.path.basename(victim) in out, (rc, out, err)
            rc, _, err = self.run("pull", "big@1", self.p("big_damaged.onnx"))
            assert rc == 1 and os.path.basename(victim) in err and len(err.strip().splitlines()) == 1, (rc, err)
            assert not os.path.exists(self.p("big_damaged.onnx"))
            open(victim, "wb").write(good)
            assert "0 problems" in self.ok("fsck")
            self.ok("pull", "big@1", self.p("big_back.onnx"))
            assert read("big_back.onnx") == read("big.onnx")
            # Damage every stored object: fsck and pull say so.
            blobs = self.blob_dir()
            for root, _, files in os.walk(blobs):
                for name in files:
                    path = os.path.join(root, name)
                    data = open(path, "rb").read()
                    open(path, "wb").write(bytes(b ^ 0x5A for b in data) or b"x")
            rc, out, err = self.run("fsck")
            assert rc == 1 and "problem" in out, (rc, out, err)
            rc, _, err = self.run("pull", "btag@1", self.p("damaged.onnx"))
            assert rc == 1 and len(err.strip().splitlines()) == 1, (rc, err)
            assert not os.path.exists(self.p("damaged.onnx"))

        for name, fn in [("models and versions", models_and_versions), ("aliases", aliases),
                         ("intervals and global tags", intervals_and_global_tags),
                         ("datasets, runs, lineage", datasets_runs_lineage), ("hooks", hooks),
                         ("lineage through runs, derived datasets and base models", lineage_chain),
                         ("run artifacts: list and get", run_artifacts),
                         ("bad input leaves the registry unchanged", bad_input_leaves_registry_unchanged),
                         ("16 concurrent push processes", concurrent_pushes), ("fsck and gc", fsck_and_gc)]:
            self.check(name, fn)

    def blob_dir(self):
        if self.where[0] == "--registry":
            return os.path.join(self.where[1], "blobs")
        return self.where[self.where.index("--blobs") + 1][len("file://"):]


def opening_errors(hepml, tmp):
    s = Suite(hepml, [], tmp, "opening")

    def cases():
        s.refused(["init"], 2, "--registry DIR")
        s.refused(["--metadata", "mysql://db", "--blobs", f"file://{tmp}/b", "init"], 1, "mysql://db")
        s.refused(["--metadata", "sqlite://rel.db", "--blobs", f"file://{tmp}/b", "init"], 1, "sqlite:///ABSOLUTE")
        s.refused(["--metadata", f"postgresql://postgres@127.0.0.1:{free_port()}/x", "--blobs", f"file://{tmp}/b",
                   "init"], 1, "cannot connect")
        s.refused(["--registry", tmp, "--metadata", "sqlite:///x.db", "init"], 2, "not both")
        s.refused(["--registry", os.path.join(tmp, "typo"), "model", "list"], 1, "no registry at")
        assert not os.path.exists(os.path.join(tmp, "typo"))
        corrupt = os.path.join(tmp, "corrupt")
        os.makedirs(corrupt)
        garbage = b"garbage!" * 1024
        open(os.path.join(corrupt, "registry.db"), "wb").write(garbage)
        s.refused(["--registry", corrupt, "model", "list"], 1, "not a readable registry database")
        assert open(os.path.join(corrupt, "registry.db"), "rb").read() == garbage

    s.check("broken URIs and a corrupt database", cases)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    suites = []
    tmp = tempfile.mkdtemp(prefix="hepml_registry_cli_")
    try:
        os.makedirs(os.path.join(tmp, "sqlite"))
        s = Suite(args.hepml, ["--registry", os.path.join(tmp, "sqlite", "reg")], os.path.join(tmp, "sqlite"), "sqlite")
        s.all()
        suites.append(s)
        suites.append(opening_errors(args.hepml, os.path.join(tmp, "open")))
        if os.path.exists(f"{PG_BIN}/initdb"):
            pg = Postgres()
            try:
                os.makedirs(os.path.join(tmp, "pg"))
                where = ["--metadata", pg.uri, "--blobs", f"file://{tmp}/pg/blobs"]
                s = Suite(args.hepml, where, os.path.join(tmp, "pg"), "postgresql")
                s.all()
                suites.append(s)
            finally:
                pg.stop()
        else:
            print(f"skip  postgresql: no PostgreSQL 15 binaries in {PG_BIN} (apt-get install postgresql-15)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(s.passed for s in suites)
    failed = sum(s.failed for s in suites)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
