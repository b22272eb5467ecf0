#!/usr/bin/python3
"""Bad input to `hepml compile` and to a generated NAME_run.

    check_bad_input.py --hepml PATH --models DIR

Compile cases must end with exit code 1 or 2, one line on stderr naming the thing at
fault and the reason, and leave no output folder (nor a temporary sibling); a folder
that existed before a failed compile keeps its contents. Runner cases build
trigger_mlp (DIR from bench/models/generate.py) with --max-batch 4 and feed it a
wrong input name, dtype, shape, a batch above the maximum and a missing input.
Ends with 'N passed, M failed'.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml_compile_bad_")
    path = lambda name: os.path.join(tmp, name)
    fx = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    open(path("lpnorm.onnx"), "wb").write(model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("LpNormalization", ["r"], ["y"], name="pick")],
        [fx("x", ["batch", 4])], [fx("y", ["batch", 4])]))
    open(path("string.onnx"), "wb").write(model(
        [helper.make_node("Identity", ["s"], ["y"], name="id")],
        [helper.make_tensor_value_info("s", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["batch"])]))
    then = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [fx("t", ["batch", 4])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [fx("e", ["batch", 4])])
    open(path("if.onnx"), "wb").write(model(
        [helper.make_node("If", ["c"], ["y"], name="branch", then_branch=then, else_branch=other)],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []), fx("x", ["batch", 4])], [fx("y", ["batch", 4])]))
    open(path("text.onnx"), "w").write("not a model\n")
    mlp = os.path.join(args.models, "trigger_mlp.onnx")
    pn = os.path.join(args.models, "particlenet.onnx")
    open(path("unknown_layer.yaml"), "w").write("default: bf16\nlayers:\n  /net/net.1/Relu: fp16\n  /net/dense9: fp32\n")
    open(path("bad_precision.yaml"), "w").write("layers:\n  /net/net.1/Relu: fp8\n")
    open(path("bad_key.yaml"), "w").write("layer:\n  /net/net.1/Relu: fp16\n")
    open(path("bad_syntax.yaml"), "w").write("layers: [unclosed\n")
    open(path("bad_fixed.yaml"), "w").write("layers:\n  /net/net.1/Relu: fixed<8,12>\n")
    open(path("fixed_unknown_layer.yaml"), "w").write("layers:\n  /net/dense9: fixed<16,6>\n")
    calib = os.path.join(args.models, "trigger_mlp", "input_x.npy")
    x = np.load(calib)
    np.save(path("calib_i64.npy"), x.astype(np.int64))
    np.save(path("calib_shape.npy"), np.zeros((2, x.shape[1] + 1), np.float32))

    # (name, argv after `compile`, expected exit codes, substrings of the message)
    cases = [
        ("unsupported operator", [path("lpnorm.onnx")], {1}, ["LpNormalization", "pick", "cannot emit"]),
        ("string input", [path("string.onnx")], {1}, ["input 's'", "string"]),
        ("control flow", [path("if.onnx")], {1}, ["If", "branch", "control flow"]),
        ("not a model", [path("text.onnx")], {1}, ["text.onnx"]),
        ("missing model", [path("absent.onnx")], {1}, ["absent.onnx"]),
        ("dim the model lacks", [mlp, "--dim", "particles=4"], {2}, ["--dim particles", "batch"]),
        ("dim without a value", [mlp, "--dim", "particles"], {2}, ["--dim 'particles'", "NAME=VALUE"]),
        ("dim of zero", [mlp, "--dim", "batch=0"], {2}, ["--dim 'batch=0'"]),
        ("symbolic dim not given", [pn], {1}, ["particles", "--dim particles=VALUE"]),
        ("keyword as name", [mlp, "--name", "class"], {2}, ["--name 'class'", "identifier"]),
        ("bad namespace", [mlp, "--namespace", "a::1b"], {2}, ["--namespace 'a::1b'"]),
        ("max batch zero", [mlp, "--max-batch", "0"], {2}, ["max-batch"]),
        ("sparsity above one", [mlp, "--prune", "1.5"], {2}, ["--prune '1.5'", "[0, 1)"]),
        ("bad N:M", [mlp, "--prune", "4:2"], {2}, ["--prune '4:2'", "N:M"]),
        ("write-pruned alone", [mlp, "--write-pruned", path("p.onnx")], {2}, ["--write-pruned needs --prune"]),
        ("unknown layer in the precision file", [mlp, "--precision-file", path("unknown_layer.yaml")], {2},
         ["'/net/dense9' is not a node"]),
        ("bad precision in the precision file", [mlp, "--precision-file", path("bad_precision.yaml")], {2},
         ["bad_precision.yaml", "'/net/net.1/Relu'", "'fp8'"]),
        ("unknown key in the precision file", [mlp, "--precision-file", path("bad_key.yaml")], {2},
         ["bad_key.yaml", "unknown key 'layer'"]),
        ("precision file not YAML", [mlp, "--precision-file", path("bad_syntax.yaml")], {2}, ["bad_syntax.yaml"]),
        ("missing precision file", [mlp, "--precision-file", path("absent.yaml")], {1}, ["absent.yaml", "cannot open"]),
        ("unknown precision", [mlp, "--precision", "fp8"], {2}, ["--precision 'fp8'", "fp16", "bf16"]),
        ("unknown precision (int)", [mlp, "--precision", "int4"], {2}, ["--precision 'int4'", "int8", "fixed<W,I"]),
        ("fixed with I > W", [mlp, "--precision", "fixed<8,12>"], {2}, ["fixed<8,12>", "I = 12", "W = 8"]),
        ("fixed with W > 32", [mlp, "--precision", "fixed<40,8>"], {2}, ["fixed<40,8>", "W = 40", "1 to 32"]),
        ("fixed with an unknown mode", [mlp, "--precision", "fixed<16,6,RND_ZERO>"], {2}, ["RND_ZERO", "RND_CONV"]),
        ("fixed with an unknown overflow", [mlp, "--precision", "fixed<16,6,RND,SAT_SYM>"], {2}, ["SAT_SYM", "WRAP"]),
        ("bad fixed type in the precision file", [mlp, "--precision-file", path("bad_fixed.yaml")], {2},
         ["bad_fixed.yaml", "'/net/net.1/Relu'", "I = 12"]),
        ("fixed layer unknown", [mlp, "--precision-file", path("fixed_unknown_layer.yaml")], {2},
         ["'/net/dense9'", "not a node"]),
        ("int8 without calibration", [mlp, "--precision", "int8"], {2}, ["int8", "needs --calibration"]),
        ("calibration of an unknown input", [mlp, "--precision", "int8", "--calibration", f"y={calib}"], {2},
         ["--calibration", "no input 'y'", "x"]),
        ("calibration of the wrong dtype", [mlp, "--precision", "int8", "--calibration", f"x={path('calib_i64.npy')}"],
         {2}, ["--calibration", "int64", "input 'x'"]),
        ("calibration of the wrong shape", [mlp, "--precision", "int8", "--calibration",
                                            f"x={path('calib_shape.npy')}"], {2}, ["--calibration", "shape", "input 'x'"]),
    ]
    passed = failed = 0

    def report(ok, name, detail=""):
        nonlocal passed, failed
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    for i, (name, argv, codes, needles) in enumerate(cases):
        out_dir = path(f"out{i}")
        p = subprocess.run([args.hepml, "compile"] + argv + ["-o", out_dir], capture_output=True, text=True, timeout=120)
        lines = p.stderr.strip().splitlines()
        leftovers = [f for f in os.listdir(tmp) if f.startswith(f".out{i}.") or f == f"out{i}"]
        problems = []
        if p.returncode not in codes:
            problems.append(f"exit {p.returncode}, expected {sorted(codes)}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        missing = [n for n in needles if n not in p.stderr]
        if missing:
            problems.append(f"message lacks {missing}")
        if leftovers:
            problems.append(f"left {leftovers}")
        report(not problems, name, "; ".join(problems) + f" (stderr: {p.stderr.strip()!r})")

    # A folder of other files is never replaced, even by a good compile.
    other = path("other")
    os.makedirs(other)
    open(os.path.join(other, "notes.txt"), "w").write("mine")
    p = subprocess.run([args.hepml, "compile", mlp, "-o", other], capture_output=True, text=True)
    report(p.returncode == 1 and os.listdir(other) == ["notes.txt"] and "not a package" in p.stderr,
           "a folder of other files is not replaced", f"exit {p.returncode}, {p.stderr.strip()!r}")

    # A failed compile keeps an existing folder as it was.
    keep = path("keep")
    os.makedirs(keep)
    open(os.path.join(keep, "marker"), "w").write("old")
    p = subprocess.run([args.hepml, "compile", path("lpnorm.onnx"), "-o", keep], capture_output=True, text=True)
    report(p.returncode == 1 and os.listdir(keep) == ["marker"], "failed compile keeps an existing folder",
           f"exit {p.returncode}, contents {os.listdir(keep)}")

    # The runner's checks of its inputs.
    pkg, build = path("pkg"), path("build")
    p = subprocess.run([args.hepml, "compile", mlp, "-o", pkg, "--name", "trig", "--max-batch", "4"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        report(False, "compile trigger_mlp", p.stderr)
    else:
        # A second compile replaces the folder.
        p2 = subprocess.run([args.hepml, "compile", mlp, "-o", pkg, "--name", "trig", "--max-batch", "4"],
                            capture_output=True, text=True)
        report(p2.returncode == 0 and sorted(os.listdir(pkg)) == sorted(
            ["CMakeLists.txt", "trig.h", "trig.cc", "trig.weights", "trig_run.cc"]), "recompile replaces the folder",
            f"{p2.stderr} {os.listdir(pkg)}")
        subprocess.run(["cmake", "-S", pkg, "-B", build, "-DCMAKE_BUILD_TYPE=None",
                        "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror -O2"], capture_output=True, check=True)
        b = subprocess.run(["cmake", "--build", build, "-j", "1"], capture_output=True, text=True)
        report(b.returncode == 0, "runner builds", b.stdout[-2000:])
        exe = os.path.join(build, "trig_run")
        np.save(path("ok.npy"), np.ones((2, 16), np.float32))
        np.save(path("f64.npy"), np.ones((2, 16), np.float64))
        np.save(path("wide.npy"), np.ones((2, 17), np.float32))
        np.save(path("big.npy"), np.ones((5, 16), np.float32))
        runner_cases = [
            ("runner: unknown input", ["--input", "y=" + path("ok.npy")], ["unknown input 'y'", "x"]),
            ("runner: wrong dtype", ["--input", "x=" + path("f64.npy")], ["input 'x'", "float32", "<f8"]),
            ("runner: wrong shape", ["--input", "x=" + path("wide.npy")], ["input 'x'", "dimension 1 is 17", "16"]),
            ("runner: batch above max", ["--input", "x=" + path("big.npy")], ["batch 5", "1..4"]),
            ("runner: missing input", ["--output-dir", path("o")], []),
            ("runner: bad weights file", ["--weights", path("ok.npy"), "--input", "x=" + path("ok.npy")],
             ["not a hepml weights file"]),
        ]
        for name, argv, needles in runner_cases:
            r = subprocess.run([exe] + argv, capture_output=True, text=True, timeout=60)
            missing = [n for n in needles if n not in r.stderr]
            report(r.returncode in (1, 2) and not missing and r.stderr.strip() != "", name,
                   f"exit {r.returncode}, stderr {r.stderr.strip()!r}")
        r = subprocess.run([exe, "--input", "x=" + path("ok.npy"), "--output-dir", path("o")], capture_output=True,
                           text=True)
        report(r.returncode == 0 and os.path.exists(path("o/probs.npy")), "runner: good input", r.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
