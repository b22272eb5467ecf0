#!/usr/bin/python3
"""Error, size and batch-1 latency of the integer precisions of `hepml compile` against fp32.

    bench/quantize_bench.py --hepml build/src/cli/hepml --models DIR
                            [--only trigger_mlp,calo_gan,calo_cnn]
                            [--precisions "int8;qdq;fixed<16,6>;fixed<16,6,RND_CONV,SAT>"]

DIR is what bench/models/generate.py wrote. For each model and precision this runs
`hepml compile MODEL --precision P --report --calibration ...` on the model's first data set
and prints one markdown row from the report: max and mean absolute output error against the
fp32 package on the calibration data, weight bytes, NAME.o bytes, and the batch-1 p50 latency
of both runners (g++/c++ -O2, x86-64 baseline). `qdq`: `hepml quantize` on that data (its
printed error against the float model, which the compiled QDQ package matches within 2.4e-7),
then `hepml compile --report` of the QDQ model for its package's size and latency; the fp32
side of the row is the first precision's. Not a test: nothing here asserts a timing.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--only", default="trigger_mlp,calo_gan,calo_cnn")
    ap.add_argument("--precisions", default="int8;qdq;fixed<16,6>;fixed<16,6,RND_CONV,SAT>",
                    help="';'-separated (fixed types contain commas)")
    args = ap.parse_args()
    with open(os.path.join(args.models, "models.json")) as f:
        models = {m["name"]: m for m in json.load(f)["models"]}
    work = tempfile.mkdtemp(prefix="hepml_quantize_bench_")
    print("| model | precision | max abs error | mean abs error | weights (fp32 -> P) | NAME.o | batch-1 p50 (fp32 -> P) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only.split(","):
        m = models[name]
        calib = [x for n, s in m["data_sets"][0]["inputs"].items()
                 for x in ("--calibration", f"{n}={os.path.join(args.models, s['file'])}")]
        model = os.path.join(args.models, m["file"])
        fp32 = None
        for p in args.precisions.split(";"):
            tag = "".join(c for c in p if c.isalnum())
            src, extra = model, ["--precision", p]
            qerr = {}
            if p == "qdq":
                src, extra = os.path.join(work, f"{name}.qdq.onnx"), []
                q = subprocess.run([args.hepml, "quantize", model, "-o", src] + calib, check=True,
                                   capture_output=True, text=True)
                for e in re.finditer(r"output (\S+): max abs error (\S+), mean abs error (\S+)", q.stdout):
                    qerr[e.group(1)] = (e.group(2), e.group(3))
            out = subprocess.run([args.hepml, "compile", src, "-o", os.path.join(work, f"{name}_{tag}"), "--name",
                                  name, "--report"] + extra + calib, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {name} | {p} | failed: {out.stderr.strip()} |")
                continue
            w = re.search(r"weights (\d+) -> (\d+) bytes, object \S+ (\d+) -> (\d+) bytes", out.stdout)
            lat = re.search(r"latency \(batch 1, p50 of 2000 runs\) (\S+) -> (\S+) us", out.stdout)
            left = (w.group(1), w.group(3), lat.group(1))
            if fp32 is None:
                fp32 = left
            if p == "qdq":
                left = fp32
            for e in re.finditer(r"output (\S+): max abs error (\S+), mean abs error (\S+)", out.stdout):
                mx, mean = qerr.get(e.group(1), (e.group(2), e.group(3)))
                print(f"| {name} | {p} | {float(mx):.3g} | {float(mean):.3g} | "
                      f"{left[0]} -> {w.group(2)} | {left[1]} -> {w.group(4)} | {left[2]} -> {lat.group(2)} us |")


if __name__ == "__main__":
    main()
