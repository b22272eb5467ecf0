#!/usr/bin/env python3
"""Bad input to `hepml info` and `hepml run`: each case must end with exit code 1
or 2 and one line on stderr that names the file (or input) and the reason; never
a crash (signal) or a hang (timeout). Ends with 'N passed, M failed'."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def good_model(opset=17, extra_domain=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    w = numpy_helper.from_array(np.array([1, 2, 3], dtype=np.float32), "w")
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    graph = helper.make_graph([node], "g", [x], [y], [w])
    opsets = [helper.make_opsetid("", opset)]
    if extra_domain:
        opsets.append(helper.make_opsetid(extra_domain, 1))
    return helper.make_model(graph, opset_imports=opsets)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml_bad_input_")
    path = lambda name: os.path.join(tmp, name)

    good = good_model().SerializeToString()
    open(path("good.onnx"), "wb").write(good)
    open(path("truncated.onnx"), "wb").write(good[: len(good) // 2])
    open(path("text.onnx"), "w").write("this is not an ONNX model\n" * 10)
    open(path("empty.onnx"), "wb").write(b"")
    open(path("opset99.onnx"), "wb").write(good_model(opset=99).SerializeToString())
    open(path("domain.onnx"), "wb").write(good_model(extra_domain="org.example.custom").SerializeToString())
    ext = good_model()
    t = ext.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "weights_missing.bin"
    open(path("external.onnx"), "wb").write(ext.SerializeToString())
    cyc = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["b"], name="second")],
        "cyclic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])])
    open(path("cyclic.onnx"), "wb").write(helper.make_model(cyc, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    missing_op = helper.make_graph(
        [helper.make_node("FancyNewOp", ["x"], ["y"], name="fancy")], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    open(path("missing_op.onnx"), "wb").write(helper.make_model(missing_op, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    np.save(path("x_ok.npy"), np.ones((2, 3), dtype=np.float32))
    np.save(path("x_f64.npy"), np.ones((2, 3), dtype=np.float64))
    np.save(path("x_rank.npy"), np.ones((3,), dtype=np.float32))
    np.save(path("x_dim.npy"), np.ones((2, 4), dtype=np.float32))
    open(path("x_bad.npy"), "wb").write(b"\x93NUMPY garbage")

    cases = [
        # (label, argv, words the error must contain)
        ("info truncated", ["info", path("truncated.onnx")], ["truncated.onnx", "not a valid ONNX model"]),
        ("info text file", ["info", path("text.onnx")], ["text.onnx"]),
        ("info empty file", ["info", path("empty.onnx")], ["empty.onnx"]),
        ("info missing file", ["info", path("nope.onnx")], ["nope.onnx", "no such file"]),
        ("info unknown opset", ["info", path("opset99.onnx")], ["opset99.onnx", "opset 99"]),
        ("info unknown domain", ["info", path("domain.onnx")], ["domain.onnx", "org.example.custom"]),
        ("info missing external data", ["info", path("external.onnx")], ["external.onnx", "weights_missing.bin"]),
        ("info cyclic graph", ["info", path("cyclic.onnx")], ["cyclic.onnx", "cycle"]),
        ("info directory", ["info", tmp], ["is a directory"]),
        ("info unknown pass", ["info", path("good.onnx"), "--optimized", "--disable-pass", "bogus-pass"],
         ["bogus-pass", "fold-constants"]),
        ("run missing operator", ["run", path("missing_op.onnx"), "--input", "x=" + path("x_ok.npy")], ["FancyNewOp", "fancy"]),
        ("run wrong input name", ["run", path("good.onnx"), "--input", "z=" + path("x_ok.npy")], ["unknown input 'z'"]),
        ("run wrong dtype", ["run", path("good.onnx"), "--input", "x=" + path("x_f64.npy")], ["'x'", "float64"]),
        ("run wrong rank", ["run", path("good.onnx"), "--input", "x=" + path("x_rank.npy")], ["'x'", "rank 1"]),
        ("run wrong dimension", ["run", path("good.onnx"), "--input", "x=" + path("x_dim.npy")], ["'x'", "dimension 1"]),
        ("run corrupt npy", ["run", path("good.onnx"), "--input", "x=" + path("x_bad.npy")], ["x_bad.npy"]),
        ("run missing input", ["run", path("good.onnx")], ["'x' is missing"]),
        ("run bad input spec", ["run", path("good.onnx"), "--input", "x_ok.npy"], ["NAME=FILE"]),
        ("run unknown precision", ["run", path("good.onnx"), "--input", "x=" + path("x_ok.npy"), "--precision", "fp8"],
         ["--precision", "'fp8'", "fp32, fp16 or bf16"]),
        ("unknown subcommand", ["frobnicate"], []),
    ]
    failed = 0
    for label, argv, words in cases:
        try:
            proc = subprocess.run([args.hepml] + argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            print(f"FAIL {label}: hung")
            failed += 1
            continue
        err = proc.stderr.strip()
        problems = []
        if proc.returncode not in (1, 2):
            problems.append(f"exit code {proc.returncode}")
        if words and len(err.splitlines()) != 1:
            problems.append(f"stderr has {len(err.splitlines())} lines")
        for w in words:
            if w not in err:
                problems.append(f"error lacks {w!r}")
        if problems:
            failed += 1
            print(f"FAIL {label}: {'; '.join(problems)}; stderr: {err[:300]}")
        else:
            print(f"ok   {label}: {err[:160]}")
    # A good run still works and writes its output, at every precision (an Add
    # alone stays float32, so the result is exact).
    for precision in ("fp32", "bf16", "fp16"):
        out_dir = path("out_" + precision)
        proc = subprocess.run([args.hepml, "run", path("good.onnx"), "--input", "x=" + path("x_ok.npy"), "--output-dir", out_dir,
                               "--precision", precision], capture_output=True, text=True, timeout=60)
        y = np.load(os.path.join(out_dir, "y.npy")) if proc.returncode == 0 else None
        if y is None or not np.array_equal(y, np.ones((2, 3), np.float32) + np.array([1, 2, 3], np.float32)):
            failed += 1
            print(f"FAIL good run at {precision}: exit {proc.returncode} {proc.stderr.strip()}")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    total = len(cases) + 3
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
