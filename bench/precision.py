#!/usr/bin/python3
"""Accuracy and latency of hepml's reduced precisions on the HEP model set.

    /usr/bin/python3 bench/models/generate.py --out DIR
    /usr/bin/python3 bench/precision.py --hepml build/src/cli/hepml --models DIR \\
        [--batches 1,256] [--iterations 50] [--threads 1] [--only NAME,...]

Accuracy: every data set of every model is run with `hepml run --precision P` for fp32,
bf16 and fp16; for each output it reports max |P - fp32| (the largest over outputs and data
sets), the same divided by max |fp32|, and max |P - PyTorch|.
Latency: `hepml bench --precision P --batch B --json` (random inputs; other symbolic dims
from the model's first data set) for fp32 and bf16 at each batch size: p50 latency, and
what the Session keeps of the weights. The bf16 graph's node and Cast counts come from a
profiled bench run. Prints markdown tables.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "differential"))
from npcompare import sanitize  # noqa: E402

PRECISIONS = ("fp32", "bf16", "fp16")


def run_outputs(hepml, root, model, data_set, precision, tmp):
    feeds = [(n, os.path.join(root, spec["file"])) for n, spec in data_set["inputs"].items()]
    out_dir = os.path.join(tmp, model["name"], data_set["dir"].replace("/", "_"), precision)
    argv = [hepml, "run", os.path.join(root, model["file"]), "--output-dir", out_dir, "--precision", precision]
    for name, path in feeds:
        argv += ["--input", f"{name}={path}"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"{model['name']} at {precision}: {p.stderr.strip()}")
    return {name: np.load(os.path.join(out_dir, sanitize(name) + ".npy")) for name in data_set["outputs"]}


def accuracy(hepml, root, model, tmp):
    worst = {p: {"abs": 0.0, "rel": 0.0, "torch": 0.0} for p in PRECISIONS}
    for ds in model["data_sets"]:
        outs = {p: run_outputs(hepml, root, model, ds, p, tmp) for p in PRECISIONS}
        for name, spec in ds["outputs"].items():
            torch_out = np.load(os.path.join(root, spec["file"])).astype(np.float64)
            ref = outs["fp32"][name].astype(np.float64)
            scale = max(float(np.abs(ref).max()), 1e-30)
            for p in PRECISIONS:
                got = outs[p][name].astype(np.float64)
                err = float(np.abs(got - ref).max()) if ref.size else 0.0
                worst[p]["abs"] = max(worst[p]["abs"], err)
                worst[p]["rel"] = max(worst[p]["rel"], err / scale)
                worst[p]["torch"] = max(worst[p]["torch"], float(np.abs(got - torch_out).max()) if ref.size else 0.0)
    return worst


def bench(hepml, root, model, precision, batch, iterations, threads, profile=False):
    argv = [hepml, "bench", os.path.join(root, model["file"]), "--batch", str(batch), "--iterations", str(iterations),
            "--threads", str(threads), "--precision", precision, "--json"]
    # Symbolic dims other than the batch: the first data set's sizes.
    ds = model["data_sets"][0]
    dims = {}
    for inp in model["inputs"]:
        for d, size in zip(inp["shape"], ds["inputs"][inp["name"]]["shape"]):
            if isinstance(d, str) and d != "batch":
                dims[d] = size
    for k, v in sorted(dims.items()):
        argv += ["--dim", f"{k}={v}"]
    if profile:
        argv.append("--profile")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True, help="folder written by bench/models/generate.py")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args()
    models = json.load(open(os.path.join(a.models, "models.json")))["models"]
    if a.only:
        models = [m for m in models if m["name"] in a.only.split(",")]
    batches = [int(b) for b in a.batches.split(",")]
    tmp = tempfile.mkdtemp(prefix="hepml_precision_")
    try:
        print("| model | bf16 max abs err | bf16 rel | fp16 max abs err | fp16 rel | fp32 vs PyTorch |"
              " bf16 nodes (Casts) |")
        print("|---|---|---|---|---|---|---|")
        for m in models:
            w = accuracy(a.hepml, a.models, m, tmp)
            prof = bench(a.hepml, a.models, m, "bf16", 1, 1, 1, profile=True)["profile"]["nodes"]
            casts = sum(1 for n in prof if n["op"] == "Cast")
            print(f"| {m['name']} | {w['bf16']['abs']:.2e} | {w['bf16']['rel']:.1e} | {w['fp16']['abs']:.2e} |"
                  f" {w['fp16']['rel']:.1e} | {w['fp32']['torch']:.1e} | {len(prof)} ({casts}) |", flush=True)
        if a.skip_latency:
            return 0
        print()
        print(f"| model | batch | fp32 p50 us | bf16 p50 us | bf16/fp32 | weights fp32 MiB | weights bf16 MiB |")
        print("|---|---|---|---|---|---|---|")
        for m in models:
            for b in batches:
                r = {p: bench(a.hepml, a.models, m, p, b, a.iterations, a.threads) for p in ("fp32", "bf16")}
                f, h = r["fp32"]["latency_us"]["p50"], r["bf16"]["latency_us"]["p50"]
                print(f"| {m['name']} | {b} | {f:.1f} | {h:.1f} | {h / f:.2f} | {r['fp32']['weight_mib']:.3f} |"
                      f" {r['bf16']['weight_mib']:.3f} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
