#!/usr/bin/env python3
"""Dynamic batching against none, and the server's overhead at concurrency 1,
measured with `hepml perf` against a `hepml serve` this script starts. Not a
test.

  /usr/bin/python3 bench/serve_batching.py --hepml build/src/cli/hepml \
      --models build/models [--concurrency 64] [--interval 5000] [--rounds 3]

For each model (deepjet, particlenet by default) two copies are served: one
with `dynamic_batching { max_queue_delay_microseconds: D }`, one without;
both max_batch_size 64 and two instances. Each round measures the two at the
same concurrency, alternating, and the ratio of their throughputs; the median
ratio over rounds is printed. With --overhead, the trigger MLP (no dynamic
batching) at concurrency 1 over gRPC, against `hepml bench` of the same model
at batch 1 in the same round: client p50 minus Session p50."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_}


def inputs_of(hepml, model, batch, workdir):
    """One .npy per input of `model`, free dims set to `batch` (first) or 16."""
    info = subprocess.run([hepml, "info", model], capture_output=True, text=True, check=True).stdout
    args = []
    section = None
    for line in info.splitlines():
        if re.match(r"^\w", line):
            section = line.split(":")[0]
            continue
        m = re.match(r"^\s+(\S+): (\w+)\[(.*)\]$", line)
        if section != "inputs" or not m:
            continue
        name, dtype, dims = m.group(1), m.group(2), m.group(3).split(",")
        shape = [batch if i == 0 else (int(d) if d.strip().lstrip("-").isdigit() else 16)
                 for i, d in enumerate(dims)]
        rng = np.random.default_rng(0)
        arr = rng.standard_normal(shape).astype(DTYPES[dtype]) if dtype == "float32" else \
            np.ones(shape, DTYPES[dtype])
        path = os.path.join(workdir, f"{os.path.basename(model)}-{name}.npy")
        np.save(path, arr)
        args += ["--input", f"{name}={path}"]
    return args


def start_server(hepml, repo):
    out = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([hepml, "serve", "--model-repository", repo, "--http-port", "-1", "--metrics-port", "-1",
                             "--grpc-port", "0"], stdout=subprocess.PIPE, stderr=out, text=True)
    line = proc.stdout.readline()
    m = re.search(r":(\d+)$", line.strip())
    if not m:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, int(m.group(1))


def perf(hepml, port, model, concurrency, interval, extra):
    out = subprocess.run([hepml, "perf", "-m", model, "-u", f"127.0.0.1:{port}", "-i", "grpc",
                          "--concurrency-range", f"{concurrency}:{concurrency}", "--measurement-interval",
                          str(interval), "--json", *extra], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"hepml perf {model}: {out.stderr}")
    return json.loads(out.stdout)["levels"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True, help="folder with MODEL.onnx (bench/models/generate.py)")
    ap.add_argument("--names", default="deepjet,particlenet")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--interval", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delay-us", type=int, default=500)
    ap.add_argument("--overhead", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hepml-serve-batching-")
    repo = os.path.join(work, "repo")
    names = [n for n in a.names.split(",") if n]
    for n in names + (["trigger_mlp"] if a.overhead else []):
        src = os.path.join(a.models, f"{n}.onnx")
        modes = ("batched", "unbatched") if n != "trigger_mlp" else ("unbatched",)
        for mode in modes:
            d = os.path.join(repo, f"{n}_{mode}")
            os.makedirs(os.path.join(d, "1"))
            shutil.copy(src, os.path.join(d, "1", "model.onnx"))
            with open(os.path.join(d, "config.pbtxt"), "w") as f:
                f.write("max_batch_size: 64\ninstance_group { count: 2 }\n")
                if mode == "batched":
                    f.write(f"dynamic_batching {{ max_queue_delay_microseconds: {a.delay_us} }}\n")
    proc, port = start_server(a.hepml, repo)
    try:
        for n in names:
            extra = inputs_of(a.hepml, os.path.join(a.models, f"{n}.onnx"), 1, work)
            ratios = []
            for r in range(a.rounds):
                b = perf(a.hepml, port, f"{n}_batched", a.concurrency, a.interval, extra)
                u = perf(a.hepml, port, f"{n}_unbatched", a.concurrency, a.interval, extra)
                ratio = b["throughput_infer_per_s"] / u["throughput_infer_per_s"]
                ratios.append(ratio)
                print(f"{n} round {r}: batched {b['throughput_infer_per_s']:.0f}/s (avg batch "
                      f"{b['server']['avg_batch']:.1f}, p50 {b['latency_us']['p50']:.0f} us, errors {b['errors']}), "
                      f"unbatched {u['throughput_infer_per_s']:.0f}/s (p50 {u['latency_us']['p50']:.0f} us, "
                      f"errors {u['errors']}): {ratio:.2f}x", flush=True)
            print(f"{n}: median ratio {statistics.median(ratios):.2f}x over {a.rounds} rounds", flush=True)
        if a.overhead:
            model = os.path.join(a.models, "trigger_mlp.onnx")
            extra = inputs_of(a.hepml, model, 1, work)
            diffs = []
            for r in range(a.rounds):
                c = perf(a.hepml, port, "trigger_mlp_unbatched", 1, a.interval, extra)
                bench = json.loads(subprocess.run([a.hepml, "bench", model, "--batch", "1", "--json"],
                                                  capture_output=True, text=True, check=True).stdout)
                p50 = bench.get("latency_us", bench).get("p50") if isinstance(bench.get("latency_us"), dict) \
                    else bench.get("p50_us")
                diff = c["latency_us"]["p50"] - p50
                diffs.append(diff)
                print(f"overhead round {r}: gRPC p50 {c['latency_us']['p50']:.1f} us, server-side "
                      f"{c['server']['avg_request_us']:.1f} us (queue {c['server']['avg_queue_us']:.1f}), "
                      f"Session p50 {p50:.1f} us: {diff:.1f} us", flush=True)
            print(f"overhead: median {statistics.median(diffs):.1f} us over {a.rounds} rounds", flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
