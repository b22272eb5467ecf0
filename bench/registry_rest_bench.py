#!/usr/bin/python3
"""`hepml registry serve` under an MLflow-style logging load.

Starts the server on a temporary SQLite registry (a free loopback port) and
measures, with keep-alive HTTP connections from this process:
  - runs/log-metric calls per second on one connection, then on 8 at once
    (one run each, as 8 training jobs would);
  - runs/log-batch of 1,000 metric points (one transaction);
  - runs/get of a run holding those points.
Prints a Markdown table. Not a test: it asserts only that every call
answered 200.

  bench/registry_rest_bench.py --hepml build/src/cli/hepml [--calls 2000]
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time


def connect(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def call(conn, method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, (r.status, data[:200])
    return json.loads(data)


def new_run(port):
    conn = connect(port)
    run = call(conn, "POST", "/api/2.0/mlflow/runs/create", {})["run"]["info"]["run_id"]
    conn.close()
    return run


def log_metrics(port, run, calls):
    conn = connect(port)
    t = time.perf_counter()
    for step in range(calls):
        call(conn, "POST", "/api/2.0/mlflow/runs/log-metric", {"run_id": run, "key": "loss", "value": 1 / (step + 1),
                                                               "step": step})
    dt = time.perf_counter() - t
    conn.close()
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml_rest_bench_")
    reg = os.path.join(tmp, "reg")
    subprocess.run([args.hepml, "registry", "--registry", reg, "init"], check=True, capture_output=True)
    server = subprocess.Popen([args.hepml, "registry", "--registry", reg, "serve", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(re.search(r":(\d+) ", server.stdout.readline()).group(1))
        rows = []
        run = new_run(port)
        dt = log_metrics(port, run, args.calls)
        rows.append(("runs/log-metric, 1 connection", f"{args.calls / dt:,.0f} calls/s",
                     f"{dt / args.calls * 1e6:,.0f} µs"))
        runs = [new_run(port) for _ in range(8)]
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda r: log_metrics(port, r, args.calls // 4), runs))
        dt = time.perf_counter() - t
        total = 8 * (args.calls // 4)
        rows.append(("runs/log-metric, 8 connections", f"{total / dt:,.0f} calls/s", ""))
        conn = connect(port)
        batch_run = new_run(port)
        metrics = [{"key": "acc", "value": i / 1000, "step": i} for i in range(1000)]
        t = time.perf_counter()
        call(conn, "POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": batch_run, "metrics": metrics})
        dt = time.perf_counter() - t
        rows.append(("runs/log-batch of 1,000 points", f"{1000 / dt:,.0f} points/s", f"{dt * 1e3:,.1f} ms"))
        t = time.perf_counter()
        for _ in range(100):
            call(conn, "GET", f"/api/2.0/mlflow/runs/get?run_id={batch_run}")
        dt = (time.perf_counter() - t) / 100
        rows.append(("runs/get of a run with 1,000 points", f"{1 / dt:,.0f} calls/s", f"{dt * 1e3:,.2f} ms"))
        conn.close()
        print("| operation | rate | per call |")
        print("|---|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} |")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
