#!/usr/bin/python3
"""PyTorch (eager, CPU) benchmark runner for bench/run_benchmarks.py.

    /usr/bin/python3 bench/peers/torch_bench.py --models DIR --model NAME
        --input NAME=FILE.npy ... --threads T --iterations N --warmup W [--max-seconds S]
    /usr/bin/python3 bench/peers/torch_bench.py --models DIR --model NAME --input ... --threads T --serve
    /usr/bin/python3 bench/peers/torch_bench.py --baseline

Re-creates the module NAME exactly as bench/models/generate.py built it before export
(same class, seed from DIR/models.json, randomized BatchNorm statistics, sharpened last
layer, eval mode), checks it against the reference data generate.py wrote (PyTorch's own
outputs for the default batch-3 set, within 1e-5), then times `module(*inputs)` under
torch.no_grad() with torch.set_num_threads(T).

Threads: Debian's PyTorch 1.13 does its matrix products in OpenBLAS (BLAS_INFO=generic),
whose own pthread pool torch.set_num_threads does not bound; OPENBLAS_NUM_THREADS is set
to T before torch is imported, so T is the thread count of the whole process. With T > 1,
libgomp's default spin-waiting workers and OpenBLAS's workers starve each other (on a
loaded 2-core machine a batch-1 ParT call went from 1 ms to 460 ms), so OMP_WAIT_POLICY
is PASSIVE: the setting that serves PyTorch best here.

One-shot mode prints one JSON object on stdout:
  {"engine": "pytorch", "version", "threads", "load_ms", "iterations": calls timed,
   "latencies_us": [per-call wall times], "total_s", "vmhwm_kib"}
--serve prints {"ready": true, ...} once the module is built and then answers one JSON
line per stdin line: `run N W S` (a round, the fields above), `quit` (exits).
With S (--max-seconds) the warm-up stops once it took S seconds (after at least one call)
and the timed loop once it took S seconds (after at least 3 calls).
--baseline imports what a real run imports (torch, numpy, generate.py), builds nothing
and prints only {"engine", "version", "vmhwm_kib"}. Exit status 1 on error.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--models", help="folder written by generate.py (models.json, reference data)")
    ap.add_argument("--model", help="model name in generate.MODELS")
    ap.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=float("inf"))
    a = ap.parse_args(argv)
    if not a.baseline:
        if not a.models or not a.model:
            ap.error("--models and --model are required (or --baseline)")
        if a.threads < 1 or a.iterations < 1 or a.warmup < 0 or not a.max_seconds > 0:
            ap.error("--threads and --iterations must be >= 1, --warmup >= 0, --max-seconds > 0")
    files = {}
    for spec in a.input:
        name, eq, path = spec.partition("=")
        if not eq or not name:
            ap.error(f"--input '{spec}': expected NAME=FILE.npy")
        files[name] = path
    a.files = files
    return a


ARGS = parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
sys.path.insert(0, os.path.join(HERE, "..", "models"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import generate  # noqa: E402  (sets torch threads to 1 on import; reset in main)


def vmhwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def build_module(name, seed):
    """The module generate.build() exported, with identical weights."""
    spec = generate.MODELS[name]
    torch.manual_seed(seed)
    model = spec["make"]()
    generate.randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    generate.sharpen_last_linear(model, spec.get("last_layer_scale", 1.0))
    return model.eval()


def load_inputs(spec, files):
    missing = [n for n in spec["inputs"] if n not in files]
    if missing:
        raise ValueError(f"no --input given for {missing}")
    extra = [n for n in files if n not in spec["inputs"]]
    if extra:
        raise ValueError(f"model has no input named {extra}")
    return [torch.from_numpy(np.load(files[n])) for n in spec["inputs"]]


def check_reference(model, spec, entry, models_dir):
    """Outputs on generate.py's default data set must equal the stored PyTorch outputs."""
    ref = entry["data_sets"][0]
    inputs = load_inputs(spec, {n: os.path.join(models_dir, v["file"]) for n, v in ref["inputs"].items()})
    with torch.no_grad():
        outs = model(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for n, t in zip(spec["outputs"], outs):
        want = np.load(os.path.join(models_dir, ref["outputs"][n]["file"]))
        got = t.numpy()
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-5, rtol=0):
            raise ValueError(f"re-created module differs from generate.py's reference output '{n}'")


def timed_round(model, inputs, iterations, warmup, max_seconds):
    latencies = []
    limit_ns = min(max_seconds, 1e6) * 1e9
    with torch.no_grad():
        warm_start = time.perf_counter_ns()
        for _ in range(warmup):
            model(*inputs)
            if time.perf_counter_ns() - warm_start > limit_ns:
                break
        start = time.perf_counter_ns()
        for _ in range(iterations):
            s = time.perf_counter_ns()
            model(*inputs)
            e = time.perf_counter_ns()
            latencies.append((e - s) / 1e3)
            if len(latencies) >= 3 and e - start > limit_ns:
                break
        total_s = (time.perf_counter_ns() - start) / 1e9
    return {"iterations": len(latencies), "latencies_us": latencies, "total_s": total_s, "vmhwm_kib": vmhwm_kib()}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(a):
    if a.baseline:
        emit({"engine": "pytorch", "version": torch.__version__, "vmhwm_kib": vmhwm_kib()})
        return 0
    if a.model not in generate.MODELS:
        raise ValueError(f"unknown model '{a.model}'")
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.models, "models.json")) as f:
        entry = next((m for m in json.load(f)["models"] if m["name"] == a.model), None)
    if entry is None:
        raise ValueError(f"{a.model} is not in {a.models}/models.json")
    spec = generate.MODELS[a.model]

    t0 = time.perf_counter()
    model = build_module(a.model, entry["seed"])
    load_ms = (time.perf_counter() - t0) * 1e3
    check_reference(model, spec, entry, a.models)
    inputs = load_inputs(spec, a.files)
    base = {"engine": "pytorch", "version": torch.__version__, "threads": a.threads, "load_ms": load_ms}

    if not a.serve:
        emit({**base, **timed_round(model, inputs, a.iterations, a.warmup, a.max_seconds)})
        return 0
    emit({"ready": True, **base})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        if words[0] != "run" or not 2 <= len(words) <= 4:
            raise ValueError(f"unknown command '{line.strip()}'")
        n = int(words[1])
        w = int(words[2]) if len(words) > 2 else 0
        s = float(words[3]) if len(words) > 3 else float("inf")
        if n < 1 or w < 0 or not s > 0:
            raise ValueError(f"bad command '{line.strip()}'")
        emit({**base, **timed_round(model, inputs, n, w, s)})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(ARGS))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"torch_bench: {e}", file=sys.stderr)
        sys.exit(1)
