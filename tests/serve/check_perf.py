#!/usr/bin/env python3
"""`hepml perf` against a real `hepml serve` over HTTP and gRPC: the JSON
report (every concurrency level present, requests and throughput > 0, no
errors, the server's statistics read and consistent with the batch size),
the text report, inputs from .npy files, and clear one-line errors with a
non-zero exit for an unknown model, an unreachable server and bad options.
Measurement windows are short (300 ms) so the test stays quick; it asserts
no timing."""
import argparse
import json
import os
import socket
import subprocess

from serve_harness import TRIGGER_INPUT, TRIGGER_MLP, Failures, Server, make_repository, temp_dir

CONFIG = """
name: "trigger_mlp"
backend: "onnxruntime"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
instance_group [ { count: 1 kind: KIND_CPU } ]
"""
INTERVAL = ["--measurement-interval", "300"]


def perf(hepml, *args):
    out = subprocess.run([hepml, "perf", *args], capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout, out.stderr


def free_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check_report(f, what, report, concurrencies, batch):
    f.check(report.get("model") == "trigger_mlp", f"{what}: model named: {report.get('model')}")
    f.check(report.get("batch_size") == batch, f"{what}: batch size {report.get('batch_size')}")
    levels = report.get("levels", [])
    f.check([lv.get("concurrency") for lv in levels] == concurrencies,
            f"{what}: levels {[lv.get('concurrency') for lv in levels]}, expected {concurrencies}")
    for lv in levels:
        c = lv.get("concurrency")
        lat = lv.get("latency_us", {})
        server = lv.get("server") or {}
        f.check(lv.get("requests", 0) > 0, f"{what} c={c}: requests {lv.get('requests')}")
        f.check(lv.get("errors") == 0, f"{what} c={c}: errors {lv.get('errors')}")
        f.check(lv.get("throughput_infer_per_s", 0) > 0, f"{what} c={c}: throughput {lv.get('throughput_infer_per_s')}")
        f.check(0 < lat.get("p50", 0) <= lat.get("p90", 0) <= lat.get("p95", 0) <= lat.get("p99", 0) <= lat.get("max", 0),
                f"{what} c={c}: percentiles ordered: {lat}")
        f.check(server.get("requests", 0) > 0 and server.get("failures") == 0,
                f"{what} c={c}: server statistics read: {server}")
        # The statistics endpoint counts each request's batch elements.
        f.check(server.get("inferences") == batch * server.get("requests", -1),
                f"{what} c={c}: server inferences = batch x requests: {server}")
        f.check(server.get("executions", 0) > 0 and server.get("avg_compute_infer_us", 0) > 0,
                f"{what} c={c}: server executions and compute time: {server}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-perf-")
    repo = make_repository(os.path.join(work, "repo"), {"trigger_mlp": (CONFIG, {1: TRIGGER_MLP})})
    server = Server(args.hepml, [repo])
    try:
        f.check(server.wait_ready(), "server ready")
        http = f"127.0.0.1:{server.ports['HTTPService']}"
        grpc = server.grpc_target
        for protocol, url in (("http", http), ("grpc", grpc)):
            rc, out, err = perf(args.hepml, "-m", "trigger_mlp", "-u", url, "-i", protocol,
                                "--concurrency-range", "1:4:x2", "--json", *INTERVAL)
            f.check(rc == 0, f"{protocol}: exit code {rc}: {err}")
            try:
                report = json.loads(out)
            except ValueError:
                f.check(False, f"{protocol}: stdout is one JSON object: {out[:500]}")
                continue
            f.check(report.get("protocol") == protocol, f"{protocol}: protocol in report: {report.get('protocol')}")
            f.check(report.get("inputs") == [{"name": "features", "datatype": "FP32", "shape": [1, 16], "data": "random"}],
                    f"{protocol}: random input from the metadata: {report.get('inputs')}")
            check_report(f, protocol, report, [1, 2, 4], 1)

        # Inputs from a file (4 events): the batch size is its rows.
        rc, out, err = perf(args.hepml, "-m", "trigger_mlp", "-u", grpc, "-i", "grpc", "--input",
                            f"features={TRIGGER_INPUT}", "--concurrency-range", "2", "--json", *INTERVAL)
        f.check(rc == 0, f"--input: exit code {rc}: {err}")
        if rc == 0:
            report = json.loads(out)
            f.check(report["inputs"][0]["data"] == TRIGGER_INPUT and report["inputs"][0]["shape"] == [4, 16],
                    f"--input: file used: {report['inputs']}")
            check_report(f, "--input", report, [2], 4)

        # Random batches of 8, stepped range, text report.
        rc, out, err = perf(args.hepml, "-m", "trigger_mlp", "-u", http, "--batch-size", "8",
                            "--concurrency-range", "1:3:2", *INTERVAL)
        f.check(rc == 0, f"text report: exit code {rc}: {err}")
        for line in ("Batch size: 8", "Request concurrency: 1", "Request concurrency: 3", "p99 latency:",
                     "Avg request latency:", "Concurrency: 3, throughput:"):
            f.check(line in out, f"text report has '{line}':\n{out}")
        f.check("Request concurrency: 2" not in out, "text report: step 2 skips concurrency 2")

        # Errors: one line on stderr naming the cause, exit 1 (2 for a bad command line).
        for protocol, url in (("http", http), ("grpc", grpc)):
            rc, out, err = perf(args.hepml, "-m", "no_such_model", "-u", url, "-i", protocol, *INTERVAL)
            f.check(rc == 1 and "no_such_model" in err and len(err.strip().splitlines()) == 1 and out == "",
                    f"{protocol} unknown model: rc {rc}, stderr {err!r}, stdout {out[:200]!r}")
            dead = f"127.0.0.1:{free_port()}"
            rc, out, err = perf(args.hepml, "-m", "trigger_mlp", "-u", dead, "-i", protocol, *INTERVAL)
            f.check(rc == 1 and dead in err and len(err.strip().splitlines()) == 1,
                    f"{protocol} unreachable server: rc {rc}, stderr {err!r}")
        rc, _, err = perf(args.hepml, "-m", "trigger_mlp", "-u", http, "--input", f"nope={TRIGGER_INPUT}", *INTERVAL)
        f.check(rc == 1 and "nope" in err and "features" in err, f"unknown input name: rc {rc}, {err!r}")
        rc, _, err = perf(args.hepml, "-m", "trigger_mlp", "-u", http, "--batch-size", "100", *INTERVAL)
        f.check(rc == 1 and "batch" in err and len(err.strip().splitlines()) == 1, f"batch over the model's limit: rc {rc}, {err!r}")
        for bad in (["--concurrency-range", "4:2"], ["--concurrency-range", "1:8:x1"], ["-i", "udp"],
                    ["-u", "127.0.0.1"]):
            rc, _, err = perf(args.hepml, "-m", "trigger_mlp", *bad)
            f.check(rc == 2 and err.startswith("hepml perf:"), f"bad option {bad}: rc {rc}, {err!r}")
        f.check(server.alive(), "server alive after the runs")
    finally:
        rc = server.stop()
        f.check(rc == 0, f"server exit code {rc}")
    f.finish()


if __name__ == "__main__":
    main()
