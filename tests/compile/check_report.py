#!/usr/bin/python3
"""`hepml compile --report` on trigger_mlp: for fp16 and bf16, with its calibration data and with
random inputs, and for int8 and fixed<16,6> with the calibration data, the report names the
precision, the weight bytes shrink (at most 55% of fp32; int8 35%, fixed<16,6> with 16-bit weights
and 32-bit biases 60%), the object sizes and batch-1 latencies are positive, and the printed
max/mean absolute output errors are non-zero and within the documented bounds (2e-3 fp16, 2e-2
bf16, 5e-2 int8 and fixed<16,6>, relative to the output's scale of 1: the model ends in a
softmax). A malformed --calibration is a usage error.

    check_report.py --hepml PATH --models DIR
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    args = ap.parse_args()
    model = os.path.join(args.models, "trigger_mlp.onnx")
    calib = os.path.join(args.models, "trigger_mlp", "batch1", "input_x.npy")
    tmp = tempfile.mkdtemp(prefix="hepml_compile_report_")
    failed = 0
    try:
        runs = [(p, b, s, e) for p, b in (("fp16", 2e-3), ("bf16", 2e-2))
                for e in (["--calibration", f"x={calib}"], []) for s in (0.55,)]
        runs += [("int8", 5e-2, 0.35, ["--calibration", f"x={calib}"]),
                 ("fixed<16,6>", 5e-2, 0.60, ["--calibration", f"x={calib}"])]
        for precision, bound, shrink, extra in runs:
            out = os.path.join(tmp, f"pkg_{''.join(c for c in precision if c.isalnum())}_{len(extra)}")
            p = subprocess.run([args.hepml, "compile", model, "-o", out, "--precision", precision, "--report"]
                               + extra, capture_output=True, text=True, timeout=300)
            problems = []
            w = re.search(r"weights (\d+) -> (\d+) bytes, object \S+ (\d+) -> (\d+) bytes", p.stdout)
            e = re.search(r"output probs: max abs error (\S+), mean abs error (\S+)", p.stdout)
            lat = re.search(r"latency \(batch 1, p50 of 2000 runs\) (\S+) -> (\S+) us", p.stdout)
            if p.returncode != 0:
                problems.append(f"exit {p.returncode}: {p.stderr.strip()}")
            elif f"report: {precision} against fp32" not in p.stdout or not w or not e or not lat:
                problems.append(f"unexpected report: {p.stdout!r}")
            else:
                fp32, got, obj32, obj = (int(x) for x in w.groups())
                if got > shrink * fp32 or obj32 <= 0 or obj <= 0 or float(lat.group(1)) <= 0 or float(lat.group(2)) <= 0:
                    problems.append(f"weights {fp32} -> {got}, objects {obj32} -> {obj}")
                mx, mean = float(e.group(1)), float(e.group(2))
                if not (0 < mean <= mx <= bound):
                    problems.append(f"errors max {mx} mean {mean}, bound {bound}")
            ok = not problems
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {precision} {'calibration' if extra else 'random inputs'}"
                  + ("" if ok else ": " + "; ".join(problems)))
        p = subprocess.run([args.hepml, "compile", model, "-o", os.path.join(tmp, "bad"), "--precision", "bf16",
                            "--report", "--calibration", "x"], capture_output=True, text=True, timeout=300)
        ok = p.returncode == 2 and "--calibration 'x'" in p.stderr and not os.path.exists(os.path.join(tmp, "bad"))
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} malformed --calibration" + ("" if ok else f": {p.returncode} {p.stderr!r}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
