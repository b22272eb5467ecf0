#!/usr/bin/env python3
"""Input drift measured by `hepml serve` and acted on by `hepml jobs`.

A model served from a registry with --drift-window: the first events form
the reference; a window of the same distribution reads as stable, a window
with one feature shifted as drift (the feature named), on GET
/v2/models/NAME/drift and on the metrics port; each window is recorded in the
registry, and a `hepml jobs` drift:MODEL trigger fires on the shifted window
only, retraining and moving the alias. A model of a plain repository takes
its reference from an .npz named in config.pbtxt; a bad reference stops that
model from loading with the reason."""
import argparse
import os
import subprocess
import time

import numpy as np

from serve_harness import Failures, Server, curl, curl_json, make_repository, scale_model, temp_dir


def send(server, name, rng, requests, shift, rows=4):
    """`requests` requests of `rows` events (Triton's default max_batch_size
    is 4), feature 2 shifted by `shift`."""
    for _ in range(requests):
        x = rng.normal(size=(rows, 4)).astype(np.float32)
        x[:, 2] += shift
        body = {"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32", "data": x.ravel().tolist()}]}
        code, out = curl_json(f"{server.http}/v2/models/{name}/infer", "POST", body)
        if code != 200:
            return f"{code} {out}"
    return None


def drift_runs(server):
    """The drift reports recorded in the registry, newest first: [(model, value)]."""
    code, exp = curl_json(f"{server.http}/api/2.0/mlflow/experiments/get-by-name?experiment_name=hepml.jobs.drift")
    if code != 200:
        return []
    code, found = curl_json(f"{server.http}/api/2.0/mlflow/runs/search", "POST",
                            {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100})
    out = []
    for run in (found or {}).get("runs", []):
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        metrics = {m["key"]: m["value"] for m in run["data"].get("metrics", [])}
        out.append((tags.get("hepml.drift.model"), metrics.get("drift")))
    return out


def wait_for(cond, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-drift-")
    reg = os.path.join(work, "registry")
    rng = np.random.default_rng(3)

    def cli(*a, expect=0):
        out = subprocess.run([args.hepml, *a], capture_output=True, text=True)
        f.check(out.returncode == expect, f"hepml {' '.join(a)}: exit {out.returncode} {out.stderr}")
        return out.stdout

    cli("registry", "--registry", reg, "init")
    cli("registry", "--registry", reg, "model", "create", "btag")
    cli("registry", "--registry", reg, "push", "btag", scale_model(os.path.join(work, "v1.onnx"), 1))
    cli("registry", "--registry", reg, "alias", "set", "btag", "production", "1")
    retrained = scale_model(os.path.join(work, "v2.onnx"), 2)
    job = os.path.join(work, "retrain.yaml")
    with open(job, "w") as out:
        out.write(f"command: \"cp '{retrained}' {{out}} && echo hepml-metric auc=0.9\"\n")
        out.write("model: btag\noutput: model.onnx\nmetric: {name: auc, direction: maximize}\n")
        out.write("alias: production\npolicy: {promote_if: always}\ndrift_threshold: 0.25\n")
        out.write("executor: {kind: local}\n")
    cli("jobs", "--registry", reg, "trigger", "add", "--on", "drift:btag", "--run", job)

    server = Server(args.hepml, [], ["--registry", reg, "--registry-model", "btag@production",
                                     "--registry-poll-secs", "1", "--drift-window", "200",
                                     "--drift-reference-events", "400"])
    try:
        f.check(server.wait_ready(), "server ready")
        code, d = curl_json(f"{server.http}/v2/models/btag/drift")
        f.check(code == 200 and d["enabled"] and not d["reference_ready"] and d["windows"] == 0,
                f"drift before any request: {code} {d}")

        err = send(server, "btag", rng, 100, 0.0)
        f.check(err is None, f"reference requests answered: {err}")
        code, d = curl_json(f"{server.http}/v2/models/btag/drift")
        f.check(d["reference_ready"] and d["reference_events"] == 400 and d["windows"] == 0,
                f"reference complete after 400 events: {d}")

        f.check(send(server, "btag", rng, 50, 0.0) is None, "same-distribution requests answered")
        code, d = curl_json(f"{server.http}/v2/models/btag/drift")
        last = d.get("last_window", {})
        f.check(d["windows"] == 1 and last.get("events") == 200 and last.get("psi_max", 1) < 0.1,
                f"a window like the reference is stable (PSI < 0.1): {d}")
        f.check(wait_for(lambda: len(drift_runs(server)) == 1), f"the window is recorded: {drift_runs(server)}")
        out = cli("jobs", "--registry", reg, "watch", "--once", "--poll", "0.2")
        f.check(out.strip() == "nothing to do", f"a stable window does not fire the trigger: {out}")

        f.check(send(server, "btag", rng, 50, 1.5) is None, "shifted requests answered")
        code, d = curl_json(f"{server.http}/v2/models/btag/drift")
        last = d.get("last_window", {})
        f.check(d["windows"] == 2 and last.get("psi_max", 0) > 0.25 and last.get("worst_input") == "x"
                and last.get("worst_feature") == 2, f"the shifted feature is found (PSI > 0.25): {d}")
        code, metrics, _ = curl(server.metrics)
        line = [l for l in metrics.decode().splitlines() if l.startswith('hepml_input_drift_psi{model="btag"')]
        f.check(len(line) == 1 and float(line[0].split()[-1]) > 0.25, f"hepml_input_drift_psi on /metrics: {line}")
        f.check('hepml_input_drift_windows_total{model="btag",version="1"} 2' in metrics.decode(),
                "hepml_input_drift_windows_total counts the windows")
        f.check(wait_for(lambda: len(drift_runs(server)) == 2), f"both windows recorded: {drift_runs(server)}")
        runs = drift_runs(server)
        f.check(runs and runs[0][0] == "btag" and runs[0][1] > 0.25, f"the newest report is the drift: {runs}")

        out = cli("jobs", "--registry", reg, "watch", "--once", "--poll", "0.2")
        f.check("drift btag" in out and "promoted version 2" in out, f"the drift trigger retrains and promotes: {out}")
        # The server follows the alias to the retrained version, whose drift
        # starts again from a reference of its own.
        def serving_v2():
            code, meta = curl_json(f"{server.http}/v2/models/btag")
            return code == 200 and meta.get("versions") == ["2"]
        f.check(wait_for(serving_v2), "the server follows production to version 2")
        code, d = curl_json(f"{server.http}/v2/models/btag/drift")
        f.check(code == 200 and d["version"] == "2" and not d["reference_ready"], f"version 2 drift restarts: {d}")
    finally:
        f.check(server.stop() == 0, "server stops cleanly")

    # A plain repository: the reference from an .npz in the model folder.
    ref = os.path.join(work, "reference.npz")
    np.savez(ref, x=rng.normal(size=(2000, 4)).astype(np.float32))
    config = ('name: "m"\nmax_batch_size: 256\n'
              'parameters { key: "hepml.drift_window" value { string_value: "200" } }\n'
              'parameters { key: "hepml.drift_reference" value { string_value: "reference.npz" } }\n')
    repo = make_repository(os.path.join(work, "repo"), {
        "m": (config, {1: scale_model(os.path.join(work, "m.onnx"), 1)}),
        "bad": (config.replace('"m"', '"bad"').replace("reference.npz", "missing.npz"),
                {1: scale_model(os.path.join(work, "bad.onnx"), 1)}),
    })
    os.replace(ref, os.path.join(repo, "m", "reference.npz"))
    server = Server(args.hepml, [repo])
    try:
        time.sleep(0.5)
        code, d = curl_json(f"{server.http}/v2/models/m/drift")
        f.check(code == 200 and d["reference_ready"] and d["reference_events"] == 2000,
                f"reference read from the .npz: {code} {d}")
        f.check(send(server, "m", rng, 2, 3.0, rows=100) is None, "requests to m answered")
        code, d = curl_json(f"{server.http}/v2/models/m/drift")
        f.check(d["windows"] == 1 and d["last_window"]["psi_max"] > 1.0, f"drift against the file: {d}")
        code, d = curl_json(f"{server.http}/v2/models/bad/drift")
        f.check(code != 200, f"a model whose reference is missing is not served: {code} {d}")
        log = server.read_log()
        f.check("missing.npz" in log, f"the log names the missing reference: {log[-2000:]}")
        code, _, _ = curl(f"{server.http}/v2/health/ready")
        f.check(code != 200, "the server is not ready while a model failed to load")
    finally:
        server.stop()
    f.finish()


if __name__ == "__main__":
    main()
