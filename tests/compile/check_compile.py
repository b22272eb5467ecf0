#!/usr/bin/python3
"""End-to-end check of `hepml compile` on the HEP model set.

    check_compile.py --hepml PATH --models DIR --only NAME[,NAME...] [--work DIR]
                     [--cxx g++] [--embed-weights] [--native] [--max-batch 16] [--atol 1e-5]
                     [--precision fp16|bf16|int8|fixed<W,I,...> --rel-bound R] [--prune SPEC]

DIR is what bench/models/generate.py wrote. For each model this

  1. runs `hepml compile DIR/NAME.onnx -o WORK/NAME/pkg --max-batch B`, with --dim for
     every symbolic input axis other than "batch": once per distinct set of sizes among
     the model's data sets (steps 2-3 for each),
  2. builds the package with cmake and the chosen compiler, flags
     `-Wall -Wextra -Werror -O2` (any warning fails; --native adds -march=native; by default
     the package's run-time variants x86-64-v3/-v4 are built too, --no-dispatch leaves them out),
  3. runs `NAME_run --input ... --output-dir` on each data set and `hepml run` on the
     same inputs, and compares every output file: same dtype and shape,
     |compiled - hepml| <= atol elementwise (with --prune and --max-batch above 16, also
     the first data set's rows repeated to --max-batch: the sparse batch kernel),
  4. (first package) builds tests/compile/instance_check.cc against the library: run() allocates nothing,
     four threads with an instance each agree with a single-threaded run, batch 1 after
     the maximum batch equals a fresh instance's, batches outside 1..max are refused,
  5. (first package) runs `NAME_run --bench --json` once and checks the JSON object's fields,
     "isa" among them: the variant this CPU's flags (/proc/cpuinfo) call for.

With --precision fp16|bf16 the package stores its Gemm/MatMul/Conv weights in 16 bits; step 3
then bounds the error against `hepml run` (float weights) relative to the output's scale,
max|compiled - hepml| <= R * max(max|hepml|, 1) (default R: 2e-3 for fp16, 2e-2 for bf16, the
rounding of 11 and 8 significant bits over a few layers), and the model is also compiled at fp32
to check that NAME.weights shrank to at most 55% of the fp32 file (biases stay float). The
contract checks (steps 4-5) run as usual.

With --precision int8 the model is compiled with --calibration on the first data set's inputs
(the same data the outputs are then compared on); with --precision fixed<W,I,...> (ap_fixed
emulation) no calibration is needed. Both bound the error against `hepml run` as above (default R:
0.05 for int8, 0.02 for fixed; see docs/benchmarks.md for the measured errors); int8 also checks
that NAME.weights shrank to at most 55% of the fp32 file (LSTM and other weights stay float).

With --prune SPEC (0.8, 2:4) the model is compiled with `--prune SPEC --write-pruned P.onnx`;
the weights of every Gemm/MatMul/Conv in P.onnx are read back and checked for the sparsity
(unstructured: at least that fraction zero; N:M: at most N non-zeros in each group of M along the
reduction axis), and step 3 compares with `hepml run P.onnx` (same pruned weights; --atol).

Prints one line per model and ends with `N passed, M failed`; exit status 1 on any
failure.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
from npcompare import compare, sanitize  # noqa: E402

FLAGS = "-Wall -Wextra -Werror -O2"
BENCH_KEYS = ["model", "batch", "threads", "iterations", "isa", "load_ms", "latency_us", "throughput_per_s",
              "peak_rss_mib", "start_rss_mib", "added_rss_mib"]


def expected_isa(args):
    """The variant NAME::isa() must name on this machine for the build chosen by args."""
    if args.native:
        return "native"
    if args.no_dispatch or platform.machine() not in ("x86_64", "AMD64", "amd64"):
        return "baseline"
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        # bfloat16 Gemm weights add a variant with AVX512-BF16 dot products.
        return "x86-64-v4+avx512bf16" if args.precision == "bf16" and "avx512_bf16" in flags else "x86-64-v4"
    if {"avx2", "fma", "bmi1", "bmi2"} <= flags:
        return "x86-64-v3"
    return "baseline"


def run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout


def data_set_dims(m, ds):
    """The sizes of the model's symbolic input axes other than "batch" in data set ds."""
    dims = {}
    for spec in m["inputs"]:
        shape = ds["inputs"][spec["name"]]["shape"]
        for axis, d in enumerate(spec["shape"]):
            if isinstance(d, str) and d != "batch":
                dims[d] = shape[axis]
    return dims


def check_model(args, m, work):
    """One package per distinct set of --dim values among the data sets."""
    groups = []
    for ds in m["data_sets"]:
        dims = data_set_dims(m, ds)
        for g in groups:
            if g[0] == dims:
                g[1].append(ds)
                break
        else:
            groups.append((dims, [ds]))
    problems = []
    for i, (dims, sets) in enumerate(groups):
        sub = os.path.join(work, f"dims{i}")
        os.makedirs(sub, exist_ok=True)
        problems += check_package(args, m, sub, dims, sets, contracts=i == 0)
    return problems, [", ".join(f"{k}={v}" for k, v in sorted(g[0].items())) for g in groups if g[0]]


def check_sparsity(path, spec):
    """The weights of every Gemm/MatMul/Conv of the pruned model, read back."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path).graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    problems, seen = [], 0
    for node in g.node:
        if node.op_type not in ("Gemm", "MatMul", "Conv") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        w = inits[node.input[1]]
        if w.dtype != np.float32 or w.ndim < 2:
            continue
        seen += 1
        if ":" in spec:
            n, mm = (int(x) for x in spec.split(":"))
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            if node.op_type == "Conv":
                red = w.reshape(w.shape[0], -1)                 # [C_out, reduction]
            elif node.op_type == "Gemm" and trans_b:
                red = w                                         # [N, K]
            else:
                red = np.moveaxis(w, -2, -1).reshape(-1, w.shape[-2])  # [..., N, K]
            k = red.shape[-1] // mm * mm
            groups = (red[:, :k].reshape(red.shape[0], -1, mm) != 0).sum(axis=-1)
            if groups.size and groups.max() > n:
                problems.append(f"{node.name or node.op_type}: a group of {mm} keeps {groups.max()} > {n} weights")
        else:
            zero = float(np.mean(w == 0))
            want = float(spec)
            if zero + 1.0 / w.size < want:
                problems.append(f"{node.name or node.op_type}: {zero:.3f} of {node.input[1]} zero, expected {want}")
    if seen == 0:
        problems.append("no Gemm/MatMul/Conv weights in the pruned model")
    return problems


def check_package(args, m, work, dims, data_sets, contracts):
    problems = []
    name = m["name"]
    root = args.models
    pkg = os.path.join(work, "pkg")
    cmd = [args.hepml, "compile", os.path.join(root, m["file"]), "-o", pkg, "--name", name,
           "--namespace", "hepml_test::compiled", "--max-batch", str(args.max_batch)]
    for k, v in sorted(dims.items()):
        cmd += ["--dim", f"{k}={v}"]
    if args.embed_weights:
        cmd.append("--embed-weights")
    if args.precision != "fp32":
        rc, out = run(cmd)
        if rc != 0:
            return [f"hepml compile (fp32) failed ({rc}): {out.strip()}"]
        fp32_bytes = os.path.getsize(os.path.join(pkg, f"{name}.weights")) if not args.embed_weights else None
        cmd += ["--precision", args.precision]
        if args.precision == "int8":
            for n, spec in data_sets[0]["inputs"].items():
                cmd += ["--calibration", f"{n}={os.path.join(root, spec['file'])}"]
    model_file = os.path.join(root, m["file"])
    if args.prune:
        model_file = os.path.join(work, "pruned.onnx")
        cmd += ["--prune", args.prune, "--write-pruned", model_file]
    rc, out = run(cmd)
    if rc != 0:
        return [f"hepml compile failed ({rc}): {out.strip()}"]
    if args.prune:
        problems += check_sparsity(model_file, args.prune)
        # Compiling the pruned model again reports its weights as already sparse.
        rc, again = run([args.hepml, "compile", model_file, "-o", os.path.join(work, "again"), "--name", name]
                        + [x for k, v in sorted(dims.items()) for x in ("--dim", f"{k}={v}")])
        if rc != 0 or "(already at least half zero)" not in again:
            problems.append(f"recompiling the pruned model does not report sparse weights ({rc}): {again.strip()}")
    shrink = {"fp16": 0.55, "bf16": 0.55, "int8": 0.55}.get(args.precision)
    if shrink and fp32_bytes is not None:
        got_bytes = os.path.getsize(os.path.join(pkg, f"{name}.weights"))
        if got_bytes > shrink * fp32_bytes:
            problems.append(f"{name}.weights is {got_bytes} bytes at {args.precision}, {fp32_bytes} at fp32 "
                            f"(expected at most {shrink:.0%})")
    build = os.path.join(work, "build")
    rc, out = run(["cmake", "-S", pkg, "-B", build, "-DCMAKE_BUILD_TYPE=None", f"-DCMAKE_CXX_COMPILER={args.cxx}",
                   f"-DCMAKE_CXX_FLAGS={FLAGS}", f"-D{name}_NATIVE={'ON' if args.native else 'OFF'}",
                   f"-D{name}_DISPATCH={'OFF' if args.no_dispatch else 'ON'}"])
    if rc != 0:
        return [f"cmake configure failed: {out[-2000:]}"]
    rc, out = run(["cmake", "--build", build, "-j", str(args.jobs)])
    if rc != 0:
        return [f"build failed: {out[-4000:]}"]
    exe = os.path.join(build, f"{name}_run")
    if args.prune and args.max_batch > 16:
        # The data sets' batches are below the sparse batch kernel's crossover:
        # the first one's rows repeated to --max-batch take it (and its linked
        # layers) end to end.
        big = {"dir": f"{data_sets[0]['dir']}_x{args.max_batch}", "outputs": data_sets[0]["outputs"], "inputs": {}}
        os.makedirs(os.path.join(work, "big"), exist_ok=True)
        for n, spec in data_sets[0]["inputs"].items():
            x = np.load(os.path.join(root, spec["file"]))
            f = os.path.join(work, "big", sanitize(n) + ".npy")
            np.save(f, np.resize(x, (args.max_batch,) + x.shape[1:]))
            big["inputs"][n] = {"file": f}
        data_sets = list(data_sets) + [big]
    for ds in data_sets:
        feeds = []
        for n, spec in ds["inputs"].items():
            feeds += ["--input", f"{n}={os.path.join(root, spec['file'])}"]
        tag = ds["dir"].replace("/", "_")
        got_dir, ref_dir = os.path.join(work, "got", tag), os.path.join(work, "ref", tag)
        rc, out = run([exe] + feeds + ["--output-dir", got_dir])
        if rc != 0:
            problems.append(f"{ds['dir']}: {name}_run failed ({rc}): {out.strip()}")
            continue
        rc, out = run([args.hepml, "run", model_file] + feeds + ["--output-dir", ref_dir])
        if rc != 0:
            problems.append(f"{ds['dir']}: hepml run failed ({rc}): {out.strip()}")
            continue
        for out_name in ds["outputs"]:
            f = sanitize(out_name) + ".npy"
            if not os.path.exists(os.path.join(got_dir, f)):
                problems.append(f"{ds['dir']}: output '{out_name}': {name}_run wrote no {f}")
                continue
            got, ref = np.load(os.path.join(got_dir, f)), np.load(os.path.join(ref_dir, f))
            if args.precision == "fp32":
                problems += [f"{ds['dir']}: output '{out_name}': {p}"
                             for p in compare(got, ref, rtol=0.0, atol=args.atol)]
                continue
            if got.shape != ref.shape or got.dtype != ref.dtype:
                problems.append(f"{ds['dir']}: output '{out_name}': {got.dtype}{got.shape} vs {ref.dtype}{ref.shape}")
                continue
            if got.dtype.kind != "f":
                if not np.array_equal(got, ref):
                    problems.append(f"{ds['dir']}: output '{out_name}': differs")
                continue
            scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1.0)
            err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
            if args.verbose:
                print(f"    {ds['dir']}: output '{out_name}': max abs error {err:.3g}, mean abs error "
                      f"{float(np.mean(np.abs(got.astype(np.float64) - ref))):.3g}, scale {scale:.3g}")
            if not np.all(np.isfinite(got)) or err > args.rel_bound * scale:
                problems.append(f"{ds['dir']}: output '{out_name}': max error {err:.3g} > {args.rel_bound:g} x {scale:.3g}")
    if not contracts:
        return problems
    # The contracts of NAME.h: no allocation in run(), one instance per thread.
    check_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance_check.cc")
    check_exe = os.path.join(work, "instance_check")
    rc, out = run([args.cxx, "-std=c++17", *FLAGS.split(), f"-I{pkg}", f'-DMODEL_HEADER="{name}.h"',
                   f"-DMODEL_CLASS=hepml_test::compiled::{name}", check_src, os.path.join(build, f"lib{name}.a"),
                   "-pthread", "-o", check_exe])
    if rc != 0:
        problems.append(f"instance_check does not build: {out[-3000:]}")
    else:
        rc, out = run([check_exe], cwd=pkg)
        if rc != 0 or out.strip() != "ok":
            problems.append(f"instance_check: {out.strip()}")
    rc, out = run([exe, "--bench", "--batch", "2", "--iterations", "5", "--warmup", "1", "--json"])
    if rc != 0:
        problems.append(f"{name}_run --bench failed ({rc}): {out.strip()}")
    else:
        try:
            j = json.loads(out)
            missing = [k for k in BENCH_KEYS if k not in j]
            if missing or j["batch"] != 2 or j["iterations"] != 5 or not all(
                    k in j["latency_us"] for k in ("p50", "p90", "p99", "mean")):
                problems.append(f"{name}_run --bench --json: unexpected object {j}")
            elif j["isa"] != expected_isa(args):
                problems.append(f"{name}_run --bench --json: isa {j['isa']!r}, expected {expected_isa(args)!r} "
                                f"on this CPU")
            elif not 0 < j["start_rss_mib"] < j["peak_rss_mib"] or \
                    abs(j["added_rss_mib"] - (j["peak_rss_mib"] - j["start_rss_mib"])) > 1e-9:
                problems.append(f"{name}_run --bench --json: memory figures do not add up: {j}")
        except ValueError:
            problems.append(f"{name}_run --bench --json printed no JSON: {out[:300]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True, help="folder written by bench/models/generate.py")
    ap.add_argument("--only", required=True, help="comma-separated model names")
    ap.add_argument("--work", help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--cxx", default="g++")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--embed-weights", action="store_true")
    ap.add_argument("--native", action="store_true", help="build with the package's NAME_NATIVE=ON (-march=native)")
    ap.add_argument("--no-dispatch", action="store_true",
                    help="build with NAME_DISPATCH=OFF: the baseline build alone, no x86-64-v3/v4 variants")
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--precision", default="fp32", help="fp32, fp16, bf16, int8 or fixed<W,I[,Q[,O]]>")
    ap.add_argument("--verbose", action="store_true", help="print every output's error")
    ap.add_argument("--prune", help="compile with --prune SPEC and check against the pruned model")
    ap.add_argument("--rel-bound", type=float, help="error bound relative to the output scale (16-bit weights)")
    args = ap.parse_args()
    if args.rel_bound is None:
        args.rel_bound = {"fp16": 2e-3, "bf16": 2e-2, "int8": 5e-2}.get(
            args.precision, 2e-2 if args.precision.startswith("fixed") else 0.0)
    if shutil.which(args.cxx) is None:
        print(f"check_compile: compiler {args.cxx} not found")
        return 1
    with open(os.path.join(args.models, "models.json")) as f:
        models = {m["name"]: m for m in json.load(f)["models"]}
    wanted = args.only.split(",")
    unknown = [w for w in wanted if w not in models]
    if unknown:
        sys.exit(f"check_compile: not in models.json: {unknown}")
    import tempfile
    work = args.work or tempfile.mkdtemp(prefix="hepml_compile_")
    passed = failed = 0
    tag = "".join(c if c.isalnum() else "_" for c in args.precision)
    try:
        for w in wanted:
            mwork = os.path.join(work, f"{w}-{os.path.basename(args.cxx)}{'-embed' if args.embed_weights else ''}"
                                       f"-{tag}{'-prune' if args.prune else ''}")
            shutil.rmtree(mwork, ignore_errors=True)
            os.makedirs(mwork)
            problems, compiled_dims = check_model(args, models[w], mwork)
            ok = not problems
            passed += ok
            failed += not ok
            note = f", compiled for {'; '.join(compiled_dims)}" if compiled_dims else ""
            print(f"{'PASS' if ok else 'FAIL'} {w} ({args.cxx}{', embedded weights' if args.embed_weights else ''}"
                  f"{', -march=native' if args.native else ''}"
                  + (f", atol {args.atol:g}" if args.precision == "fp32" else
                     f", {args.precision} weights, bound {args.rel_bound:g} x scale")
                  + (f", pruned {args.prune}" if args.prune else "") + f"{note})")
            for p in problems:
                print(f"    {p}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
