#!/usr/bin/python3
"""`hepml registry serve`: the REST API with a real HTTP client.

Starts the real server on a free loopback port over a temporary registry
(made with the CLI), then drives it as an MLflow training script does
(experiment, run, params, metrics with steps, batch, tags, FINISHED, search;
registered model, version, alias, get by alias), the native /api/v1
endpoints (models, versions, file download, aliases, intervals, resolve,
lineage), and bad requests: each gets its HTTP code and a message naming the
problem, and the server keeps answering afterwards. When the `mlflow` package
is importable, its own client is driven against the server too.
"""
import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# The PostgreSQL server the CLI suite starts (initdb, pg_ctl on a free port).
from check_registry_cli import PG_BIN, Postgres

MAX_BODY = 65536


def write_model(path, bias):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    w = numpy_helper.from_array(np.array([bias, bias + 1, bias + 2], dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


class Server:
    def __init__(self, hepml, where, source_root):
        env = dict(os.environ)
        env.pop("HEPML_REGISTRY", None)
        self.proc = subprocess.Popen(
            [hepml, "registry", *where, "serve", "--port", "0", "--source-root", source_root,
             "--max-body-bytes", str(MAX_BODY)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r} {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


class Client:
    """urllib for JSON calls; raw sockets for what urllib cannot send."""

    def __init__(self, base, port):
        self.base, self.port = base, port

    def call(self, method, path, body=None, query=None, raw=None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, query=None, raw=None, want=200):
        status, _, data = self.call(method, path, body, query, raw)
        assert status == want, f"{method} {path}: HTTP {status}, wanted {want}: {data[:300]!r}"
        return json.loads(data)

    def error(self, method, path, want, error_code, needle, body=None, query=None, raw=None):
        status, headers, data = self.call(method, path, body, query, raw)
        assert status == want, f"{method} {path}: HTTP {status}, wanted {want}: {data[:300]!r}"
        assert headers.get("Content-Type") == "application/json", headers
        e = json.loads(data)
        if error_code:
            assert e["error_code"] == error_code, e
        assert needle in e["message"], f"{needle!r} not in {e['message']!r}"
        self.healthy()

    def healthy(self):
        status, _, data = self.call("GET", "/health")
        assert status == 200 and json.loads(data)["status"] == "ok", (status, data)

    def raw_exchange(self, payload):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            s.sendall(payload)
            chunks = []
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
            return b"".join(chunks)
        finally:
            s.close()


class Suite:
    def __init__(self):
        self.passed = self.failed = 0
        self.label = ""

    def check(self, name, fn):
        try:
            fn()
            self.passed += 1
            print(f"ok    {self.label}: {name}")
        except Exception as e:  # noqa: BLE001 -- report and go on
            self.failed += 1
            print(f"FAIL  {self.label}: {name}: {type(e).__name__}: {e}")


def cli(hepml, where, *args):
    env = dict(os.environ)
    env.pop("HEPML_REGISTRY", None)
    p = subprocess.run([hepml, "registry", *where, *args], capture_output=True, text=True,
                       timeout=300, env=env)
    if p.returncode != 0:
        raise AssertionError(f"registry {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def run_suite(hepml, where, tmp, label, suite):
    """The whole suite against a server on the registry `where` names."""
    suite.label = label
    server = None
    try:
        reg = where
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "tagger"))
        p = lambda *n: os.path.join(src, *n)  # noqa: E731
        write_model(p("m1.onnx"), 1.0)
        write_model(p("m2.onnx"), 2.0)
        write_model(p("tagger", "model.onnx"), 5.0)
        with open(p("tagger", "labels.txt"), "w") as f:
            f.write("b\nc\nlight\n")
        with open(p("jets.csv"), "w") as f:
            f.write("x,y\n1,2\n")
        with open(os.path.join(tmp, "secret.onnx"), "wb") as f:
            f.write(open(p("m1.onnx"), "rb").read())
        cli(hepml, reg, "init")
        cli(hepml, reg, "model", "create", "btag")
        cli(hepml, reg, "push", "btag", p("m1.onnx"), "--param", "lr=0.01", "--metric", "auc=0.93")
        cli(hepml, reg, "dataset", "add", "jets", p("jets.csv"))
        cli_run = cli(hepml, reg, "run", "start", "--name", "train", "--dataset", "jets:1").strip()
        cli(hepml, reg, "run", "end", cli_run)
        cli(hepml, reg, "push", "btag", p("m2.onnx"), "--run", cli_run, "--dataset", "jets:1")

        server = Server(hepml, reg, src)
        c = Client(server.base, server.port)
        M = "/api/2.0/mlflow/"
        state = {}

        # ------------------------------------------------------------ native
        def native_models_and_versions():
            models = c.json("GET", "/api/v1/models")["models"]
            assert [(m["name"], m["latest_version"]) for m in models] == [("btag", 2)], models
            m = c.json("GET", "/api/v1/models/btag")
            assert [v["version"] for v in m["versions"]] == [1, 2], m
            v = c.json("GET", "/api/v1/models/btag/versions/1")
            assert v["files"][0]["name"] == "m1.onnx" and v["files"][0]["size"] == os.path.getsize(p("m1.onnx")), v
            assert v["inputs"][0]["name"] == "x" and "float" in v["inputs"][0]["type"], v
            assert v["outputs"][0]["name"] == "y", v
            assert v["params"] == {"lr": "0.01"} and v["metrics"] == {"auc": 0.93}, v
            v2 = c.json("GET", "/api/v1/models/btag/versions/2")
            assert v2["source_run"] == int(cli_run) and v2["datasets"] == ["jets@1"], v2

        def native_file_download_streams_the_pulled_bytes():
            status, headers, data = c.call("GET", "/api/v1/models/btag/versions/2/files/m2.onnx")
            assert status == 200 and headers["Content-Type"] == "application/octet-stream", (status, headers)
            assert data == open(p("m2.onnx"), "rb").read()
            assert int(headers["Content-Length"]) == len(data), headers
            c.error("GET", "/api/v1/models/btag/versions/2/files/nope.onnx", 404, "RESOURCE_DOES_NOT_EXIST",
                    "has no file 'nope.onnx'")

        def native_aliases():
            r = c.json("PUT", "/api/v1/models/btag/aliases/production", {"version": 1})
            assert r == {"model": "btag", "alias": "production", "version": 1}, r
            assert c.json("GET", "/api/v1/models/btag/aliases/production")["version"] == 1
            c.json("PUT", "/api/v1/models/btag/aliases/production", {"version": 2})
            assert c.json("GET", "/api/v1/models/btag/aliases/production")["version"] == 2
            assert c.json("GET", "/api/v1/models/btag/aliases")["aliases"] == {"production": 2}
            moves = c.json("GET", "/api/v1/models/btag/aliases/production/history")["moves"]
            assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 1), (1, 2)], moves
            c.json("PUT", "/api/v1/models/btag/aliases/staging", {"version": 1})
            c.json("DELETE", "/api/v1/models/btag/aliases/staging")
            c.error("GET", "/api/v1/models/btag/aliases/staging", 404, "RESOURCE_DOES_NOT_EXIST", "staging")
            c.error("PUT", "/api/v1/models/btag/aliases/production", 404, "RESOURCE_DOES_NOT_EXIST", "9",
                    body={"version": 9})
            assert c.json("GET", "/api/v1/models/btag/aliases/production")["version"] == 2

        def native_intervals_and_resolve():
            iv = c.json("POST", "/api/v1/tags/btag_2026/intervals",
                        {"model": "btag", "version": 1, "first_run": 1000, "last_run": 1999})
            assert iv["first_run"] == 1000 and iv["version"] == 1, iv
            c.json("POST", "/api/v1/tags/btag_2026/intervals",
                   {"model": "btag", "version": 2, "first_run": 2000, "last_run": 2999})
            c.error("POST", "/api/v1/tags/btag_2026/intervals", 409, "", "overlaps",
                    body={"model": "btag", "version": 2, "first_run": 1500, "last_run": 2500})
            ivs = c.json("GET", "/api/v1/tags/btag_2026/intervals")["intervals"]
            assert [(i["first_run"], i["version"]) for i in ivs] == [(1000, 1), (2000, 2)], ivs
            r = c.json("GET", "/api/v1/resolve", query={"tag": "btag_2026", "run": 1500})
            assert (r["model"], r["version"], r["first_run"], r["last_run"]) == ("btag", 1, 1000, 1999), r
            assert c.json("GET", "/api/v1/resolve", query={"tag": "btag_2026", "run": 2999})["version"] == 2
            c.error("GET", "/api/v1/resolve", 404, "RESOURCE_DOES_NOT_EXIST", "covers run 5",
                    query={"tag": "btag_2026", "run": 5})
            c.error("GET", "/api/v1/resolve", 400, "INVALID_PARAMETER_VALUE", "field 'run' must be a 64-bit integer",
                    query={"tag": "btag_2026", "run": "soon"})
            c.error("GET", "/api/v1/resolve", 400, "INVALID_PARAMETER_VALUE", "missing field 'tag'",
                    query={"run": 5})

        def native_lineage():
            up = c.json("GET", "/api/v1/models/btag/versions/2/lineage")
            edges = {(e["from"], e["relation"], e["to"]) for e in up["edges"]}
            assert ("btag@2", "produced_by", f"run:{cli_run}") in edges, edges
            assert (f"run:{cli_run}", "consumed", "jets@1") in edges, edges
            down = c.json("GET", "/api/v1/datasets/jets/versions/1/lineage")
            assert ("btag@2", "trained_on", "jets@1") in {(e["from"], e["relation"], e["to"]) for e in down["edges"]}

        def native_lineage_downstream():
            c.json("PUT", "/api/v1/models/btag/aliases/production", {"version": 2})
            down = c.json("GET", "/api/v1/models/btag/versions/2/lineage", query={"direction": "downstream"})
            edges = {(e["from"], e["relation"], e["to"]) for e in down["edges"]}
            assert ("btag@production", "points_to", "btag@2") in edges, edges
            assert down["nodes"][0] == {"kind": "model_version", "ref": "btag@2", "depth": 0}, down["nodes"]
            assert ("alias", "btag@production") in {(n["kind"], n["ref"]) for n in down["nodes"]}, down["nodes"]
            up = c.json("GET", "/api/v1/models/btag/versions/2/lineage", query={"direction": "upstream"})
            assert up == c.json("GET", "/api/v1/models/btag/versions/2/lineage"), up
            run = c.json("GET", f"/api/v1/runs/{cli_run}/lineage")
            edges = {(e["from"], e["relation"], e["to"]) for e in run["edges"]}
            assert ("btag@2", "produced_by", f"run:{cli_run}") in edges, edges
            assert ("btag@production", "points_to", "btag@2") in edges, edges
            assert run["nodes"][0]["ref"] == f"run:{cli_run}", run["nodes"]
            one = c.json("GET", f"/api/v1/runs/{cli_run}/lineage", query={"depth": 1})
            assert "btag@production" not in {n["ref"] for n in one["nodes"]}, one
            c.error("GET", "/api/v1/models/btag/versions/2/lineage", 400, "INVALID_PARAMETER_VALUE", "'direction'",
                    query={"direction": "sideways"})
            c.error("GET", "/api/v1/datasets/jets/versions/1/lineage", 400, "INVALID_PARAMETER_VALUE",
                    "downstream only", query={"direction": "upstream"})
            c.error("GET", "/api/v1/runs/999999/lineage", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 999999")
            c.error("GET", "/api/v1/runs/x/lineage", 400, "INVALID_PARAMETER_VALUE", "run id 'x'")

        def native_lineage_limits_and_records():
            one = c.json("GET", "/api/v1/models/btag/versions/2/lineage", query={"depth": 1})
            assert {n["ref"] for n in one["nodes"]} == {"btag@2", f"run:{cli_run}", "jets@1"}, one
            assert (f"run:{cli_run}", "consumed", "jets@1") not in {(e["from"], e["relation"], e["to"])
                                                                   for e in one["edges"]}, one
            assert not one["truncated"] and [n["depth"] for n in one["nodes"]][0] == 0, one
            capped = c.json("GET", "/api/v1/datasets/jets/versions/1/lineage", query={"max_nodes": 1})
            assert capped["truncated"] and len(capped["nodes"]) == 1, capped
            c.error("GET", "/api/v1/models/btag/versions/2/lineage", 400, "INVALID_PARAMETER_VALUE", "'depth'",
                    query={"depth": -1})
            c.error("GET", "/api/v1/models/btag/versions/2/lineage", 400, "INVALID_PARAMETER_VALUE", "'max_nodes'",
                    query={"max_nodes": 0})
            ds = c.json("GET", "/api/v1/datasets/jets/versions/1")
            assert ds["dataset"] == "jets" and ds["source_run"] is None and ds["files"][0]["name"] == "jets.csv", ds
            c.error("GET", "/api/v1/datasets/jets/versions/9", 404, "RESOURCE_DOES_NOT_EXIST", "jets@9")
            # A fine-tuning run started over the native API reads a model version.
            run = c.json("POST", "/api/v1/runs", {"name": "tune", "params": {"lr": "0.1"}, "inputs": ["jets@1"],
                                                  "model_inputs": ["btag@1", {"model": "btag", "version": 2}]})
            assert run["model_inputs"] == ["btag@1", "btag@2"] and run["inputs"] == ["jets@1"], run
            assert run["status"] == "running" and run["params"] == {"lr": "0.1"}, run
            assert c.json("GET", f"/api/v1/runs/{run['id']}")["model_inputs"] == ["btag@1", "btag@2"]
            c.error("POST", "/api/v1/runs", 400, "INVALID_PARAMETER_VALUE", "'btag' is not NAME@VERSION",
                    body={"model_inputs": ["btag"]})
            c.error("POST", "/api/v1/runs", 404, "RESOURCE_DOES_NOT_EXIST", "has no version 9",
                    body={"model_inputs": ["btag@9"]})
            c.error("POST", "/api/v1/runs", 400, "INVALID_PARAMETER_VALUE", "'params' must be an object",
                    body={"params": ["lr"]})
            c.error("GET", "/api/v1/runs/99999", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 99999")
            c.error("GET", "/api/v1/runs/abc", 400, "INVALID_PARAMETER_VALUE", "run id 'abc'")
            # Every field of a native run start given every JSON type: 200 or a 4xx with a message.
            for field in ("name", "experiment_id", "params", "inputs", "model_inputs", "code_version"):
                for value in (5, -1, 1.5, "x", "", "btag@1", [], ["jets@1"], [5], [{"model": "btag"}],
                              [{"dataset": "jets", "version": "1"}], {}, {"k": 1}, None, True):
                    status, _, data = c.call("POST", "/api/v1/runs", {field: value})
                    assert status in (200, 400, 404), f"{field}={value!r}: HTTP {status} {data[:200]!r}"
                    if status != 200:
                        assert json.loads(data)["message"], data
            c.healthy()

        def native_artifacts_upload_list_download():
            run = c.json("POST", "/api/v1/runs", {"name": "artifacts"})["id"]
            base = f"/api/v1/runs/{run}/artifacts"
            blob = bytes(range(256)) * 40  # binary, with NULs
            put = c.json("PUT", base + "/plots/roc.bin", raw=blob)
            assert put == {"path": "plots/roc.bin", "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}, put
            c.json("PUT", base + "/notes.txt", raw=b"trained on jets@1\n")
            listed = c.json("GET", base)
            assert listed["artifacts"] == [
                {"path": "notes.txt", "size": 18, "sha256": hashlib.sha256(b"trained on jets@1\n").hexdigest()},
                {"path": "plots/roc.bin", "size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}], listed
            status, headers, data = c.call("GET", base + "/plots/roc.bin")
            assert status == 200 and data == blob, (status, len(data))
            assert headers["Content-Type"] == "application/octet-stream", headers
            assert int(headers["Content-Length"]) == len(blob), headers
            c.error("PUT", base + "/notes.txt", 409, "RESOURCE_ALREADY_EXISTS", "already has an artifact",
                    raw=b"again")
            for bad, needle in [("/a//b.txt", "'a//b.txt'"), ("/../escape.txt", "'../escape.txt'"),
                                ("/x/%2E%2E/y", "'x/../y'"), ("//etc/passwd", "'/etc/passwd'"), ("/dir/", "'dir/'")]:
                c.error("PUT", base + bad, 400, "INVALID_PARAMETER_VALUE", needle, raw=b"x")
                c.error("GET", base + bad, 400, "INVALID_PARAMETER_VALUE", needle)
            c.error("GET", base + "/nope.txt", 404, "RESOURCE_DOES_NOT_EXIST", "no artifact 'nope.txt'")
            for method in ("GET", "PUT"):
                c.error(method, "/api/v1/runs/99999/artifacts/x.txt", 404, "RESOURCE_DOES_NOT_EXIST",
                        "unknown run 99999", raw=b"x" if method == "PUT" else None)
            c.error("GET", "/api/v1/runs/99999/artifacts", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 99999")
            c.error("DELETE", base + "/notes.txt", 405, "", "use GET or PUT")
            c.error("PUT", base + "/big.bin", 413, "PAYLOAD_TOO_LARGE", f"larger than {MAX_BODY} bytes",
                    raw=b"x" * (2 * MAX_BODY))
            # Runs are closed once they end: no more artifacts.
            c.json("POST", M + "runs/update", {"run_id": str(run), "status": "FINISHED"})
            c.error("PUT", base + "/late.txt", 409, "INVALID_STATE", "has ended", raw=b"x")
            assert len(c.json("GET", base)["artifacts"]) == 2

        # ------------------------------------------------------------ MLflow
        def mlflow_experiment():
            r = c.json("POST", M + "experiments/create", {"name": "btag-training"})
            state["exp"] = r["experiment_id"]
            assert isinstance(state["exp"], str) and state["exp"].isdigit(), r
            c.error("POST", M + "experiments/create", 409, "RESOURCE_ALREADY_EXISTS", "already exists",
                    body={"name": "btag-training"})
            e = c.json("GET", M + "experiments/get-by-name", query={"experiment_name": "btag-training"})["experiment"]
            assert e["experiment_id"] == state["exp"] and e["name"] == "btag-training", e
            assert e["lifecycle_stage"] == "active", e
            e = c.json("GET", M + "experiments/get", query={"experiment_id": state["exp"]})["experiment"]
            assert e["name"] == "btag-training", e
            c.error("GET", M + "experiments/get-by-name", 404, "RESOURCE_DOES_NOT_EXIST", "nope",
                    query={"experiment_name": "nope"})

        def mlflow_training_run():
            r = c.json("POST", M + "runs/create", {
                "experiment_id": state["exp"], "run_name": "epoch-sweep", "start_time": "1764480000000",
                "tags": [{"key": "mlflow.user", "value": "alice"}, {"key": "mlflow.source.name", "value": "train.py"}]})
            info = r["run"]["info"]
            assert info["status"] == "RUNNING" and info["run_name"] == "epoch-sweep", info
            assert info["experiment_id"] == state["exp"] and info["run_id"] == info["run_uuid"], info
            run = state["run"] = info["run_id"]
            c.json("POST", M + "runs/log-parameter", {"run_id": run, "key": "lr", "value": "0.001"})
            c.json("POST", M + "runs/log-parameter", {"run_id": run, "key": "lr", "value": "0.001"})  # same: fine
            c.error("POST", M + "runs/log-parameter", 400, "INVALID_PARAMETER_VALUE", "parameters cannot change",
                    body={"run_id": run, "key": "lr", "value": "0.1"})
            for step, loss in enumerate([0.9, 0.5, 0.3]):
                # protobuf JSON: int64 fields as strings
                c.json("POST", M + "runs/log-metric", {"run_id": run, "key": "loss", "value": loss,
                                                       "timestamp": "1764480000000", "step": str(step)})
            c.json("POST", M + "runs/log-batch", {
                "run_id": run,
                "metrics": [{"key": "acc", "value": 0.7, "timestamp": 1, "step": 0},
                            {"key": "acc", "value": 0.8, "timestamp": 2, "step": 1}],
                "params": [{"key": "batch_size", "value": "256"}],
                "tags": [{"key": "stage", "value": "sweep"}]})
            # A batch is all or nothing: step 1 of acc is there, so neither the new param nor step 2 lands.
            c.error("POST", M + "runs/log-batch", 409, "RESOURCE_ALREADY_EXISTS", "already has metric 'acc' at step 1",
                    body={"run_id": run, "params": [{"key": "dropout", "value": "0.1"}],
                          "metrics": [{"key": "acc", "value": 0.9, "step": 2}, {"key": "acc", "value": 0.9, "step": 1}]})
            c.json("POST", M + "runs/set-tag", {"run_id": run, "key": "team", "value": "flavour"})
            got = c.json("GET", M + "runs/get", query={"run_id": run})["run"]
            metrics = {m["key"]: (m["value"], m["step"]) for m in got["data"]["metrics"]}
            assert metrics == {"loss": (0.3, 2), "acc": (0.8, 1)}, metrics
            params = {x["key"]: x["value"] for x in got["data"]["params"]}
            assert params == {"lr": "0.001", "batch_size": "256"}, params
            tags = {x["key"]: x["value"] for x in got["data"]["tags"]}
            assert tags["team"] == "flavour" and tags["stage"] == "sweep" and tags["mlflow.user"] == "alice", tags
            hist = c.json("GET", M + "metrics/get-history", query={"run_id": run, "metric_key": "loss"})["metrics"]
            assert [(h["step"], h["value"]) for h in hist] == [(0, 0.9), (1, 0.5), (2, 0.3)], hist
            c.error("POST", M + "runs/log-metric", 409, "RESOURCE_ALREADY_EXISTS", "at step 2",
                    body={"run_id": run, "key": "loss", "value": 0.1, "step": 2})
            u = c.json("POST", M + "runs/update", {"run_id": run, "status": "FINISHED", "end_time": 1764480100000})
            assert u["run_info"]["status"] == "FINISHED" and u["run_info"]["end_time"] > 0, u
            c.error("POST", M + "runs/log-metric", 409, "INVALID_STATE", "has ended",
                    body={"run_id": run, "key": "loss", "value": 0.2, "step": 3})
            c.error("POST", M + "runs/log-batch", 409, "INVALID_STATE", "has ended",
                    body={"run_id": run, "params": [{"key": "late", "value": "1"}]})
            c.json("POST", M + "runs/set-tag", {"run_id": run, "key": "reviewed", "value": "yes"})  # tags stay open
            c.error("POST", M + "runs/update", 409, "INVALID_STATE", "cannot run again",
                    body={"run_id": run, "status": "RUNNING"})
            got = c.json("GET", M + "runs/get", query={"run_id": run})["run"]
            assert got["info"]["status"] == "FINISHED" and "late" not in str(got["data"]["params"]), got

        def mlflow_search_runs():
            second = c.json("POST", M + "runs/create", {"experiment_id": state["exp"], "run_name": "second"})
            second_id = second["run"]["info"]["run_id"]
            other = c.json("POST", M + "experiments/create", {"name": "other"})["experiment_id"]
            c.json("POST", M + "runs/create", {"experiment_id": other, "run_name": "elsewhere"})
            runs = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "max_results": 10})["runs"]
            assert [r["info"]["run_id"] for r in runs] == [second_id, state["run"]], runs
            assert runs[1]["info"]["status"] == "FINISHED" and runs[0]["info"]["status"] == "RUNNING", runs
            both = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"], other]})["runs"]
            assert len(both) == 3, both
            assert len(c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "max_results": 1})["runs"]) == 1
            # MLflow filter strings: comparisons of metrics (latest value),
            # params, tags and attributes joined by AND.
            low = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "filter": "metrics.loss < 0.5"})
            assert [r["info"]["run_id"] for r in low["runs"]] == [state["run"]], low
            lr = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"], other],
                                                      "filter": "params.lr = '0.001' and attributes.status = 'FINISHED'"})
            assert [r["info"]["run_id"] for r in lr["runs"]] == [state["run"]], lr
            c.error("POST", M + "runs/search", 400, "INVALID_PARAMETER_VALUE", "operator 'IN' after 'loss'",
                    body={"experiment_ids": [state["exp"]], "filter": "metrics.loss IN (0.5)"})
            c.error("POST", M + "runs/search", 400, "INVALID_PARAMETER_VALUE", "unknown identifier prefix 'datasets'",
                    body={"experiment_ids": [state["exp"]], "filter": "datasets.name = 'x'"})
            c.error("POST", M + "runs/search", 400, "INVALID_PARAMETER_VALUE", "missing field 'experiment_ids'",
                    body={})
            # order_by: a run without the key sorts last; page tokens are opaque.
            by_loss = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]],
                                                          "order_by": ["metrics.loss ASC"]})["runs"]
            assert len(by_loss) == 2 and by_loss[0]["info"]["run_id"] == state["run"], by_loss
            first = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "max_results": 1,
                                                        "order_by": ["metrics.loss ASC"]})
            assert [r["info"]["run_id"] for r in first["runs"]] == [state["run"]] and first["next_page_token"], first
            rest = c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "max_results": 1,
                                                       "order_by": ["metrics.loss ASC"],
                                                       "page_token": first["next_page_token"]})
            assert [r["info"]["run_id"] for r in rest["runs"]] == [by_loss[1]["info"]["run_id"]], rest
            assert "next_page_token" not in rest, rest
            c.error("POST", M + "runs/search", 400, "INVALID_PARAMETER_VALUE", "'SIDEWAYS' is neither ASC nor DESC",
                    body={"experiment_ids": [state["exp"]], "order_by": ["metrics.loss SIDEWAYS"]})
            c.error("POST", M + "runs/search", 400, "INVALID_PARAMETER_VALUE", "page_token 'not-a-token'",
                    body={"experiment_ids": [state["exp"]], "page_token": "not-a-token"})
            assert len(c.json("POST", M + "runs/search", {"experiment_ids": [state["exp"]], "order_by": [],
                                                          "page_token": ""})["runs"]) == 2

        def mlflow_model_registry():
            r = c.json("POST", M + "registered-models/create", {"name": "tagger", "description": "jet tagger"})
            assert r["registered_model"]["name"] == "tagger" and r["registered_model"]["latest_versions"] == [], r
            c.error("POST", M + "registered-models/create", 409, "RESOURCE_ALREADY_EXISTS", "tagger",
                    body={"name": "tagger"})
            mv = c.json("POST", M + "model-versions/create", {
                "name": "tagger", "source": "file://" + p("tagger"), "run_id": state["run"],
                "tags": [{"key": "validated", "value": "no"}]})["model_version"]
            assert mv["version"] == "1" and mv["run_id"] == state["run"] and mv["status"] == "READY", mv
            assert {"key": "validated", "value": "no"} in mv["tags"], mv
            got = c.json("GET", M + "model-versions/get", query={"name": "tagger", "version": "1"})["model_version"]
            assert got["version"] == "1" and got["name"] == "tagger", got
            # The version carries the run's params and latest metrics, and both files.
            native = c.json("GET", "/api/v1/models/tagger/versions/1")
            assert native["params"]["lr"] == "0.001" and native["metrics"]["loss"] == 0.3, native
            assert sorted(f["name"] for f in native["files"]) == ["labels.txt", "model.onnx"], native
            assert native["inputs"][0]["name"] == "x", native  # the signature of model.onnx
            status, _, data = c.call("GET", got["source"])
            assert status == 200 and data == open(p("tagger", "model.onnx"), "rb").read(), (status, got["source"])
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "outside",
                    body={"name": "tagger", "source": os.path.join(tmp, "secret.onnx")})
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "outside",
                    body={"name": "tagger", "source": p("..", "secret.onnx")})
            os.makedirs(p("sneaky"))
            shutil.copy(p("m1.onnx"), p("sneaky", "model.onnx"))
            os.symlink(os.path.join(tmp, "secret.onnx"), p("sneaky", "extra.onnx"))
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "outside",
                    body={"name": "tagger", "source": p("sneaky")})
            os.symlink(os.path.join(tmp, "secret.onnx"), p("link.onnx"))
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "outside",
                    body={"name": "tagger", "source": p("link.onnx")})
            c.error("POST", M + "model-versions/create", 404, "RESOURCE_DOES_NOT_EXIST", "has no artifacts under 'model'",
                    body={"name": "tagger", "source": f"runs:/{state['run']}/model"})
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "not supported",
                    body={"name": "tagger", "source": "s3://bucket/model"})
            c.error("POST", M + "model-versions/create", 404, "RESOURCE_DOES_NOT_EXIST", "nosuch",
                    body={"name": "nosuch", "source": p("m1.onnx")})

            c.json("POST", M + "registered-models/alias", {"name": "tagger", "alias": "champion", "version": "1"})
            mv = c.json("GET", M + "registered-models/alias",
                        query={"name": "tagger", "alias": "champion"})["model_version"]
            assert mv["version"] == "1" and mv["aliases"] == ["champion"], mv
            rm = c.json("GET", M + "registered-models/get", query={"name": "tagger"})["registered_model"]
            assert rm["aliases"] == [{"alias": "champion", "version": "1"}], rm
            assert [v["version"] for v in rm["latest_versions"]] == ["1"] and rm["description"] == "jet tagger", rm
            c.error("GET", M + "registered-models/alias", 404, "RESOURCE_DOES_NOT_EXIST", "challenger",
                    query={"name": "tagger", "alias": "challenger"})
            c.error("POST", M + "registered-models/alias", 404, "RESOURCE_DOES_NOT_EXIST", "7",
                    body={"name": "tagger", "alias": "champion", "version": "7"})
            found = c.json("GET", M + "registered-models/search", query={"filter": "name='tagger'"})
            assert [m["name"] for m in found["registered_models"]] == ["tagger"], found
            found = c.json("GET", M + "registered-models/search", query={"filter": "name LIKE 'bt%'"})
            assert [m["name"] for m in found["registered_models"]] == ["btag"], found
            found = c.json("GET", M + "registered-models/search")
            assert sorted(m["name"] for m in found["registered_models"]) == ["btag", "tagger"], found
            c.error("GET", M + "registered-models/search", 400, "INVALID_PARAMETER_VALUE", "not supported",
                    query={"filter": "tags.team = 'x'"})
            c.json("DELETE", M + "registered-models/alias", {"name": "tagger", "alias": "champion"})
            c.error("GET", M + "registered-models/alias", 404, "RESOURCE_DOES_NOT_EXIST", "champion",
                    query={"name": "tagger", "alias": "champion"})

        def mlflow_artifacts_through_the_proxy():
            exp = c.json("POST", M + "experiments/create", {"name": "with-artifacts"})["experiment_id"]
            info = c.json("POST", M + "runs/create", {"experiment_id": exp})["run"]["info"]
            run = info["run_id"]
            assert info["artifact_uri"] == f"mlflow-artifacts:/{exp}/{run}/artifacts", info
            e = c.json("GET", M + "experiments/get", query={"experiment_id": exp})["experiment"]
            assert e["artifact_location"] == f"mlflow-artifacts:/{exp}", e
            # What MLflow's client does for mlflow.log_artifact(...) with such a URI.
            proxy = "/api/2.0/mlflow-artifacts/artifacts"
            root = f"{exp}/{run}/artifacts"
            mlmodel = b"artifact_path: model\nflavors: {}\n"
            assert c.json("PUT", f"{proxy}/{root}/model/MLmodel", raw=mlmodel) == {}
            assert c.json("PUT", f"{proxy}/{root}/metrics.json", raw=b'{"auc": 0.9}') == {}
            listed = c.json("GET", M + "artifacts/list", query={"run_id": run})
            assert listed == {"root_uri": f"mlflow-artifacts:/{exp}/{run}/artifacts",
                              "files": [{"path": "metrics.json", "is_dir": False, "file_size": 12},
                                        {"path": "model", "is_dir": True}]}, listed
            sub = c.json("GET", M + "artifacts/list", query={"run_id": run, "path": "model"})["files"]
            assert sub == [{"path": "model/MLmodel", "is_dir": False, "file_size": len(mlmodel)}], sub
            files = c.json("GET", proxy, query={"path": root})["files"]
            assert files == [{"path": "metrics.json", "is_dir": False, "file_size": 12},
                             {"path": "model", "is_dir": True}], files
            files = c.json("GET", proxy, query={"path": root + "/model"})["files"]
            assert files == [{"path": "MLmodel", "is_dir": False, "file_size": len(mlmodel)}], files
            status, _, data = c.call("GET", f"{proxy}/{root}/model/MLmodel")
            assert status == 200 and data == mlmodel, (status, data)
            # The same bytes through the native endpoint: one store.
            assert c.call("GET", f"/api/v1/runs/{run}/artifacts/model/MLmodel")[2] == mlmodel
            c.error("PUT", f"{proxy}/{root}/../../x", 400, "INVALID_PARAMETER_VALUE", "'../../x'", raw=b"x")
            c.error("GET", M + "artifacts/list", 400, "INVALID_PARAMETER_VALUE", "'a//b'",
                    query={"run_id": run, "path": "a//b"})
            c.error("GET", proxy, 400, "INVALID_PARAMETER_VALUE", "EXPERIMENT_ID/RUN_ID/artifacts",
                    query={"path": "somewhere/else"})
            c.error("PUT", f"{proxy}/{exp}/99999/artifacts/x", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 99999",
                    raw=b"x")
            c.error("GET", f"{proxy}/0/{run}/artifacts/metrics.json", 404, "RESOURCE_DOES_NOT_EXIST",
                    f"not in experiment 0")
            c.error("GET", M + "artifacts/list", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 99999",
                    query={"run_id": "99999"})
            # Registering the logged model, as mlflow.register_model("runs:/RUN/model", ...) does.
            onnx_bytes = open(p("m1.onnx"), "rb").read()
            c.json("PUT", f"{proxy}/{root}/model/model.onnx", raw=onnx_bytes)
            c.json("POST", M + "registered-models/create", {"name": "from-run"})
            for n, source in enumerate([f"runs:/{run}/model", f"mlflow-artifacts:/{exp}/{run}/artifacts/model/"], 1):
                mv = c.json("POST", M + "model-versions/create", {"name": "from-run", "source": source})["model_version"]
                assert mv["version"] == str(n) and mv["run_id"] == run, mv
                v = c.json("GET", f"/api/v1/models/from-run/versions/{n}")
                assert sorted(f["name"] for f in v["files"]) == ["MLmodel", "model.onnx"], v
                assert v["inputs"][0]["name"] == "x" and v["source_run"] == int(run), v
                assert c.call("GET", f"/api/v1/models/from-run/versions/{n}/files/model.onnx")[2] == onnx_bytes
            c.error("POST", M + "model-versions/create", 404, "RESOURCE_DOES_NOT_EXIST", "no artifacts under 'nothing'",
                    body={"name": "from-run", "source": f"runs:/{run}/nothing"})
            c.error("POST", M + "model-versions/create", 400, "INVALID_PARAMETER_VALUE", "expected runs:/RUN_ID/PATH",
                    body={"name": "from-run", "source": "runs:/latest/model"})
            c.error("POST", M + "model-versions/create", 404, "RESOURCE_DOES_NOT_EXIST", "not in experiment 0",
                    body={"name": "from-run", "source": f"mlflow-artifacts:/0/{run}/artifacts/model"})
            assert c.json("GET", "/api/v1/models/from-run")["latest_version"] == 2

        # ------------------------------------------------------------ bad requests
        def bad_requests_get_codes_and_messages():
            c.error("POST", M + "runs/create", 400, "INVALID_PARAMETER_VALUE", "not valid JSON", raw=b"{not json")
            c.error("POST", M + "runs/create", 400, "INVALID_PARAMETER_VALUE", "must be a JSON object", raw=b"[1,2]")
            c.error("POST", M + "experiments/create", 400, "INVALID_PARAMETER_VALUE", "missing field 'name'", body={})
            c.error("POST", M + "experiments/create", 400, "INVALID_PARAMETER_VALUE", "'name' must be a string",
                    body={"name": 5})
            run = state["run"]
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "'value' must be a number",
                    body={"run_id": run, "key": "x", "value": "abc"})
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "'step' must be an integer",
                    body={"run_id": run, "key": "x", "value": 1, "step": 1.5})
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "NaN cannot be stored",
                    body={"run_id": run, "key": "x", "value": "NaN"})
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "out of range",
                    raw=b'{"run_id": "1", "key": "x", "value": 1, "step": 18446744073709551615}')
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "'step' must be an integer",
                    raw=b'{"run_id": "1", "key": "x", "value": 1, "step": 1e300}')
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "",
                    raw=b'{"run_id": "1", "key": "x", "value": 1e99999}')
            c.error("POST", M + "runs/log-metric", 400, "INVALID_PARAMETER_VALUE", "'step' must be a 64-bit integer",
                    body={"run_id": run, "key": "x", "value": 1, "step": "99999999999999999999999"})
            c.error("GET", M + "runs/get", 400, "INVALID_PARAMETER_VALUE", "'run_id' must be a 64-bit integer",
                    query={"run_id": "abc"})
            c.error("GET", M + "runs/get", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run 99999",
                    query={"run_id": "99999"})
            c.error("GET", M + "runs/get", 404, "RESOURCE_DOES_NOT_EXIST", "unknown run",
                    query={"run_id": "-3"})
            c.error("GET", M + "runs/get", 400, "INVALID_PARAMETER_VALUE", "missing field 'run_id'")
            c.error("POST", M + "runs/log-batch", 400, "INVALID_PARAMETER_VALUE", "'metrics' must be a list",
                    body={"run_id": run, "metrics": {"key": "x"}})
            c.error("POST", M + "runs/log-batch", 400, "INVALID_PARAMETER_VALUE", "missing field 'key'",
                    body={"run_id": run, "params": [{"value": "1"}]})
            c.error("POST", M + "runs/update", 400, "INVALID_PARAMETER_VALUE", "status 'DONE'",
                    body={"run_id": c.json("POST", M + "runs/create", {})["run"]["info"]["run_id"], "status": "DONE"})
            c.error("POST", M + "runs/create", 404, "RESOURCE_DOES_NOT_EXIST", "unknown experiment 4242",
                    body={"experiment_id": "4242"})
            c.error("GET", M + "runs/create", 405, "INVALID_PARAMETER_VALUE", "use POST")
            c.error("GET", "/api/2.0/mlflow/nothing/here", 404, "RESOURCE_DOES_NOT_EXIST", "no endpoint")
            c.error("GET", "/api/v1/models/nosuch", 404, "RESOURCE_DOES_NOT_EXIST", "unknown model 'nosuch'")
            c.error("GET", "/api/v1/models/btag/versions/0", 400, "INVALID_PARAMETER_VALUE", "not a positive integer")
            c.error("GET", "/api/v1/models/btag/versions/77", 404, "RESOURCE_DOES_NOT_EXIST", "77")
            c.error("POST", "/api/v1/models", 405, "", "use GET")
            # Deeply nested JSON within the size limit.
            deep = b'{"name": ' + b"[" * 30000 + b"]" * 30000 + b"}"
            c.error("POST", M + "experiments/create", 400, "INVALID_PARAMETER_VALUE", "'name' must be a string",
                    raw=deep)

        def every_field_of_every_type_is_answered_without_500():
            # Each field of each write endpoint given each JSON type: a 2xx or
            # a 4xx with a message, never a 500, never a dead server.
            values = [5, -1, 1.5, 1e300, "x", "", "99999999999999999999", [], [1, "a"], {}, {"key": 1}, None, True]
            endpoints = {
                "experiments/create": ["name"],
                "runs/create": ["experiment_id", "run_name", "tags", "start_time"],
                "runs/update": ["run_id", "status", "run_name", "end_time"],
                "runs/search": ["experiment_ids", "filter", "max_results", "order_by", "page_token"],
                "runs/log-metric": ["run_id", "key", "value", "step", "timestamp"],
                "runs/log-parameter": ["run_id", "key", "value"],
                "runs/log-batch": ["run_id", "metrics", "params", "tags"],
                "runs/set-tag": ["run_id", "key", "value"],
                "registered-models/create": ["name", "description", "tags"],
                "registered-models/alias": ["name", "alias", "version"],
                "model-versions/create": ["name", "source", "run_id", "tags"],
                "model-versions/transition-stage": ["name", "version", "stage", "archive_existing_versions"],
                "model-versions/set-tag": ["name", "version", "key", "value"],
                "experiments/set-experiment-tag": ["experiment_id", "key", "value"],
                "experiments/search": ["max_results", "order_by", "page_token", "view_type"],
            }
            fresh = c.json("POST", M + "runs/create", {})["run"]["info"]["run_id"]
            good = {"run_id": fresh, "key": "k", "value": "1", "name": "tagger", "alias": "a", "version": "1",
                    "experiment_ids": ["0"], "source": p("m1.onnx"), "stage": "Staging",
                    "experiment_id": "1"}
            seen = 0
            for endpoint, fields in endpoints.items():
                for field in fields:
                    for v in values:
                        body = dict(good)
                        body[field] = v
                        status, _, data = c.call("POST", M + endpoint, body)
                        assert status in (200, 400, 404, 409), f"{endpoint} {field}={v!r}: HTTP {status} {data[:200]!r}"
                        if status != 200:
                            assert json.loads(data)["message"], data
                        seen += 1
            c.healthy()
            assert seen > 400, seen

        def oversized_body_is_413():
            c.error("POST", M + "experiments/create", 413, "PAYLOAD_TOO_LARGE", f"larger than {MAX_BODY} bytes",
                    raw=b'{"name": "' + b"x" * (2 * MAX_BODY) + b'"}')

        def malformed_http_is_400():
            answer = c.raw_exchange(b"THIS IS NOT HTTP\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            answer = c.raw_exchange(b"POST /api/2.0/mlflow/runs/create HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: zebra\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            c.healthy()

        def keep_alive_connection_serves_many():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            for _ in range(20):
                conn.request("GET", "/api/v1/models")
                r = conn.getresponse()
                assert r.status == 200 and json.loads(r.read())["models"], r.status
            conn.close()

        def concurrent_clients_each_log_their_run():
            def one(i):
                run = c.json("POST", M + "runs/create", {"experiment_id": state["exp"], "run_name": f"worker{i}"})
                run_id = run["run"]["info"]["run_id"]
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                for step in range(25):
                    body = json.dumps({"run_id": run_id, "key": "loss", "value": i + step / 100, "step": step})
                    conn.request("POST", M + "runs/log-metric", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    assert r.status == 200, (r.status, r.read())
                    r.read()
                conn.close()
                return run_id

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                run_ids = list(pool.map(one, range(8)))
            for i, run_id in enumerate(run_ids):
                hist = c.json("GET", M + "metrics/get-history", query={"run_id": run_id, "metric_key": "loss"})
                assert [h["step"] for h in hist["metrics"]] == list(range(25)), hist
                assert hist["metrics"][-1]["value"] == i + 0.24, hist

        def mlflow_client_if_installed():
            try:
                import mlflow  # noqa: F401
                from mlflow.tracking import MlflowClient
            except ImportError:
                print("      (the mlflow package is not installed: its own client is not driven)")
                return
            client = MlflowClient(tracking_uri=server.base, registry_uri=server.base)
            exp = client.create_experiment("from-mlflow")
            run = client.create_run(exp, run_name="mlflow-client")
            client.log_param(run.info.run_id, "lr", "0.1")
            for step in range(3):
                client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
            client.set_tag(run.info.run_id, "k", "v")
            client.set_terminated(run.info.run_id)
            got = client.get_run(run.info.run_id)
            assert got.info.status == "FINISHED" and got.data.params == {"lr": "0.1"}, got
            client.set_registered_model_alias("tagger", "mlflow", "1")
            assert client.get_model_version_by_alias("tagger", "mlflow").version == "1"

        for name, fn in [
            ("native: models and versions", native_models_and_versions),
            ("native: file download streams the pulled bytes", native_file_download_streams_the_pulled_bytes),
            ("native: aliases set, get, history, remove", native_aliases),
            ("native: intervals, overlap 409, resolve by run", native_intervals_and_resolve),
            ("native: lineage up and down", native_lineage),
            ("native: lineage downstream of a model version and of a run", native_lineage_downstream),
            ("native: lineage depth and node limits, datasets, runs reading models", native_lineage_limits_and_records),
            ("native: artifacts upload, list, download, bad paths", native_artifacts_upload_list_download),
            ("mlflow: experiments", mlflow_experiment),
            ("mlflow: a training run (params, metrics by step, batch, tags, FINISHED)", mlflow_training_run),
            ("mlflow: runs/search by experiment", mlflow_search_runs),
            ("mlflow: registered model, version from a source folder, alias", mlflow_model_registry),
            ("mlflow: artifacts through the mlflow-artifacts proxy, artifacts/list", mlflow_artifacts_through_the_proxy),
            ("bad requests: codes and messages, server keeps answering", bad_requests_get_codes_and_messages),
            ("every field of every type: no 500", every_field_of_every_type_is_answered_without_500),
            ("oversized body: 413", oversized_body_is_413),
            ("malformed HTTP: 400", malformed_http_is_400),
            ("keep-alive connection", keep_alive_connection_serves_many),
            ("8 concurrent clients, each logging its run", concurrent_clients_each_log_their_run),
            ("mlflow's own client (when installed)", mlflow_client_if_installed),
        ]:
            suite.check(name, fn)

        def sigterm_exits_zero():
            assert server.proc.poll() is None, "the server died during the tests"
            rc = server.stop()
            assert rc == 0, f"exit {rc}: {server.proc.stderr.read()!r}"

        suite.check("SIGTERM: clean exit 0", sigterm_exits_zero)
    finally:
        if server is not None:
            server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml_registry_rest_")
    suite = Suite()
    try:
        def serve_refuses_bad_command_lines():
            env = dict(os.environ)
            env.pop("HEPML_REGISTRY", None)
            reg = os.path.join(tmp, "bad")
            subprocess.run([args.hepml, "registry", "--registry", reg, "init"], check=True, capture_output=True)
            for extra, code, needle in [(["--port", "70000"], 2, "70000"),
                                        (["--host", "not-an-ip"], 1, "not an IP address"),
                                        (["--max-body-bytes", "0"], 2, "0")]:
                r = subprocess.run([args.hepml, "registry", "--registry", reg, "serve", *extra], capture_output=True,
                                   text=True, timeout=60, env=env)
                assert r.returncode == code and needle in r.stderr, (extra, r.returncode, r.stderr)
            r = subprocess.run([args.hepml, "registry", "--registry", os.path.join(tmp, "missing"), "serve"],
                               capture_output=True, text=True, timeout=60, env=env)
            assert r.returncode == 1 and "no registry at" in r.stderr, (r.returncode, r.stderr)
            assert not os.path.exists(os.path.join(tmp, "missing"))

        suite.label = "cli"
        suite.check("serve: bad command lines and a missing registry", serve_refuses_bad_command_lines)
        os.makedirs(os.path.join(tmp, "sqlite"))
        run_suite(args.hepml, ["--registry", os.path.join(tmp, "sqlite", "reg")], os.path.join(tmp, "sqlite"),
                  "sqlite", suite)
        if os.path.exists(f"{PG_BIN}/initdb"):
            pg = Postgres()
            try:
                os.makedirs(os.path.join(tmp, "pg"))
                where = ["--metadata", pg.uri, "--blobs", f"file://{tmp}/pg/blobs"]
                run_suite(args.hepml, where, os.path.join(tmp, "pg"), "postgresql", suite)
            finally:
                pg.stop()
        else:
            print(f"skip  postgresql: no PostgreSQL 15 binaries in {PG_BIN} (apt-get install postgresql-15)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{suite.passed} passed, {suite.failed} failed")
    return 1 if suite.failed else 0


if __name__ == "__main__":
    sys.exit(main())
