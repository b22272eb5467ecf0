#!/usr/bin/python3
"""Latency and memory of `hepml compile` packages against `hepml bench` on the same models.

    bench/compile_bench.py --hepml build/src/cli/hepml --models DIR [--only trigger_mlp,calo_gan] [--ort]
                           [--batches 1,64] [--rounds 7] [--iterations 2000] [--work DIR]
                           [--prune 0.8] [--max-batch N]

With --prune S a third package is compiled with `hepml compile --prune S` (magnitude pruning to
S unstructured sparsity, sparse kernels where they pay) and built native; a table gives its
speed-up over the dense native build. A --work folder keeps the built packages, and a later run
with the same folder reuses them.

DIR is what bench/models/generate.py wrote; symbolic dims other than the batch (particlenet's
`particles`) are fixed to the model's first data set with --dim, for the compile and `hepml bench`. Each model is compiled (--max-batch = the
largest batch) and built twice with its CMakeLists.txt defaults (Release): the portable
default (the x86-64 baseline plus x86-64-v3/-v4 variants, run() on the best this CPU has: the
`isa` printed) and with NAME_NATIVE=ON (-march=native). Each round runs, one after the other,
`hepml bench --threads 1 --json`, `NAME_run --bench --json` (portable) and the native one;
the table gives the median over rounds of each p50 and of peak RSS. With --ort (node and
onnxruntime-node installed in bench/peers) each round also runs ONNX Runtime
(bench/peers/ort_bench.mjs: default graph optimizations, one intra-op thread) on the model's
first data set repeated to the batch, and a second table gives the compiled packages' p50 and
added memory as ratios to ORT's. Memory is counted the same way on both sides, as the peak
resident memory the model adds to a process that has its runtime loaded: for ORT, node's VmHWM
with the model less node's with onnxruntime-node loaded and no model (as
bench/run_benchmarks.py counts it); for a compiled package, NAME_run's VmHWM less its VmRSS when
main() starts (libc, libstdc++ and libm loaded and initialised, nothing of the model yet:
`added_rss_mib` of `NAME_run --bench --json`). The whole-process peaks are printed too. ORT's
p50 includes the per-call cost of the Node binding: each round also runs ort_bench.mjs on a
one-node model (Identity of one float) with the same iterations, and the ratio table gives the
packages' p50 against ORT's less that floor too, as bench/run_benchmarks.py does. Not a test:
nothing here asserts a
timing.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile

import numpy as np

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")


def fixed_dims(models_dir, m):
    """--dim NAME=VALUE for the model's symbolic dims other than the batch, from its first data set."""
    with open(os.path.join(models_dir, "models.json")) as f:
        spec = next(x for x in json.load(f)["models"] if x["name"] == m)
    data = spec["data_sets"][0]["inputs"]
    dims = {}
    for inp in spec["inputs"]:
        for axis, d in enumerate(inp["shape"]):
            if isinstance(d, str) and d != "batch" and inp["name"] in data:
                dims[d] = data[inp["name"]]["shape"][axis]
    return [a for k, v in sorted(dims.items()) for a in ("--dim", f"{k}={v}")]


def ort_inputs(models_dir, m, batch, work):
    """--input NAME=FILE for the model's first data set repeated (or cut) to `batch` rows."""
    with open(os.path.join(models_dir, "models.json")) as f:
        spec = next(x for x in json.load(f)["models"] if x["name"] == m)
    feeds = []
    for name, s in spec["data_sets"][0]["inputs"].items():
        x = np.load(os.path.join(models_dir, s["file"]))
        reps = -(-batch // x.shape[0])
        x = np.concatenate([x] * reps, axis=0)[:batch]
        path = os.path.join(work, f"ort_{m}_{batch}_{name}.npy")
        np.save(path, x)
        feeds += ["--input", f"{name}={path}"]
    return feeds


def identity_model(work):
    """A one-node model (Identity of a 1-element float tensor): ORT's per-call floor through Node."""
    import onnx
    from onnx import TensorProto, helper
    path = os.path.join(work, "floor_identity.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    feed = os.path.join(work, "floor_x.npy")
    np.save(feed, np.ones([1], np.float32))
    return path, feed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--only", default="trigger_mlp,calo_gan")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--work")
    ap.add_argument("--ort", action="store_true", help="also run ONNX Runtime and print ratios to it")
    ap.add_argument("--prune", type=float, default=0.0,
                    help="also compile with --prune SPARSITY (native build) and print its speed-up over dense native")
    ap.add_argument("--max-batch", type=int, default=0, help="--max-batch of the packages (default: the largest batch)")
    args = ap.parse_args()
    node = shutil.which("node")
    if args.ort and (not node or not os.path.isdir(os.path.join(PEERS, "node_modules", "onnxruntime-node"))):
        raise SystemExit("--ort needs node and `npm install --ignore-scripts` in bench/peers")
    ort_base_mib = 0.0
    if args.ort:
        base = json.loads(subprocess.check_output([node, os.path.join(PEERS, "ort_bench.mjs"), "--baseline"]))
        ort_base_mib = base["vmhwm_kib"] / 1024.0
    work = args.work or tempfile.mkdtemp(prefix="hepml_compile_bench_")
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    max_batch = args.max_batch or max(batches)
    for m in args.only.split(","):
        exes = {}
        dims = fixed_dims(args.models, m)
        variants = [("compiled portable", "OFF", []), ("compiled -march=native", "ON", [])]
        if args.prune > 0:
            variants.append((f"pruned {args.prune:g} -march=native", "ON", ["--prune", f"{args.prune:g}"]))
        for kind, native, extra in variants:
            tag = f"{m}-{native}" + ("-pruned" if extra else "")
            pkg = os.path.join(work, f"{tag}-pkg")
            build = os.path.join(work, f"{tag}-build")
            exe = os.path.join(build, f"{m}_run")
            if not os.path.exists(exe):  # a --work folder of an earlier run is reused
                subprocess.run([args.hepml, "compile", os.path.join(args.models, f"{m}.onnx"), "-o", pkg, "--name", m,
                                "--max-batch", str(max_batch)] + dims + extra, check=True, stdout=subprocess.DEVNULL)
                subprocess.run(["cmake", "-S", pkg, "-B", build, f"-D{m}_NATIVE={native}"], check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run(["cmake", "--build", build, "-j", "2"], check=True, stdout=subprocess.DEVNULL)
            exes[kind] = exe
        for b in batches:
            common = ["--batch", str(b), "--iterations", str(args.iterations), "--warmup", str(args.iterations // 10),
                      "--json"]
            cmds = {"hepml": [args.hepml, "bench", os.path.join(args.models, f"{m}.onnx"), "--threads", "1"] + dims +
                    common}
            for kind, exe in exes.items():
                cmds[kind] = [exe, "--bench"] + common
            if args.ort:
                cmds["onnxruntime"] = [node, os.path.join(PEERS, "ort_bench.mjs"), "--model",
                                       os.path.join(args.models, f"{m}.onnx"), "--threads", "1", "--iterations",
                                       str(args.iterations), "--warmup", str(args.iterations // 10)] + \
                    ort_inputs(args.models, m, b, work)
                # The binding's per-call cost, measured right after ORT in each round the same way.
                floor_model, floor_feed = identity_model(work)
                cmds["onnxruntime floor"] = [node, os.path.join(PEERS, "ort_bench.mjs"), "--model", floor_model,
                                             "--threads", "1", "--iterations", str(args.iterations), "--warmup",
                                             str(args.iterations // 10), "--input", f"x={floor_feed}"]
            p50 = {k: [] for k in cmds}
            rss = {k: [] for k in cmds}
            added = {k: [] for k in cmds}
            for _ in range(args.rounds):
                for k, cmd in cmds.items():
                    j = json.loads(subprocess.check_output(cmd))
                    if k.startswith("onnxruntime"):
                        p50[k].append(statistics.median(j["latencies_us"]))
                        rss[k].append(j["vmhwm_kib"] / 1024.0)
                        added[k].append(j["vmhwm_kib"] / 1024.0 - ort_base_mib)
                    else:
                        p50[k].append(j["latency_us"]["p50"])
                        rss[k].append(j["peak_rss_mib"])
                        # hepml bench: the whole process (no start figure).
                        added[k].append(j.get("added_rss_mib", j["peak_rss_mib"]))
            rows.append((m, b, {k: (statistics.median(p50[k]), statistics.median(rss[k]), statistics.median(added[k]))
                                for k in cmds}))
    kinds = list(rows[0][2])
    print("| model | batch | " + " | ".join(f"{k} p50 (us)" for k in kinds) + " | " +
          " | ".join(f"{k} peak RSS (MiB)" for k in kinds) + " | " +
          " | ".join(f"{k} added RSS (MiB)" for k in kinds if k != "hepml") + " |")
    print("|---|---:|" + "---:|" * (3 * len(kinds) - 1))
    for m, b, r in rows:
        print(f"| {m} | {b} | " + " | ".join(f"{r[k][0]:.2f}" for k in kinds) + " | " +
              " | ".join(f"{r[k][1]:.1f}" for k in kinds) + " | " +
              " | ".join(f"{r[k][2]:.2f}" for k in kinds if k != "hepml") + " |")
    pruned = [k for k in kinds if k.startswith("pruned")]
    if pruned:
        print()
        print(f"| model | batch | dense -march=native p50 (us) | {pruned[0]} p50 (us) | speed-up |")
        print("|---|---:|---:|---:|---:|")
        for m, b, r in rows:
            d, q = r["compiled -march=native"][0], r[pruned[0]][0]
            print(f"| {m} | {b} | {d:.2f} | {q:.2f} | {d / q:.2f}x |")
    if args.ort:
        comp = [k for k in kinds if k.startswith("compiled") or k.startswith("pruned")]
        print()
        print("ORT - floor: ORT's p50 less the median p50 of a one-node model run the same way in each round "
              "(the Node binding's per-call cost).")
        print()
        print("| model | batch | ORT floor (us) | " + " | ".join(f"{k} p50 / ORT" for k in comp) + " | " +
              " | ".join(f"{k} p50 / (ORT - floor)" for k in comp) + " | " +
              " | ".join(f"{k} added RSS / ORT" for k in comp) + " |")
        print("|---|---:|---:|" + "---:|" * (3 * len(comp)))
        for m, b, r in rows:
            o, fl = r["onnxruntime"], r["onnxruntime floor"][0]
            net = o[0] - fl
            print(f"| {m} | {b} | {fl:.2f} | " + " | ".join(f"{r[k][0] / o[0]:.2f}" for k in comp) + " | " +
                  " | ".join(f"{r[k][0] / net:.2f}" if net > 0 else "n/a" for k in comp) + " | " +
                  " | ".join(f"{r[k][2] / o[2]:.2f}" if o[2] > 0 else "n/a" for k in comp) + " |")


if __name__ == "__main__":
    main()
