#!/usr/bin/env python3
"""`hepml serve` model control: explicit mode (load/unload over HTTP, the
repository index), a model that fails to load (reason in the index, server
not ready, the other models served), several repositories, version
policies, and poll mode picking up a model added while running."""
import argparse
import os
import shutil
import tempfile
import time

from serve_harness import TRIGGER_MLP, Failures, Server, curl, curl_json, make_repository, temp_dir

GOOD = """
max_batch_size: 8
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ]
"""
WRONG_DTYPE = GOOD.replace("TYPE_FP32 dims: [ 16 ]", "TYPE_INT64 dims: [ 16 ]")
ALL_VERSIONS = GOOD + "version_policy: { all: {} }\n"
SYNTAX_ERROR = "max_batch_size: eight\n"

ONE = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-repo-")
    repo_a = make_repository(os.path.join(work, "a"), {
        "mlp": (GOOD, {1: TRIGGER_MLP}),
        "mlp_all": (ALL_VERSIONS, {1: TRIGGER_MLP, 3: TRIGGER_MLP}),
        "wrong_dtype": (WRONG_DTYPE, {1: TRIGGER_MLP}),
    })
    repo_b = make_repository(os.path.join(work, "b"), {
        "syntax_error": (SYNTAX_ERROR, {1: TRIGGER_MLP}),
        "noconfig": (None, {1: TRIGGER_MLP}),
    })

    # Explicit mode: only --load-model models at start.
    server = Server(args.hepml, [repo_a, repo_b], ["--model-control-mode", "explicit", "--load-model", "mlp"])
    try:
        f.check(server.wait_ready(), "explicit server ready")
        base = server.http
        code, index = curl_json(base + "/v2/repository/index", "POST", {})
        names = {m["name"]: m for m in index} if code == 200 else {}
        f.check(set(names) == {"mlp", "mlp_all", "wrong_dtype", "syntax_error", "noconfig"},
                f"index lists every model of both repositories: {index}")
        f.check(names.get("mlp", {}).get("state") == "READY", f"mlp ready: {names.get('mlp')}")
        f.check("state" not in names.get("noconfig", {"state": 1}), f"noconfig not loaded: {names.get('noconfig')}")
        code, index = curl_json(base + "/v2/repository/index", "POST", {"ready": True})
        f.check(code == 200 and [m["name"] for m in index] == ["mlp"], f"ready-only index: {index}")

        code, _ = curl_json(base + "/v2/models/noconfig/infer", "POST", ONE)
        f.check(code in (404, 503), f"infer on a model not loaded: {code}")
        code, body = curl_json(base + "/v2/repository/models/noconfig/load", "POST", {})
        f.check(code == 200, f"load noconfig: {code} {body}")
        code, res = curl_json(base + "/v2/models/noconfig/infer", "POST", ONE)
        f.check(code == 200 and res["outputs"][0]["shape"] == [1, 5], f"infer after load: {code} {res}")

        code, body = curl_json(base + "/v2/repository/models/mlp_all/load", "POST", {})
        f.check(code == 200, f"load mlp_all: {code} {body}")
        code, meta = curl_json(base + "/v2/models/mlp_all")
        f.check(code == 200 and meta["versions"] == ["1", "3"], f"version_policy all: {meta}")
        f.check(curl(base + "/v2/models/mlp_all/versions/1/ready")[0] == 200, "mlp_all v1 ready")
        f.check(curl(base + "/v2/models/mlp_all/versions/2/ready")[0] != 200, "mlp_all v2 absent")

        code, body = curl_json(base + "/v2/repository/models/wrong_dtype/load", "POST", {})
        f.check(code == 400 and "TYPE_INT64" in body.get("error", ""), f"load wrong_dtype fails with reason: {code} {body}")
        code, body = curl_json(base + "/v2/repository/models/syntax_error/load", "POST", {})
        f.check(code == 400 and "line 1" in body.get("error", ""), f"load syntax_error names the line: {code} {body}")
        code, body = curl_json(base + "/v2/repository/models/absent/load", "POST", {})
        f.check(code == 404, f"load of a model in no repository: {code} {body}")
        code, index = curl_json(base + "/v2/repository/index", "POST", {})
        names = {m["name"]: m for m in index} if code == 200 else {}
        f.check(names.get("wrong_dtype", {}).get("state") == "UNAVAILABLE"
                and "TYPE_INT64" in names.get("wrong_dtype", {}).get("reason", ""),
                f"index gives the failure reason: {names.get('wrong_dtype')}")

        code, _ = curl_json(base + "/v2/repository/models/noconfig/unload", "POST", {})
        f.check(code == 200, f"unload noconfig: {code}")
        code, body = curl_json(base + "/v2/models/noconfig/infer", "POST", ONE)
        f.check(code == 503 and body.get("error"), f"infer after unload is 503: {code} {body}")
        f.check(curl(base + "/v2/models/noconfig/ready")[0] != 200, "unloaded model not ready")
        code, _ = curl_json(base + "/v2/repository/models/noconfig/unload", "POST", {})
        f.check(code == 404, f"second unload: {code}")
        f.check(server.alive(), "alive after control requests")
        f.check(server.stop() == 0, "explicit server exits 0")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()

    # Mode none with a model that fails: the others are served, the server
    # is not ready, and load requests are refused.
    server = Server(args.hepml, [repo_a])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and curl(server.http + "/v2/models/mlp/ready")[0] != 200:
            time.sleep(0.1)
        f.check(curl(server.http + "/v2/models/mlp/ready")[0] == 200, "mlp served next to a broken model")
        f.check(curl(server.http + "/v2/health/ready")[0] != 200, "server not ready with a broken model")
        f.check(curl(server.http + "/v2/health/live")[0] == 200, "server live with a broken model")
        f.check("wrong_dtype" in server.read_log(), "load failure logged")
        code, body = curl_json(server.http + "/v2/repository/models/mlp/unload", "POST", {})
        f.check(code == 400 and "explicit" in body.get("error", ""), f"unload refused in mode none: {code} {body}")
        f.check(server.stop() == 0, "server exits 0")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()

    # Poll mode: a model copied in while running is picked up, a removed one
    # goes away.
    repo_c = make_repository(os.path.join(work, "c"), {"first": (GOOD, {1: TRIGGER_MLP}),
                                                       "fixme": (WRONG_DTYPE, {1: TRIGGER_MLP})})
    server = Server(args.hepml, [repo_c], ["--model-control-mode", "poll", "--repository-poll-secs", "1"])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and curl(server.http + "/v2/models/first/ready")[0] != 200:
            time.sleep(0.1)
        f.check(curl(server.http + "/v2/health/ready")[0] != 200, "not ready while fixme fails to load")
        with open(os.path.join(repo_c, "fixme", "config.pbtxt"), "w") as cfg:
            cfg.write(GOOD)
        f.check(server.wait_ready(), "ready once fixme's config is fixed and polled")
        f.check(curl(server.http + "/v2/models/fixme/ready")[0] == 200, "fixme loaded after the fix")
        staging = make_repository(os.path.join(work, "staging"), {"second": (GOOD, {1: TRIGGER_MLP})})
        shutil.move(os.path.join(staging, "second"), os.path.join(repo_c, "second"))
        deadline = time.time() + 30
        while time.time() < deadline and curl(server.http + "/v2/models/second/ready")[0] != 200:
            time.sleep(0.2)
        f.check(curl(server.http + "/v2/models/second/ready")[0] == 200, "polled model loaded")
        code, res = curl_json(server.http + "/v2/models/second/infer", "POST", ONE)
        f.check(code == 200, f"infer on the polled model: {code} {res}")
        shutil.rmtree(os.path.join(repo_c, "first"))
        deadline = time.time() + 30
        while time.time() < deadline and curl(server.http + "/v2/models/first/ready")[0] == 200:
            time.sleep(0.2)
        f.check(curl(server.http + "/v2/models/first/ready")[0] != 200, "removed model unloaded")
        f.check(server.stop() == 0, "poll server exits 0")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()

    # Command-line and startup errors: one line on stderr, exit 1 (startup) or 2 (usage).
    import subprocess
    for what, argv, want in [
        ("missing repository", ["--model-repository", os.path.join(work, "absent")], 1),
        ("bad control mode", ["--model-repository", repo_a, "--model-control-mode", "sometimes"], 2),
        ("--load-model outside explicit mode", ["--model-repository", repo_a, "--load-model", "mlp"], 2),
        ("no repository", [], 2),
        ("bad port", ["--model-repository", repo_a, "--http-port", "70000"], 2),
    ]:
        out = subprocess.run([args.hepml, "serve", "--grpc-port", "-1", "--metrics-port", "-1"] + argv,
                             capture_output=True, text=True, timeout=60)
        f.check(out.returncode == want and out.stderr.strip(),
                f"{what}: want exit {want} and a message, got {out.returncode} {out.stderr.strip()[:200]}")
    blocker = Server(args.hepml, [repo_c])
    try:
        port = blocker.ports["HTTPService"]
        out = subprocess.run([args.hepml, "serve", "--model-repository", repo_c, "--http-port", str(port),
                              "--grpc-port", "0", "--metrics-port", "0"], capture_output=True, text=True, timeout=60)
        f.check(out.returncode == 1 and str(port) in out.stderr, f"port in use: {out.returncode} {out.stderr.strip()}")
        blocker.stop()
    finally:
        if blocker.proc.poll() is None:
            blocker.proc.kill()
    f.finish()


if __name__ == "__main__":
    main()
