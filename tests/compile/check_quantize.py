#!/usr/bin/python3
"""`hepml quantize` (QDQ models) and `hepml compile` of QDQ models, on HEP models.

    check_quantize.py --hepml PATH --models DIR [--node node] [--work DIR]

For trigger_mlp, calo_gan and calo_cnn (DIR from bench/models/generate.py):

  1. `hepml quantize MODEL -o Q.onnx --calibration ...` on the first data set's inputs;
     Q.onnx passes onnx.checker, has opset >= 13, int8 weights with per-channel scales
     (DequantizeLinear with axis) and uint8 QuantizeLinear/DequantizeLinear activations;
  2. `hepml run Q.onnx` against `hepml run MODEL` on the calibration data: max error at most
     BOUND x max(max|float|, 1) (BOUND 0.05; measured in docs/benchmarks.md);
  3. ONNX Runtime (bench/peers/ort_cli.mjs through node, when onnxruntime-node is installed in
     bench/peers) on Q.onnx: within 1e-4 x scale of `hepml run Q.onnx`, and the same bound
     against float;
  4. `hepml compile Q.onnx`: the QDQ layers become int8 kernels (the compile lists them), the
     package builds with g++ -Wall -Wextra -Werror -O2 and its outputs on every data set are
     within 1e-4 x scale of `hepml run Q.onnx` (the same int8 values; hepml sums their float
     products, the package sums them exactly in int32: measured 2.4e-7);
  5. --per-tensor writes scalar weight scales, --exclude keeps that node float;
  6. bad input (unknown --exclude node, unknown calibration input, wrong dtype, wrong shape,
     no calibration) is refused with exit status 2 and a message naming it, writing nothing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

BOUND = 0.05
FLAGS = "-Wall -Wextra -Werror -O2"
HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "..", "..", "bench", "peers")


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, **kw)
    return p.returncode, p.stdout


def outputs(folder):
    return {f[:-4]: np.load(os.path.join(folder, f)) for f in sorted(os.listdir(folder)) if f.endswith(".npy")}


def max_err(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def check_model(args, m, work):
    import onnx
    from onnx import numpy_helper
    problems = []
    name = m["name"]
    model = os.path.join(args.models, m["file"])
    ds0 = m["data_sets"][0]
    calib = [x for n, s in ds0["inputs"].items() for x in ("--calibration", f"{n}={os.path.join(args.models, s['file'])}")]
    feeds0 = [x for n, s in ds0["inputs"].items() for x in ("--input", f"{n}={os.path.join(args.models, s['file'])}")]
    qdq = os.path.join(work, "q.onnx")
    rc, out = run([args.hepml, "quantize", model, "-o", qdq] + calib)
    if rc != 0:
        return [f"hepml quantize failed ({rc}): {out.strip()}"]
    if "max abs error" not in out:
        problems.append(f"no error report: {out}")
    proto = onnx.load(qdq)
    onnx.checker.check_model(proto)
    opset = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")][0]
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    ops = [n.op_type for n in proto.graph.node]
    if opset < 13:
        problems.append(f"opset {opset}")
    weights = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None
               and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim >= 2]
    acts = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    if not weights or not acts:
        problems.append(f"no int8 weights or activation QuantizeLinear: {ops}")
    for n in weights:
        if inits[n.input[1]].ndim != 1 or not any(a.name == "axis" for a in n.attribute):
            problems.append(f"{n.name}: weight scale not per channel")
    for n in acts:
        if inits[n.input[2]].dtype != np.uint8:
            problems.append(f"{n.name}: activation zero point {inits[n.input[2]].dtype}")
    # 2. hepml run: QDQ against float.
    ref_dir, q_dir = os.path.join(work, "ref0"), os.path.join(work, "q0")
    for mdl, d in ((model, ref_dir), (qdq, q_dir)):
        rc, out = run([args.hepml, "run", mdl] + feeds0 + ["--output-dir", d])
        if rc != 0:
            return problems + [f"hepml run {mdl} failed: {out.strip()}"]
    ref, got = outputs(ref_dir), outputs(q_dir)
    for k, r in ref.items():
        scale = max(float(np.max(np.abs(r))), 1.0)
        e = max_err(got[k], r)
        print(f"    {name} {k}: hepml run QDQ vs float: max abs error {e:.3g}, mean {float(np.mean(np.abs(got[k] - r))):.3g}")
        if e > BOUND * scale:
            problems.append(f"QDQ output {k}: error {e:.3g} > {BOUND} x {scale:.3g}")
    # 3. ONNX Runtime on the QDQ model.
    if args.ort:
        o_dir = os.path.join(work, "ort0")
        rc, out = run([args.node, os.path.join(PEERS, "ort_cli.mjs"), "run", qdq] + feeds0 + ["--output-dir", o_dir])
        if rc != 0:
            problems.append(f"ONNX Runtime cannot run the QDQ model: {out.strip()}")
        else:
            ort = outputs(o_dir)
            for k, r in ref.items():
                scale = max(float(np.max(np.abs(r))), 1.0)
                e_h, e_f = max_err(ort[k], got[k]), max_err(ort[k], r)
                print(f"    {name} {k}: ONNX Runtime QDQ vs hepml QDQ {e_h:.3g}, vs float {e_f:.3g}")
                if e_h > 1e-4 * scale or e_f > BOUND * scale:
                    problems.append(f"ORT output {k}: {e_h:.3g} from hepml, {e_f:.3g} from float")
    # 4. hepml compile of the QDQ model.
    pkg, build = os.path.join(work, "pkg"), os.path.join(work, "build")
    rc, out = run([args.hepml, "compile", qdq, "-o", pkg, "--name", name, "--max-batch", "16"])
    if rc != 0:
        return problems + [f"hepml compile of the QDQ model failed: {out.strip()}"]
    if "int8 from QDQ" not in out:
        problems.append(f"no layer compiled to int8 kernels: {out}")
    rc, out = run(["cmake", "-S", pkg, "-B", build, "-DCMAKE_BUILD_TYPE=None", f"-DCMAKE_CXX_FLAGS={FLAGS}"])
    if rc == 0:
        rc, out = run(["cmake", "--build", build, "-j", "2"])
    if rc != 0:
        return problems + [f"package build failed: {out[-3000:]}"]
    for ds in m["data_sets"]:
        feeds = [x for n, s in ds["inputs"].items() for x in ("--input", f"{n}={os.path.join(args.models, s['file'])}")]
        tag = ds["dir"].replace("/", "_")
        c_dir, h_dir = os.path.join(work, "c_" + tag), os.path.join(work, "h_" + tag)
        rc1, o1 = run([os.path.join(build, f"{name}_run")] + feeds + ["--output-dir", c_dir])
        rc2, o2 = run([args.hepml, "run", qdq] + feeds + ["--output-dir", h_dir])
        if rc1 or rc2:
            problems.append(f"{ds['dir']}: runs failed: {o1.strip()} {o2.strip()}")
            continue
        c, h = outputs(c_dir), outputs(h_dir)
        for k, r in h.items():
            scale = max(float(np.max(np.abs(r))), 1.0)
            e = max_err(c[k], r)
            print(f"    {ds['dir']} {k}: compiled QDQ vs hepml run QDQ: max abs error {e:.3g}")
            if e > 1e-4 * scale:
                problems.append(f"{ds['dir']}: compiled QDQ output {k}: error {e:.3g}")
    # 5. --per-tensor and --exclude.
    first = next(n for n in onnx.load(model).graph.node if n.op_type in ("Gemm", "MatMul", "Conv"))
    q2 = os.path.join(work, "q2.onnx")
    rc, out = run([args.hepml, "quantize", model, "-o", q2, "--per-tensor", "--exclude", first.name] + calib)
    if rc != 0:
        problems.append(f"--per-tensor --exclude failed: {out.strip()}")
    else:
        p2 = onnx.load(q2)
        inits2 = {t.name: numpy_helper.to_array(t) for t in p2.graph.initializer}
        for n in p2.graph.node:
            if n.op_type == "DequantizeLinear" and inits2.get(n.input[0]) is not None and inits2[n.input[0]].ndim >= 2:
                if inits2[n.input[1]].ndim != 0:
                    problems.append(f"--per-tensor: {n.name} scale shape {inits2[n.input[1]].shape}")
        kept = next(n for n in p2.graph.node if n.name == first.name)
        if kept.input[1] not in inits2 or inits2[kept.input[1]].dtype != np.float32 or f"kept float: {first.name}" not in out:
            problems.append(f"--exclude {first.name}: not kept float")
    return problems


def check_bad_input(args, m, work):
    problems = []
    model = os.path.join(args.models, m["file"])
    spec = next(iter(m["data_sets"][0]["inputs"].items()))
    name, path = spec[0], os.path.join(args.models, spec[1]["file"])
    x = np.load(path)
    wrong_dtype, wrong_shape = os.path.join(work, "i64.npy"), os.path.join(work, "shape.npy")
    np.save(wrong_dtype, x.astype(np.int64))
    np.save(wrong_shape, np.zeros((2, x.shape[-1] + 3), np.float32))
    cases = [
        (["--calibration", f"{name}={path}", "--exclude", "no_such_node"], "no_such_node"),
        (["--calibration", f"nope={path}"], "no input 'nope'"),
        (["--calibration", f"{name}={wrong_dtype}"], "int64"),
        (["--calibration", f"{name}={wrong_shape}"], "shape"),
        (["--calibration", f"{name}"], "NAME=FILE.npy"),
        ([], "--calibration"),
    ]
    for extra, want in cases:
        out_file = os.path.join(work, "bad.onnx")
        rc, out = run([args.hepml, "quantize", model, "-o", out_file] + extra)
        if rc != 2 or want not in out or os.path.exists(out_file):
            problems.append(f"{extra}: exit {rc}, wrote {os.path.exists(out_file)}: {out.strip()}")
    # The same checks in hepml compile --precision int8.
    for extra, want in [([], "needs --calibration"), (["--calibration", f"nope={path}"], "no input 'nope'"),
                        (["--calibration", f"{name}={wrong_shape}"], "shape")]:
        pkg = os.path.join(work, "badpkg")
        rc, out = run([args.hepml, "compile", model, "-o", pkg, "--precision", "int8"] + extra)
        if rc != 2 or want not in out or os.path.exists(pkg):
            problems.append(f"compile int8 {extra}: exit {rc}: {out.strip()}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--only", default="trigger_mlp,calo_gan,calo_cnn")
    ap.add_argument("--node", default=shutil.which("node"))
    ap.add_argument("--work")
    args = ap.parse_args()
    args.ort = bool(args.node) and os.path.isdir(os.path.join(PEERS, "node_modules", "onnxruntime-node"))
    if not args.ort:
        print("ONNX Runtime checks skipped: node or bench/peers/node_modules/onnxruntime-node missing")
    with open(os.path.join(args.models, "models.json")) as f:
        models = {m["name"]: m for m in json.load(f)["models"]}
    work = args.work or tempfile.mkdtemp(prefix="hepml_quantize_")
    failed = 0
    try:
        for name in args.only.split(","):
            w = os.path.join(work, name)
            shutil.rmtree(w, ignore_errors=True)
            os.makedirs(w)
            problems = check_model(args, models[name], w)
            if name == "trigger_mlp":
                problems += check_bad_input(args, models[name], w)
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'PASS'} {name}")
            for p in problems:
                print(f"    {p}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
