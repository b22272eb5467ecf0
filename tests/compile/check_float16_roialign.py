#!/usr/bin/python3
"""float16 / bfloat16 tensors and RoiAlign through `hepml compile` and NAME_run.

    check_float16_roialign.py --hepml PATH [--cxx g++] [--keep DIR]

float16: a model with float16 and float32 inputs and float16, bfloat16 and float32 outputs
(casts both ways, an elementwise map computed on halves, a float16 intermediate, a float16
input passed through) is compiled, built with -Wall -Wextra -Werror, and NAME_run's .npy
outputs are compared bit for bit with numpy: float16 '<f2' files against numpy's float16
(round to nearest even, subnormals, overflow to infinity, NaN), bfloat16 stored as its raw
bits ('<u2', as `hepml run` stores it) against round-to-nearest-even of the float32 bits.

RoiAlign: models at opsets 10 and 16 (avg and max, output_half_pixel and half_pixel,
sampling_ratio 0 and 2, three images, rois over and off the feature map) against a numpy
port of ONNX's reference implementation (onnx/reference/ops/op_roi_align.py), 1e-5; a batch
index out of range must make NAME_run fail with a message, not crash.
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

FAILED = []
PASSED = []


def check(name, ok, detail=""):
    (PASSED if ok else FAILED).append(name)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail), flush=True)


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def build(args, tmp, name, onnx_bytes, max_batch):
    src = os.path.join(tmp, name + ".onnx")
    open(src, "wb").write(onnx_bytes)
    pkg = os.path.join(tmp, name)
    r = subprocess.run([args.hepml, "compile", src, "-o", pkg, "--name", name, "--max-batch", str(max_batch)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, "hepml compile: " + r.stderr.strip()
    exe = os.path.join(pkg, name + "_run")
    r = subprocess.run([args.cxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", pkg,
                        os.path.join(pkg, name + ".cc"), os.path.join(pkg, name + "_run.cc"), "-o", exe],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None, "build: " + r.stderr[-2000:]
    return exe, ""


def run(exe, tmp, tag, inputs):
    out = os.path.join(tmp, tag + "_out")
    os.makedirs(out, exist_ok=True)
    cmd = [exe, "--weights", os.path.join(os.path.dirname(exe), os.path.basename(exe)[:-4] + ".weights"),
           "--output-dir", out]
    for k, v in inputs.items():
        p = os.path.join(tmp, f"{tag}_{k}.npy")
        np.save(p, v)
        cmd += ["--input", f"{k}={p}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r, out


def bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even, NaN kept quiet."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    r[nan] = ((b[nan] >> 16) & 0x8000).astype(np.uint16) | 0x7FC0
    return r


def same_bits(a, b):
    a16, b16 = np.asarray(a), np.asarray(b)
    if a16.shape != b16.shape or a16.dtype.itemsize != b16.dtype.itemsize:
        return False
    av, bv = a16.view(np.uint16), b16.view(np.uint16)
    if a16.dtype == np.float16 and b16.dtype == np.float16:
        nan = np.isnan(a16) & np.isnan(b16)
        return bool(np.all((av == bv) | nan))
    return bool(np.array_equal(av, bv))


def check_float16(args, tmp):
    f16 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT16, s)
    f32 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    three = numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three")
    nodes = [
        helper.make_node("Cast", ["xh"], ["t"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["t", "three"], ["u"]),
        helper.make_node("Cast", ["u"], ["triple"], to=TensorProto.FLOAT16),
        helper.make_node("Add", ["xh", "xh"], ["twice"]),
        helper.make_node("Mul", ["xh", "xh"], ["square"]),
        helper.make_node("Cast", ["xf"], ["to_half"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["xf"], ["to_bf16"], to=TensorProto.BFLOAT16),
        helper.make_node("Cast", ["xf"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Relu", ["h"], ["rh"]),
        helper.make_node("Cast", ["rh"], ["relu_via_half"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["xh"], ["same"]),
    ]
    outs = [f16("triple", ["n", 8]), f16("twice", ["n", 8]), f16("square", ["n", 8]), f16("to_half", ["n", 8]),
            helper.make_tensor_value_info("to_bf16", TensorProto.BFLOAT16, ["n", 8]),
            f32("relu_via_half", ["n", 8]), f16("same", ["n", 8])]
    exe, err = build(args, tmp, "half", model(nodes, [f16("xh", ["n", 8]), f32("xf", ["n", 8])], outs, [three]), 4)
    check("float16 model compiles and builds", exe is not None, err)
    if exe is None:
        return
    header = open(os.path.join(os.path.dirname(exe), "half.h")).read()
    check("header documents float16 I/O", "input 0  'xh'  float16[batch, 8]" in header and "bfloat16" in header,
          header[:600])
    rng = np.random.default_rng(3)
    # Values that exercise the rounding: ties to even, subnormals, overflow,
    # infinities, NaN, signed zero, and random values over the half range.
    special = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 1e6, -1e6, 2 ** -25, 2 ** -24 * 1.5,
                        -2 ** -26, 6e-8, 1e-10, np.inf, -np.inf, np.nan, -0.0, 0.1, -0.1, 1 / 3, 2049, 2051,
                        1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.0e38], dtype=np.float32)
    xf = np.concatenate([special, (rng.standard_normal(8) * 100).astype(np.float32)]).reshape(4, 8)
    xh = (rng.standard_normal((4, 8)) * np.float32(300)).astype(np.float16)
    xh[0, :4] = np.array([np.nan, np.inf, -0.0, 6e-8], dtype=np.float16)
    for batch in (4, 1):
        r, out = run(exe, tmp, f"half{batch}", {"xh": xh[:batch], "xf": xf[:batch]})
        check(f"float16 NAME_run batch {batch}", r.returncode == 0, r.stderr)
        if r.returncode != 0:
            continue
        load = lambda n: np.load(os.path.join(out, n + ".npy"))
        with np.errstate(over="ignore", invalid="ignore"):
            want = {
                "triple": (xh[:batch].astype(np.float32) * np.float32(3)).astype(np.float16),
                "twice": xh[:batch] + xh[:batch],
                "square": xh[:batch] * xh[:batch],
                "to_half": xf[:batch].astype(np.float16),
                "same": xh[:batch],
            }
            h = xf[:batch].astype(np.float16)
            relu = np.where(h > 0, h, np.float16(0)).astype(np.float32)
        for name, w in want.items():
            got = load(name)
            check(f"batch {batch} '{name}' is '<f2' and matches numpy bit for bit",
                  got.dtype == np.float16 and same_bits(got, w),
                  f"dtype {got.dtype}, got {got.ravel()[:8]}, want {w.ravel()[:8]}")
        got = load("to_bf16")
        check(f"batch {batch} 'to_bf16' is raw bfloat16 bits rounded to nearest even",
              got.dtype == np.uint16 and np.array_equal(got, bf16_bits(xf[:batch])),
              f"got {got.ravel()[:8]}, want {bf16_bits(xf[:batch]).ravel()[:8]}")
        got = load("relu_via_half")
        check(f"batch {batch} float16 intermediate", got.dtype == np.float32 and
              np.array_equal(np.nan_to_num(got, nan=7), np.nan_to_num(relu, nan=7)), f"got {got}, want {relu}")
    # A float32 file for a float16 input is refused with the reason.
    r, _ = run(exe, tmp, "wrongtype", {"xh": xh.astype(np.float32), "xf": xf})
    check("float32 data for a float16 input is refused", r.returncode == 1 and "float16" in r.stderr, r.stderr)
    # Operators without a 16-bit path are refused by name, nothing written.
    src = os.path.join(tmp, "mm16.onnx")
    open(src, "wb").write(model([helper.make_node("MatMul", ["a", "a"], ["y"], name="square16")],
                                [f16("a", [4, 4])], [f16("y", [4, 4])]))
    r = subprocess.run([args.hepml, "compile", src, "-o", os.path.join(tmp, "mm16")], capture_output=True, text=True)
    check("MatMul on float16 is refused naming the node", r.returncode == 1 and "square16" in r.stderr and
          "float16" in r.stderr and not os.path.exists(os.path.join(tmp, "mm16")), f"rc {r.returncode}: {r.stderr}")
    # bfloat16 input: raw bits in, float out.
    bf_in = helper.make_tensor_value_info("b", TensorProto.BFLOAT16, ["n", 8])
    exe, err = build(args, tmp, "bfin", model([helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], [bf_in],
                                              [f32("y", ["n", 8])]), 4)
    check("bfloat16 input model builds", exe is not None, err)
    if exe is not None:
        bits = bf16_bits(xf)
        r, out = run(exe, tmp, "bfin", {"b": bits})
        want = (bits.astype(np.uint32) << 16).view(np.float32)
        got = np.load(os.path.join(out, "y.npy")) if r.returncode == 0 else None
        check("bfloat16 bits in, float32 out", got is not None and
              np.array_equal(np.nan_to_num(got, nan=7), np.nan_to_num(want, nan=7)), r.stderr)


# ---- RoiAlign: numpy port of onnx/reference/ops/op_roi_align.py ----------------------

def roi_align_ref(x, rois, bidx, mode, oh, ow, sampling, scale, half_pixel):
    n_rois, C = rois.shape[0], x.shape[1]
    H, W = x.shape[2], x.shape[3]
    y = np.zeros((n_rois, C, oh, ow), dtype=np.float64)
    for r in range(n_rois):
        off = 0.5 if half_pixel else 0.0
        sw, sh = rois[r, 0] * scale - off, rois[r, 1] * scale - off
        ew, eh = rois[r, 2] * scale - off, rois[r, 3] * scale - off
        rw, rh = ew - sw, eh - sh
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = sampling if sampling > 0 else int(np.ceil(rh / oh))
        gw = sampling if sampling > 0 else int(np.ceil(rw / ow))
        count = max(gh * gw, 1)
        img = x[bidx[r]].astype(np.float64)
        for ph in range(oh):
            for pw in range(ow):
                acc = np.zeros(C)
                first = True
                for iy in range(gh):
                    yy = sh + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = sw + pw * bw + (ix + 0.5) * bw / gw
                        v = np.zeros((4, C))
                        if -1.0 <= yy <= H and -1.0 <= xx <= W:
                            yv, xv = max(yy, 0.0), max(xx, 0.0)
                            ylo, xlo = int(yv), int(xv)
                            if ylo >= H - 1:
                                yhi = ylo = H - 1
                                yv = float(ylo)
                            else:
                                yhi = ylo + 1
                            if xlo >= W - 1:
                                xhi = xlo = W - 1
                                xv = float(xlo)
                            else:
                                xhi = xlo + 1
                            ly, lx = yv - ylo, xv - xlo
                            hy, hx = 1 - ly, 1 - lx
                            v = np.stack([hy * hx * img[:, ylo, xlo], hy * lx * img[:, ylo, xhi],
                                          ly * hx * img[:, yhi, xlo], ly * lx * img[:, yhi, xhi]])
                        if mode == "max":
                            m = v.max(axis=0)
                            acc = m if first else np.maximum(acc, m)
                        else:
                            acc = acc + v.sum(axis=0)
                        first = False
                y[r, :, ph, pw] = acc if mode == "max" else acc / count
    return y.astype(np.float32)


def check_roialign(args, tmp):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 9, 11)).astype(np.float32)
    rois = np.array([[0, 0, 8, 8], [1.5, 2.25, 6.5, 7.75], [4, 1, 10, 8.5], [-2, -1, 3, 2], [7, 6, 20, 15],
                     [2.2, 3.3, 2.4, 3.5]], dtype=np.float32)
    bidx = np.array([0, 2, 1, 0, 2, 1], dtype=np.int64)
    cases = [
        (16, dict(mode="avg", output_height=3, output_width=4, sampling_ratio=2, spatial_scale=1.0,
                  coordinate_transformation_mode="half_pixel")),
        (16, dict(mode="avg", output_height=2, output_width=2, sampling_ratio=0, spatial_scale=0.5,
                  coordinate_transformation_mode="output_half_pixel")),
        (16, dict(mode="max", output_height=3, output_width=3, sampling_ratio=2, spatial_scale=1.0,
                  coordinate_transformation_mode="half_pixel")),
        (10, dict(mode="avg", output_height=5, output_width=5, sampling_ratio=0, spatial_scale=1.0)),
    ]
    for k, (opset, attrs) in enumerate(cases):
        f32 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
        node = helper.make_node("RoiAlign", ["x", "rois", "bidx"], ["y"], **attrs)
        inputs = [f32("x", [3, 2, 9, 11]), f32("rois", ["r", 4]),
                  helper.make_tensor_value_info("bidx", TensorProto.INT64, ["r"])]
        oh, ow = attrs["output_height"], attrs["output_width"]
        exe, err = build(args, tmp, f"roi{k}", model([node], inputs, [f32("y", ["r", 2, oh, ow])], opset=opset), 8)
        label = f"RoiAlign opset {opset} {attrs['mode']} {attrs.get('coordinate_transformation_mode', '')}".strip()
        check(label + " compiles and builds", exe is not None, err)
        if exe is None:
            continue
        r, out = run(exe, tmp, f"roi{k}", {"x": x, "rois": rois, "bidx": bidx})
        check(label + " runs", r.returncode == 0, r.stderr)
        if r.returncode != 0:
            continue
        got = np.load(os.path.join(out, "y.npy"))
        want = roi_align_ref(x, rois, bidx, attrs["mode"], oh, ow, attrs["sampling_ratio"], attrs["spatial_scale"],
                             attrs.get("coordinate_transformation_mode", "output_half_pixel") == "half_pixel")
        err = float(np.max(np.abs(got - want)))
        check(label + f" matches the reference (max abs error {err:.2e})", got.shape == want.shape and err <= 1e-5,
              f"shape {got.shape}")
        if k == 0:
            bad = bidx.copy()
            bad[3] = 3
            r, _ = run(exe, tmp, "roibad", {"x": x, "rois": rois, "bidx": bad})
            check("RoiAlign batch index out of range fails with a message",
                  r.returncode == 1 and "batch index" in r.stderr, f"rc {r.returncode}: {r.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--cxx", default="g++")
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    tmp = args.keep or tempfile.mkdtemp(prefix="hepml_compile_f16_")
    os.makedirs(tmp, exist_ok=True)
    try:
        check_float16(args, tmp)
        check_roialign(args, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
