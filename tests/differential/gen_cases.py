#!/usr/bin/python3
"""Generates the opset 18-21 differential suite: single-operator ONNX models plus inputs.

Every operator version that ONNX added or changed in opsets 18, 19, 20 and 21 of the
default domain (OP_VERSIONS below, taken from onnx/defs/operator_sets.h) gets several
cases: shapes (rank 0/1, empty dimensions where the operator allows them), attributes
and element types. A case is a folder

    OUT/<Op>-<since>_<tag>/model.onnx
                          /input_<K>.npy      graph inputs, in graph-input order
                          /reference_<K>.npy  only where an exact answer is known a priori
                          /case.json          op, version, inputs and outputs, tolerance

Expected outputs are written later by run_ort.mjs (ONNX Runtime) as expected_<K>.npy.

Graph inputs and outputs only use types a .npy file can hold (numbers, bool, strings).
Element types numpy lacks (float8, int4/uint4) are exercised inside the graph: a Cast
into the type, the operator under test, and a Cast (or DequantizeLinear) back out, or
an initializer/Constant holding the packed bytes.

onnx 1.12's checker only knows opsets <= 17, so no checker runs here; run_ort.mjs is the
validity check (a case ORT rejects is listed in the skips file with ORT's reason).

Usage: /usr/bin/python3 tests/differential/gen_cases.py --out DIR [--filter REGEX]
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper, numpy_helper

# Element types newer than onnx 1.12's enum (values from onnx.proto).
FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, UINT4, INT4 = 17, 18, 19, 20, 21, 22
F, D, H = TP.FLOAT, TP.DOUBLE, TP.FLOAT16
I8, I16, I32, I64 = TP.INT8, TP.INT16, TP.INT32, TP.INT64
U8, U16, U32, U64 = TP.UINT8, TP.UINT16, TP.UINT32, TP.UINT64
B, S = TP.BOOL, TP.STRING

# Lowest IR version that may import each opset (float8 needs IR 9, int4 IR 10).
IR_VERSION = {18: 8, 19: 9, 20: 9, 21: 10}

# Every operator version introduced in opsets 18..21 of ai.onnx (onnx/defs/operator_sets.h).
OP_VERSIONS = {
    18: ["Pad", "CenterCropPad", "Resize", "Mish", "OptionalGetElement", "OptionalHasElement",
         "Split", "Col2Im", "ScatterND", "ScatterElements", "ReduceSumSquare", "ReduceLogSum",
         "ReduceLogSumExp", "ReduceL1", "ReduceL2", "ReduceMax", "ReduceMin", "ReduceMean",
         "ReduceProd", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
         "GroupNormalization", "LpPool"],
    19: ["Equal", "AveragePool", "Cast", "CastLike", "Constant", "DeformConv",
         "DequantizeLinear", "Identity", "If", "Loop", "Pad", "QuantizeLinear", "Reshape",
         "Resize", "Scan", "Shape", "Size"],
    20: ["AffineGrid", "ConstantOfShape", "DFT", "Gelu", "GridSample", "ImageDecoder", "IsInf",
         "IsNaN", "ReduceMax", "ReduceMin", "RegexFullMatch", "StringConcat", "StringSplit"],
    21: ["Cast", "CastLike", "Constant", "ConstantOfShape", "DequantizeLinear", "Flatten",
         "GroupNormalization", "Identity", "If", "Loop", "Pad", "QLinearMatMul",
         "QuantizeLinear", "Reshape", "Scan", "Shape", "Size", "Squeeze", "Transpose",
         "Unsqueeze"],
}

NP_OF = {F: np.float32, D: np.float64, H: np.float16, I8: np.int8, I16: np.int16,
         I32: np.int32, I64: np.int64, U8: np.uint8, U16: np.uint16, U32: np.uint32,
         U64: np.uint64, B: np.bool_}
ONNX_OF = {np.dtype(v): k for k, v in NP_OF.items()}
SHORT = {F: "f32", D: "f64", H: "f16", I8: "i8", I16: "i16", I32: "i32", I64: "i64",
         U8: "u8", U16: "u16", U32: "u32", U64: "u64", B: "bool", S: "str",
         FLOAT8E4M3FN: "f8e4m3fn", FLOAT8E4M3FNUZ: "f8e4m3fnuz", FLOAT8E5M2: "f8e5m2",
         FLOAT8E5M2FNUZ: "f8e5m2fnuz", UINT4: "u4", INT4: "i4"}
FLOAT8_TYPES = [FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ]


def elem_of(a):
    a = np.asarray(a)
    if a.dtype.kind in "US":
        return S
    return ONNX_OF[a.dtype]


# ---------------------------------------------------------------------------------------
# Tensor helpers

def i64(*v):
    return np.array(v, dtype=np.int64)


def rand(rng, shape, elem=F, lo=-2.0, hi=2.0):
    """Seeded random data of an ONNX element type; integers are drawn in [lo, hi]."""
    dt = NP_OF[elem]
    if elem == B:
        return rng.random(shape) < 0.5
    if np.issubdtype(dt, np.floating):
        return rng.uniform(lo, hi, size=shape).astype(dt)
    info = np.iinfo(dt)
    lo_i, hi_i = max(int(lo), info.min), min(int(hi), info.max)
    return rng.integers(lo_i, hi_i, size=shape, endpoint=True, dtype=np.int64).astype(dt)


def init(name, a):
    a = np.asarray(a)
    if a.dtype.kind in "US":
        return helper.make_tensor(name, S, list(a.shape), [s.encode() for s in a.ravel()])
    return numpy_helper.from_array(a, name)


def raw_tensor(name, elem, dims, raw):
    t = TP()
    t.name = name
    t.data_type = elem
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def f8_table(elem):
    """Value of each of the 256 codes of a float8 type (NaN for NaN codes)."""
    vals = np.empty(256, dtype=np.float64)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        if elem in (FLOAT8E4M3FN, FLOAT8E4M3FNUZ):
            e, m, mbits = (code >> 3) & 0xF, code & 0x7, 3
            bias = 7 if elem == FLOAT8E4M3FN else 8
        else:
            e, m, mbits = (code >> 2) & 0x1F, code & 0x3, 2
            bias = 15 if elem == FLOAT8E5M2 else 16
        if elem in (FLOAT8E4M3FNUZ, FLOAT8E5M2FNUZ) and code == 0x80:
            v = np.nan
        elif elem == FLOAT8E4M3FN and e == 15 and m == 7:
            v = np.nan
        elif elem == FLOAT8E5M2 and e == 31:
            v = np.inf if m == 0 else np.nan
        elif e == 0:
            v = sign * (m / 2 ** mbits) * 2.0 ** (1 - bias)
        else:
            v = sign * (1 + m / 2 ** mbits) * 2.0 ** (e - bias)
        vals[code] = v
    return vals


def f8_bytes(elem, values):
    """Encodes values that are exactly representable in the float8 type."""
    table = f8_table(elem)
    out = bytearray()
    for v in np.asarray(values, dtype=np.float64).ravel():
        hits = np.nonzero(table == v)[0]
        if len(hits) == 0:
            raise ValueError(f"{v} is not representable in float8 type {elem}")
        out.append(int(hits[0]))
    return bytes(out)


def f8_tensor(name, elem, values):
    values = np.asarray(values, dtype=np.float64)
    return raw_tensor(name, elem, list(values.shape), f8_bytes(elem, values))


def f8_cast(elem, x, saturate=1):
    """float32 x cast to float8 type `elem` and back, by the ONNX spec (Operators.md, Cast):
    round to nearest with ties to the even code; a value whose rounding exceeds the
    largest finite one (infinities included) becomes +/-max with saturate, else +/-inf
    (E5M2) or NaN (the FN/FNUZ types); NaN stays NaN; the FNUZ types have no -0."""
    table = f8_table(elem)
    codes = [c for c in range(128) if np.isfinite(table[c])]
    fmax = table[codes[-1]]
    # Candidates: every finite magnitude plus the first value past max (its code's
    # parity decides ties like any other).
    cand = np.array([table[c] for c in codes] + [2 * fmax - table[codes[-2]]])
    cand_codes = codes + [codes[-1] + 1]
    out = []
    for v in np.asarray(x, np.float64).ravel():
        if np.isnan(v):
            out.append(np.nan)
            continue
        r = np.inf
        if np.isfinite(v):
            d = np.abs(cand - abs(v))
            best = np.flatnonzero(d == d.min())
            r = cand[best[0] if len(best) == 1 else [b for b in best if cand_codes[b] % 2 == 0][0]]
        if r > fmax:
            r = fmax if saturate else (np.inf if elem == FLOAT8E5M2 else np.nan)
        fnuz = elem in (FLOAT8E4M3FNUZ, FLOAT8E5M2FNUZ)
        out.append(r if (fnuz and r == 0) else np.copysign(r, v))
    return np.array(out, np.float32).reshape(np.shape(x))


def int4_tensor(name, elem, values):
    """Packs int4/uint4 values two per byte, first element in the low nibble."""
    values = np.asarray(values, dtype=np.int64)
    lo, hi = (-8, 7) if elem == INT4 else (0, 15)
    assert values.min(initial=lo) >= lo and values.max(initial=hi) <= hi
    nib = (values.ravel() & 0xF).astype(np.uint8)
    if len(nib) % 2:
        nib = np.append(nib, np.uint8(0))
    packed = nib[0::2] | (nib[1::2] << 4)
    return raw_tensor(name, elem, list(values.shape), packed.tobytes())


# Values exactly representable in all four float8 types.
F8_GRID = np.array([0, 0.25, -0.25, 0.5, -0.5, 0.75, -0.75, 1, -1, 1.5, -1.5, 2, -2, 3, -3,
                    4, -4, 6, -6, 8, -8], dtype=np.float64)


def png_bytes(img):
    """A minimal 8-bit PNG (grayscale HxW or RGB HxWx3), no filtering."""
    h, w = img.shape[:2]
    color = 0 if img.ndim == 2 else 2
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def luma601(rgb):
    """ITU-R BT.601 luma of 8-bit RGB rounded to nearest, in the fixed point that
    Pillow's convert("L") (onnx's ImageDecoder reference) uses."""
    r, g, b = (rgb[..., k].astype(np.uint32) for k in range(3))
    return ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16).astype(np.uint8)


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


# ---------------------------------------------------------------------------------------
# The suite

class Suite:
    def __init__(self, out, name_filter=None):
        self.out = out
        self.filter = re.compile(name_filter) if name_filter else None
        self.cases = []
        self.covered = {}

    def rng(self, key):
        return np.random.default_rng(zlib.crc32(key.encode()))

    def add(self, op, since, tag, nodes, inputs, outputs, inits=(), opset=None, tol=None,
            references=None, desc="", ort_deviation=None):
        """inputs: [(name, array)]; outputs: [(name, elem_type)].

        references: exact expected outputs known without running anything (pixels of a
        generated image, a reshape of values the intermediate type holds exactly, a
        conversion the spec defines). They stand in where ORT cannot run the case, and
        run_ort.mjs checks them against ORT where it can.
        ort_deviation: where ORT is known to depart from the ONNX spec on this case, what
        the spec says (case.json keeps it); run_ort.mjs then expects the references (the
        spec's answer) wherever ORT's outputs differ from them.
        """
        assert ort_deviation is None or references is not None, "ort_deviation needs references"
        opset = opset or since
        name = f"{op}-{since}_{tag}"
        assert since in OP_VERSIONS and op in OP_VERSIONS[since], (op, since)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        assert all(c["name"] != name for c in self.cases), f"duplicate case {name}"
        self.covered.setdefault((op, since), []).append(name)
        if self.filter and not self.filter.search(name):
            return
        graph = helper.make_graph(
            nodes, name.replace("-", "_"),
            [helper.make_tensor_value_info(n, elem_of(a), list(np.shape(a))) for n, a in inputs],
            [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
            initializer=list(inits))
        model = helper.make_model(graph, producer_name="hepml-gen_cases",
                                  opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = IR_VERSION[opset]
        d = os.path.join(self.out, name)
        os.makedirs(d)
        onnx.save(model, os.path.join(d, "model.onnx"))
        meta_in = []
        for k, (n, a) in enumerate(inputs):
            a = np.asarray(a)
            np.save(os.path.join(d, f"input_{k}.npy"), a)
            meta_in.append({"name": n, "file": f"input_{k}.npy", "dtype": str(a.dtype),
                            "shape": list(a.shape)})
        meta_out = [{"name": n, "file": f"expected_{k}.npy", "elem_type": SHORT.get(t, str(t))}
                    for k, (n, t) in enumerate(outputs)]
        if references is not None:
            assert len(references) == len(outputs)
            for k, r in enumerate(references):
                np.save(os.path.join(d, f"reference_{k}.npy"), r)
                meta_out[k]["reference"] = f"reference_{k}.npy"
        meta = {"name": name, "op": op, "since": since, "opset": opset, "description": desc,
                "inputs": meta_in, "outputs": meta_out}
        if tol:
            meta["tolerance"] = tol
        if ort_deviation:
            meta["ort_deviation"] = ort_deviation
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump(meta, f, indent=1)
        self.cases.append(meta)

    def unary(self, op, since, tag, x, out_elem, desc="", references=None, **attrs):
        self.add(op, since, tag, [N(op, ["x"], ["y"], **attrs)], [("x", x)], [("y", out_elem)],
                 desc=desc, references=references)

    def via(self, op, since, tag, x, mid, back, extra_ins=(), inits=(), desc="", outs=None,
            references=None, **attrs):
        """Cast x into `mid`, run op, Cast the (first) result to `back`."""
        nodes = [N("Cast", ["x"], ["xm"], to=mid),
                 N(op, ["xm"] + [n for n, _ in extra_ins], ["ym"], **attrs),
                 N("Cast", ["ym"], ["y"], to=back)]
        self.add(op, since, tag, nodes, [("x", x)] + list(extra_ins), outs or [("y", back)],
                 inits=inits, desc=desc, references=references)


# ---------------------------------------------------------------------------------------
# Opset 18

REDUCE18 = ["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
            "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"]


def gen_reduce(s, op, since):
    rng = s.rng(f"{op}{since}")
    lo, hi = (0.1, 2.0) if op == "ReduceLogSum" else (-2.0, 2.0)
    if op == "ReduceProd":
        lo, hi = -1.5, 1.5
    x = rand(rng, (3, 4, 5), F, lo, hi)
    s.add(op, since, "axes1_keepdims_f32", [N(op, ["x", "axes"], ["y"], keepdims=1)],
          [("x", x)], [("y", F)], inits=[init("axes", i64(1))],
          desc="axes as a constant input, keepdims=1")
    s.add(op, since, "axes_input_neg_f64", [N(op, ["x", "axes"], ["y"], keepdims=0)],
          [("x", rand(rng, (2, 3, 4), D, lo, hi)), ("axes", i64(-1, 0))], [("y", D)],
          desc="axes as a graph input with a negative axis, keepdims=0")
    s.add(op, since, "no_axes_all_f32", [N(op, ["x"], ["y"])], [("x", x)], [("y", F)],
          desc="axes omitted: reduce over all axes, keepdims default 1")
    s.add(op, since, "noop_empty_axes_f32", [N(op, ["x"], ["y"], noop_with_empty_axes=1)],
          [("x", x)], [("y", F)], desc="axes omitted and noop_with_empty_axes=1: identity")
    s.add(op, since, "empty_axes_tensor_f32",
          [N(op, ["x", "axes"], ["y"], keepdims=0)], [("x", x)], [("y", F)],
          inits=[init("axes", np.zeros((0,), np.int64))],
          desc="axes given as an empty tensor, noop_with_empty_axes=0: reduce all to rank 0")
    s.add(op, since, "axes2_f16", [N(op, ["x", "axes"], ["y"], keepdims=1)],
          [("x", rand(rng, (2, 3, 6), H, lo, hi))], [("y", H)], inits=[init("axes", i64(2))],
          desc="float16")
    if op in ("ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceMean"):
        s.add(op, since, "axes02_i32", [N(op, ["x", "axes"], ["y"], keepdims=0)],
              [("x", rand(rng, (3, 2, 4), I32, -5, 5))], [("y", I32)],
              inits=[init("axes", i64(0, 2))], desc="int32")
    if op in ("ReduceMax", "ReduceMin"):
        s.add(op, since, "axes1_i64", [N(op, ["x", "axes"], ["y"], keepdims=1)],
              [("x", rand(rng, (4, 5), I64, -1000, 1000))], [("y", I64)],
              inits=[init("axes", i64(1))], desc="int64")
        s.add(op, since, "axes0_u8", [N(op, ["x", "axes"], ["y"], keepdims=0)],
              [("x", rand(rng, (4, 5), U8, 0, 255))], [("y", U8)],
              inits=[init("axes", i64(0))], desc="uint8")
    if op != "ReduceMean":  # the mean of an empty set is undefined (onnx/onnx#5568)
        s.add(op, since, "empty_reduced_axis_f32", [N(op, ["x", "axes"], ["y"], keepdims=0)],
              [("x", np.zeros((0, 4), np.float32))], [("y", F)], inits=[init("axes", i64(0))],
              desc="reduction over an empty axis: the reduction's identity (0, 1, -inf, +inf)")
    s.add(op, since, "empty_kept_axis_f32", [N(op, ["x", "axes"], ["y"], keepdims=1)],
          [("x", np.zeros((0, 4), np.float32))], [("y", F)], inits=[init("axes", i64(1))],
          desc="reduction of a non-empty axis of an empty tensor")
    s.add(op, since, "rank0_f32", [N(op, ["x"], ["y"], keepdims=0)],
          [("x", np.array(rand(rng, (), F, max(lo, 0.5), hi)))], [("y", F)],
          desc="rank-0 input, all axes")


def gen_opset18(s):
    for op in REDUCE18:
        gen_reduce(s, op, 18)

    # Bitwise ops (new in 18).
    for op, fn in (("BitwiseAnd", np.bitwise_and), ("BitwiseOr", np.bitwise_or),
                   ("BitwiseXor", np.bitwise_xor)):
        rng = s.rng(op)
        for tag, ta, tb, elem, lo, hi in (
                ("bcast_i32", (3, 4), (4,), I32, -2 ** 31, 2 ** 31 - 1),
                ("u8", (2, 3, 4), (2, 3, 4), U8, 0, 255),
                ("i64_neg", (5,), (5,), I64, -2 ** 40, 2 ** 40),
                ("u64_big", (4,), (4,), U64, 0, 2 ** 62),
                ("i8_rank0_bcast", (), (3,), I8, -128, 127),
                ("u16_u32", (2, 2), (1, 2), U16, 0, 65535),
                ("u32", (3,), (3,), U32, 0, 2 ** 32 - 1),
                ("i16_empty", (0, 3), (3,), I16, -100, 100)):
            if elem == U64:
                a = rng.integers(0, 2 ** 62, size=ta, dtype=np.uint64) * np.uint64(3)
                b = rng.integers(0, 2 ** 62, size=tb, dtype=np.uint64) * np.uint64(3)
            else:
                a, b = rand(rng, ta, elem, lo, hi), rand(rng, tb, elem, lo, hi)
            s.add(op, 18, tag.replace("u16_u32", "u16_bcast"), [N(op, ["a", "b"], ["c"])],
                  [("a", np.asarray(a)), ("b", np.asarray(b))], [("c", elem)])
    rng = s.rng("BitwiseNot")
    for tag, shape, elem, lo, hi in (("i32", (3, 4), I32, -2 ** 31, 2 ** 31 - 1),
                                     ("u8", (7,), U8, 0, 255),
                                     ("i64", (2, 3), I64, -2 ** 50, 2 ** 50),
                                     ("u64", (3,), U64, 0, 2 ** 62),
                                     ("u16", (2, 2), U16, 0, 65535),
                                     ("i8_rank0", (), I8, -128, 127),
                                     ("u32_empty", (2, 0), U32, 0, 10)):
        s.unary("BitwiseNot", 18, tag, np.asarray(rand(rng, shape, elem, lo, hi)), elem)

    # Pad-18: the optional `axes` input.
    gen_pad(s, 18)

    # CenterCropPad (new in 18).
    rng = s.rng("CenterCropPad")
    for tag, x, shape, axes in (
            ("crop_2d_f32", rand(rng, (5, 7), F), i64(3, 4), None),
            ("pad_2d_f32", rand(rng, (2, 3), F), i64(4, 6), None),
            ("hwc_axes01_mixed_i32", rand(rng, (4, 5, 3), I32, -9, 9), i64(6, 2), [0, 1]),
            ("nchw_axes_neg_f32", rand(rng, (1, 3, 10, 9), F), i64(7, 12), [-2, -1]),
            ("odd_pad_1d_f64", rand(rng, (3,), D), i64(6), None),
            ("odd_crop_1d_u8", rand(rng, (8,), U8, 0, 255), i64(3), None)):
        attrs = {"axes": axes} if axes is not None else {}
        s.add("CenterCropPad", 18, tag, [N("CenterCropPad", ["x", "shape"], ["y"], **attrs)],
              [("x", x)], [("y", elem_of(x))], inits=[init("shape", shape)])

    # Resize-18: antialias, axes, keep_aspect_ratio_policy.
    rng = s.rng("Resize18")
    x = rand(rng, (1, 2, 8, 8), F, 0, 1)
    empty = ""
    s.add("Resize", 18, "linear_antialias_down_scales",
          [N("Resize", ["x", empty, "scales"], ["y"], mode="linear", antialias=1)],
          [("x", x)], [("y", F)], inits=[init("scales", np.array([1, 1, 0.5, 0.375], np.float32))])
    s.add("Resize", 18, "cubic_antialias_down_sizes",
          [N("Resize", ["x", empty, empty, "sizes"], ["y"], mode="cubic", antialias=1)],
          [("x", x)], [("y", F)], inits=[init("sizes", i64(1, 2, 5, 3))])
    s.add("Resize", 18, "nearest_axes23_scales",
          [N("Resize", ["x", empty, "scales"], ["y"], mode="nearest", axes=[2, 3])],
          [("x", x)], [("y", F)], inits=[init("scales", np.array([1.5, 0.5], np.float32))])
    s.add("Resize", 18, "linear_axes_neg_sizes",
          [N("Resize", ["x", empty, empty, "sizes"], ["y"], mode="linear", axes=[-1])],
          [("x", x)], [("y", F)], inits=[init("sizes", i64(13))])
    for pol, sizes in (("not_larger", i64(5, 7)), ("not_smaller", i64(5, 7))):
        s.add("Resize", 18, f"keep_aspect_{pol}",
              [N("Resize", ["x", empty, empty, "sizes"], ["y"], mode="linear", axes=[2, 3],
                 keep_aspect_ratio_policy=pol)],
              [("x", rand(rng, (1, 1, 6, 4), F, 0, 1))], [("y", F)], inits=[init("sizes", sizes)])
    s.add("Resize", 18, "linear_up_half_pixel",
          [N("Resize", ["x", empty, "scales"], ["y"], mode="linear",
             coordinate_transformation_mode="half_pixel")],
          [("x", x)], [("y", F)], inits=[init("scales", np.array([1, 1, 2, 1.5], np.float32))])
    s.add("Resize", 18, "nearest_u8_asymmetric_ceil",
          [N("Resize", ["x", empty, "scales"], ["y"], mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="round_prefer_ceil")],
          [("x", rand(rng, (1, 1, 4, 5), U8, 0, 255))], [("y", U8)],
          inits=[init("scales", np.array([1, 1, 2, 3], np.float32))])
    s.add("Resize", 18, "tf_crop_and_resize_axes",
          [N("Resize", ["x", "roi", empty, "sizes"], ["y"], mode="linear", axes=[2, 3],
             coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-1.0)],
          [("x", x)], [("y", F)],
          inits=[init("roi", np.array([0.1, -0.2, 0.8, 1.1], np.float32)),
                 init("sizes", i64(5, 6))])
    s.add("Resize", 18, "cubic_exclude_outside_up",
          [N("Resize", ["x", empty, "scales"], ["y"], mode="cubic", exclude_outside=1,
             cubic_coeff_a=-0.5)],
          [("x", rand(rng, (1, 1, 4, 4), F))], [("y", F)],
          inits=[init("scales", np.array([1, 1, 2, 2], np.float32))])

    # Mish (new in 18).
    rng = s.rng("Mish")
    s.unary("Mish", 18, "f32", rand(rng, (3, 4), F, -30, 30), F)
    s.unary("Mish", 18, "f64", rand(rng, (5,), D, -5, 5), D)
    s.unary("Mish", 18, "f16", rand(rng, (2, 3), H, -5, 5), H)
    s.unary("Mish", 18, "rank0_f32", np.array(np.float32(0.7)), F)
    s.unary("Mish", 18, "empty_f32", np.zeros((0, 4), np.float32), F)

    # OptionalGetElement-18 / OptionalHasElement-18 accept plain tensors and sequences.
    rng = s.rng("Optional")
    x = rand(rng, (2, 3), F)
    s.add("OptionalGetElement", 18, "tensor_input_f32", [N("OptionalGetElement", ["x"], ["y"])],
          [("x", x)], [("y", F)], desc="a plain tensor input (new in 18)")
    s.add("OptionalGetElement", 18, "optional_tensor_i64",
          [N("Optional", ["x"], ["o"]), N("OptionalGetElement", ["o"], ["y"])],
          [("x", rand(rng, (4,), I64, -9, 9))], [("y", I64)])
    s.add("OptionalGetElement", 18, "sequence_input",
          [N("SequenceConstruct", ["a", "b"], ["seq"]), N("OptionalGetElement", ["seq"], ["seq2"]),
           N("SequenceAt", ["seq2", "pos"], ["y"])],
          [("a", x), ("b", rand(rng, (1, 3), F))], [("y", F)], inits=[init("pos", np.array(1, np.int64))],
          desc="a sequence input (new in 18), element read back with SequenceAt")
    s.add("OptionalHasElement", 18, "optional_full",
          [N("Optional", ["x"], ["o"]), N("OptionalHasElement", ["o"], ["b"])],
          [("x", x)], [("b", B)])
    s.add("OptionalHasElement", 18, "tensor_input",
          [N("OptionalHasElement", ["x"], ["b"])], [("x", x)], [("b", B)])
    s.add("OptionalHasElement", 18, "optional_empty",
          [N("Optional", [], ["o"], type=helper.make_tensor_type_proto(F, None)),
           N("OptionalHasElement", ["o"], ["b"])], [], [("b", B)],
          desc="an empty optional built with Optional(type=...)")
    s.add("OptionalHasElement", 18, "missing_input",
          [N("OptionalHasElement", [], ["b"])], [], [("b", B)],
          desc="input omitted altogether (legal since 18): false")

    # Split-18: num_outputs.
    rng = s.rng("Split")
    for tag, x, axis, k, split in (
            ("even_axis0_f32", rand(rng, (6, 4), F), 0, 3, None),
            ("uneven_1d_f32", rand(rng, (7,), F), 0, 3, None),
            ("uneven_neg_axis_i64", rand(rng, (2, 5), I64, -9, 9), -1, 2, None),
            ("ones_bool", rand(rng, (5, 3), B), 0, 5, None),
            ("empty_f32", np.zeros((0, 4), np.float32), 1, 2, None),
            ("split_input_f16", rand(rng, (4, 6), H), 1, 3, i64(1, 2, 3)),
            ("split_input_zero_u8", rand(rng, (5,), U8, 0, 255), 0, 3, i64(2, 0, 3))):
        outs = [f"y{i}" for i in range(k)]
        if split is None:
            node = N("Split", ["x"], outs, axis=axis, num_outputs=k)
            inits = []
        else:
            node = N("Split", ["x", "split"], outs, axis=axis)
            inits = [init("split", split)]
        s.add("Split", 18, tag, [node], [("x", x)], [(o, elem_of(x)) for o in outs], inits=inits)

    # Col2Im (new in 18).
    rng = s.rng("Col2Im")
    for tag, cols_shape, image, block, attrs, elem in (
            ("basic_1x5", (1, 5, 5), i64(5, 5), i64(1, 5), {}, F),
            ("strides2_batch2_c2", (2, 8, 4), i64(4, 4), i64(2, 2), {"strides": [2, 2]}, F),
            ("pads1_3x3", (1, 9, 25), i64(5, 5), i64(3, 3), {"pads": [1, 1, 1, 1]}, F),
            ("dilations2", (1, 4, 16), i64(6, 6), i64(2, 2), {"dilations": [2, 2]}, F),
            ("asym_pads_strides_f64", (1, 6, 6), i64(4, 5), i64(2, 3),
             {"pads": [0, 1, 1, 0], "strides": [2, 1]}, D),
            ("3d_image", (1, 4, 27), i64(3, 4, 4), i64(1, 2, 2), {}, F)):
        s.add("Col2Im", 18, tag, [N("Col2Im", ["x", "image_shape", "block_shape"], ["y"], **attrs)],
              [("x", rand(rng, cols_shape, elem))], [("y", elem)],
              inits=[init("image_shape", image), init("block_shape", block)])

    # ScatterND-18 / ScatterElements-18: reduction max/min.
    rng = s.rng("ScatterND")
    s.add("ScatterND", 18, "max_slices_f32", [N("ScatterND", ["d", "i", "u"], ["y"], reduction="max")],
          [("d", rand(rng, (4, 4, 4), F)), ("i", i64([0], [2], [0])), ("u", rand(rng, (3, 4, 4), F))],
          [("y", F)], desc="duplicate index [0] combines with max")
    s.add("ScatterND", 18, "min_elems_dup_i32", [N("ScatterND", ["d", "i", "u"], ["y"], reduction="min")],
          [("d", rand(rng, (8,), I32, -50, 50)), ("i", i64([4], [3], [1], [4])),
           ("u", rand(rng, (4,), I32, -60, 60))], [("y", I32)])
    s.add("ScatterND", 18, "max_2d_index_f64", [N("ScatterND", ["d", "i", "u"], ["y"], reduction="max")],
          [("d", rand(rng, (3, 5), D)), ("i", i64([0, 1], [2, 4], [0, 1])), ("u", rand(rng, (3,), D))],
          [("y", D)])
    s.add("ScatterND", 18, "min_f16", [N("ScatterND", ["d", "i", "u"], ["y"], reduction="min")],
          [("d", rand(rng, (2, 3), H)), ("i", i64([1])), ("u", rand(rng, (1, 3), H))], [("y", H)])
    s.add("ScatterND", 18, "none_i64", [N("ScatterND", ["d", "i", "u"], ["y"])],
          [("d", rand(rng, (2, 2, 3), I64, -9, 9)), ("i", i64([1, 0], [0, 1])),
           ("u", rand(rng, (2, 3), I64, -9, 9))], [("y", I64)], desc="reduction=none baseline")
    rng = s.rng("ScatterElements")
    s.add("ScatterElements", 18, "max_axis0_dup_f32",
          [N("ScatterElements", ["d", "i", "u"], ["y"], axis=0, reduction="max")],
          [("d", rand(rng, (3, 3), F)), ("i", i64([1, 0, 2], [1, 2, 2])), ("u", rand(rng, (2, 3), F))],
          [("y", F)])
    s.add("ScatterElements", 18, "min_axis1_negidx_i64",
          [N("ScatterElements", ["d", "i", "u"], ["y"], axis=1, reduction="min")],
          [("d", rand(rng, (2, 5), I64, -99, 99)), ("i", i64([-1, 0], [3, -1])),
           ("u", rand(rng, (2, 2), I64, -99, 99))], [("y", I64)])
    s.add("ScatterElements", 18, "max_axis_neg_rank3_f64",
          [N("ScatterElements", ["d", "i", "u"], ["y"], axis=-1, reduction="max")],
          [("d", rand(rng, (2, 2, 4), D)), ("i", rng.integers(0, 4, (2, 2, 3))), ("u", rand(rng, (2, 2, 3), D))],
          [("y", D)])
    s.add("ScatterElements", 18, "min_i32",
          [N("ScatterElements", ["d", "i", "u"], ["y"], axis=0, reduction="min")],
          [("d", rand(rng, (4,), I32, -9, 9)), ("i", i64(3, 3, 0)), ("u", rand(rng, (3,), I32, -9, 9))],
          [("y", I32)])
    s.add("ScatterElements", 18, "add_f32",
          [N("ScatterElements", ["d", "i", "u"], ["y"], axis=0, reduction="add")],
          [("d", rand(rng, (3, 2), F)), ("i", i64([0, 0], [0, 2])), ("u", rand(rng, (2, 2), F))],
          [("y", F)], desc="reduction=add baseline")

    # GroupNormalization-18 (scale/bias per group).
    rng = s.rng("GroupNormalization18")
    for tag, shape, g, elem, eps in (("nchw_g2_f32", (2, 4, 3, 3), 2, F, None),
                                     ("ncl_g3_eps_f32", (1, 6, 5), 3, F, 1e-3),
                                     ("g1_f32", (3, 4, 2, 2), 1, F, None),
                                     ("g_eq_c_f64", (2, 3, 4), 3, D, None),
                                     ("f16", (2, 4, 3), 2, H, None)):
        attrs = {"num_groups": g}
        if eps:
            attrs["epsilon"] = eps
        s.add("GroupNormalization", 18, tag, [N("GroupNormalization", ["x", "scale", "bias"], ["y"], **attrs)],
              [("x", rand(rng, shape, elem, -3, 3)), ("scale", rand(rng, (g,), elem)),
               ("bias", rand(rng, (g,), elem))], [("y", elem)])

    # LpPool-18: ceil_mode, dilations.
    rng = s.rng("LpPool")
    for tag, shape, attrs in (
            ("p2_ceil_strides2", (1, 2, 7, 7), dict(p=2, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
            ("p2_dilations2", (1, 2, 7, 7), dict(p=2, kernel_shape=[2, 2], dilations=[2, 2])),
            ("p1_1d_pads", (1, 3, 10), dict(p=1, kernel_shape=[3], pads=[1, 1])),
            ("p3_same_upper", (1, 1, 5, 5), dict(p=3, kernel_shape=[2, 2], auto_pad="SAME_UPPER")),
            ("p2_dil_ceil_pads", (2, 1, 9, 8), dict(p=2, kernel_shape=[3, 2], dilations=[2, 1],
                                                    strides=[2, 2], pads=[1, 0, 1, 1], ceil_mode=1))):
        s.add("LpPool", 18, tag, [N("LpPool", ["x"], ["y"], **attrs)], [("x", rand(rng, shape, F))], [("y", F)])


def gen_pad(s, since):
    rng = s.rng(f"Pad{since}")
    modes = ["constant", "reflect", "edge"] + (["wrap"] if since >= 19 else [])

    def case(tag, x, pads, mode, value=None, axes=None, pads_input=False, desc=""):
        ins = ["x", "pads", "" if value is None else "value", "" if axes is None else "axes"]
        while ins and ins[-1] == "":
            ins.pop()
        inits = [] if pads_input else [init("pads", pads)]
        inputs = [("x", x)] + ([("pads", pads)] if pads_input else [])
        if value is not None:
            inits.append(init("value", value))
        if axes is not None:
            inits.append(init("axes", axes))
        s.add("Pad", since, tag, [N("Pad", ins, ["y"], mode=mode)], inputs, [("y", elem_of(x))],
              inits=inits, desc=desc)

    x3 = rand(rng, (2, 3, 4), F)
    if since == 18:
        case("axes1_constant_f32", x3, i64(1, 2), "constant", np.array(1.5, np.float32), i64(1),
             desc="pads for axis 1 only")
        case("axes_neg_reflect_f32", x3, i64(1, 0, 2, 1), "reflect", axes=i64(-1, 0))
        case("no_axes_edge_i32", rand(rng, (3, 2), I32, -9, 9), i64(1, 0, 2, 1), "edge")
        case("axes0_1d_constant_i64", rand(rng, (4,), I64, -9, 9), i64(2, 3), "constant",
             np.array(-7, np.int64), i64(0))
        case("empty_dim_constant_f32", np.zeros((0, 3), np.float32), i64(2, 1, 0, 1), "constant",
             np.array(2.0, np.float32), desc="an empty dimension padded to non-empty")
        case("bool_constant_axes", rand(rng, (2, 3), B), i64(1, 1), "constant",
             np.array(True), i64(1))
        case("negative_pads_crop_f32", x3, i64(-1, 1), "constant", axes=i64(2),
             desc="negative pads crop")
        case("pads_graph_input_edge_f64", rand(rng, (3, 3), D), i64(0, 2, 1, 0), "edge",
             pads_input=True, desc="pads as a graph input")
        case("axes_u8_reflect", rand(rng, (2, 5), U8, 0, 255), i64(3, 2), "reflect", axes=i64(1))
    elif since == 19:
        case("wrap_2d_f32", rand(rng, (3, 4), F), i64(1, 2, 2, 1), "wrap")
        case("wrap_axes1_i64", rand(rng, (2, 5), I64, -9, 9), i64(3, 4), "wrap", axes=i64(1))
        case("wrap_full_size_f32", rand(rng, (2, 3), F), i64(2, 3, 2, 3), "wrap",
             desc="pads equal to the dimension size")
        case("wrap_3d_axes_neg_u8", rand(rng, (2, 3, 4), U8, 0, 255), i64(1, 0, 2, 1), "wrap",
             axes=i64(-1, 0))
        case("reflect_f32", x3, i64(0, 1, 2, 0, 1, 1), "reflect")
        case("constant_default_value_i32", rand(rng, (2, 2), I32, -9, 9), i64(1, 1, 1, 1), "constant")
    else:
        for mode in modes:
            case(f"{mode}_f32", rand(rng, (3, 4), F), i64(1, 2, 2, 1), mode)
        case("constant_axes_i32", rand(rng, (2, 3, 2), I32, -9, 9), i64(1, 1), "constant",
             np.array(5, np.int32), i64(1))
        # int4 data: Cast to int4 inside the graph, pad, Cast back to int8.
        nodes = [N("Cast", ["x"], ["x4"], to=INT4), N("Pad", ["x4", "pads"], ["y4"], mode="constant"),
                 N("Cast", ["y4"], ["y"], to=I8)]
        x4 = rand(rng, (2, 3), I8, -8, 7)
        s.add("Pad", 21, "int4_constant_via_cast", nodes, [("x", x4)],
              [("y", I8)], inits=[init("pads", i64(1, 0, 0, 2))], desc="int4 data (new in 21)",
              references=[np.pad(x4, ((1, 0), (0, 2)))])
        nodes = [N("Cast", ["x"], ["x4"], to=UINT4), N("Pad", ["x4", "pads"], ["y4"], mode="edge"),
                 N("Cast", ["y4"], ["y"], to=U8)]
        xu4 = rand(rng, (3,), U8, 0, 15)
        s.add("Pad", 21, "uint4_edge_via_cast", nodes, [("x", xu4)],
              [("y", U8)], inits=[init("pads", i64(2, 1))], desc="uint4 data (new in 21)",
              references=[np.pad(xu4, (2, 1), mode="edge")])


# ---------------------------------------------------------------------------------------
# Opset 19

CAST_SPECIAL = np.array([0, 0.1, -0.3, 1.0, 2.5, 3.5, 447, 448, 449, 464, 500, 57344, 61440,
                         1e5, -1e5, 1e-3, 3e-3, -2e-4, 1.7e-5, np.inf, -np.inf, np.nan],
                        dtype=np.float32)


def gen_cast(s, op, since):
    """Cast / CastLike: the float8 types with saturate (19) and int4/uint4 (21)."""
    rng = s.rng(f"{op}{since}")

    def cast(tag, x, to, desc="", back=None, references=None, ort_deviation=None, **attrs):
        if op == "Cast":
            nodes = [N("Cast", ["x"], ["y" if back is None else "m"], to=to, **attrs)]
            inits = []
        else:
            like = np.zeros((1,), NP_OF[to]) if to in NP_OF else None
            like_t = (init("like", like) if like is not None else
                      f8_tensor("like", to, [0.0]) if to in FLOAT8_TYPES else
                      int4_tensor("like", to, [0]) if to in (INT4, UINT4) else
                      init("like", np.array([""])))
            nodes = [N("CastLike", ["x", "like"], ["y" if back is None else "m"], **attrs)]
            inits = [like_t]
        if back is not None:
            nodes.append(N("Cast", ["m"], ["y"], to=back))
        s.add(op, since, tag, nodes, [("x", x)], [("y", to if back is None else back)],
              inits=inits, desc=desc, references=references, ort_deviation=ort_deviation)

    # ORT (1.30) departs from the spec in two places these cases reach: float8e5m2 with
    # saturate=0 gives NaN, not +/-inf, for values that round (to even) past 57344, i.e.
    # 61440 <= |x| < 65536; and float -> int4/uint4 rounds ties away from zero (-0.5 -> -1)
    # where onnx docs/technical/int4.md rounds to nearest even (-0.5 -> 0).
    e5m2_nosat = ("Cast float8e5m2, saturate=0: [x] > FLT_MAX gives +/-Inf (Operators.md, Cast); "
                  "ORT gives NaN for 61440 <= |x| < 65536")
    int4_ties = ("Cast to int4/uint4 rounds to nearest, ties to even (docs/technical/int4.md); "
                 "ORT rounds ties away from zero")
    if since == 19:
        for elem in FLOAT8_TYPES:
            for sat in (1, 0):
                cast(f"f32_to_{SHORT[elem]}_sat{sat}_roundtrip", CAST_SPECIAL, elem, back=F,
                     saturate=sat, desc="rounding, subnormals, overflow with/without saturation",
                     references=[f8_cast(elem, CAST_SPECIAL, sat)],
                     ort_deviation=e5m2_nosat if (elem, sat) == (FLOAT8E5M2, 0) else None)
        cast("f16_to_f8e4m3fn_roundtrip", rand(rng, (3, 5), H, -300, 300), FLOAT8E4M3FN, back=H)
        cast("f32_to_f8e5m2_to_f16", rand(rng, (4,), F, -10, 10), FLOAT8E5M2, back=H)
        cast("f32_to_f16_overflow", np.array([1.0, 65504, 65520, 1e6, -1e6, 1e-8, np.nan], np.float32), H)
        cast("f32_to_i32_trunc", rand(rng, (2, 3), F, -100, 100), I32, desc="truncation toward zero")
        cast("i64_to_f32", rand(rng, (5,), I64, -2 ** 40, 2 ** 40), F)
        cast("f32_to_bool", np.array([0, -0.0, 1.5, -2, 1e-30], np.float32), B)
        cast("bool_to_f32", rand(rng, (2, 2), B), F)
        cast("f64_to_f32_rank0", np.array(np.pi), F)
        cast("u8_to_i8_empty", np.zeros((0, 2), np.uint8), I8)
        cast("string_to_f32", np.array(["1.5", "-2", "1e3", "0.1", "7"]), F)
        cast("string_to_i64", np.array([["12", "-3"], ["0", "123456789012"]]), I64)
        cast("i32_to_string", rand(rng, (4,), I32, -1000, 1000), S)
    else:
        xi4 = np.array([-8, -7.9, -1.5, -0.5, 0, 0.4, 3.99, 7], np.float32)
        cast("f32_to_i4_roundtrip", xi4, INT4, back=F, desc="int4 (new in 21); ties -1.5 and -0.5",
             references=[np.rint(xi4) + np.float32(0)], ort_deviation=int4_ties)
        cast("i32_to_u4_roundtrip", rand(rng, (2, 3), I32, 0, 15), UINT4, back=I32)
        cast("i8_to_i4_to_i64", rand(rng, (5,), I8, -8, 7), INT4, back=I64)
        cast("u8_to_u4_odd_len", rand(rng, (3, 3), U8, 0, 15), UINT4, back=U8,
             desc="odd element count (half-filled last byte)")
        cast("f32_to_f8e4m3fn_sat_roundtrip", CAST_SPECIAL, FLOAT8E4M3FN, back=F, saturate=1,
             references=[f8_cast(FLOAT8E4M3FN, CAST_SPECIAL, 1)])
        cast("f32_to_f8e5m2_nosat_roundtrip", CAST_SPECIAL, FLOAT8E5M2, back=F, saturate=0,
             references=[f8_cast(FLOAT8E5M2, CAST_SPECIAL, 0)], ort_deviation=e5m2_nosat)
        cast("f16_to_f32", rand(rng, (3, 2), H), F)
        cast("f32_to_u8", rand(rng, (6,), F, 0, 250), U8)
        cast("i64_to_bool_rank0", np.array(-3, np.int64), B)


def gen_opset19(s):
    # Equal-19: strings.
    rng = s.rng("Equal")
    s.add("Equal", 19, "string", [N("Equal", ["a", "b"], ["c"])],
          [("a", np.array(["jet", "muon", "", "tau"])), ("b", np.array(["jet", "Muon", "", "tau "]))],
          [("c", B)])
    s.add("Equal", 19, "string_bcast", [N("Equal", ["a", "b"], ["c"])],
          [("a", np.array([["b", "c", "uds"], ["g", "c", "b"]])), ("b", np.array(["b", "c", "g"]))],
          [("c", B)])
    s.add("Equal", 19, "string_rank0", [N("Equal", ["a", "b"], ["c"])],
          [("a", np.array("électron")), ("b", np.array(["électron", "electron"]))], [("c", B)])
    s.add("Equal", 19, "f32_bcast", [N("Equal", ["a", "b"], ["c"])],
          [("a", rand(rng, (3, 4), I32, 0, 2).astype(np.float32)), ("b", np.array([0, 1, 2, 1], np.float32))],
          [("c", B)])
    s.add("Equal", 19, "i64", [N("Equal", ["a", "b"], ["c"])],
          [("a", rand(rng, (5,), I64, 0, 2)), ("b", rand(rng, (5,), I64, 0, 2))], [("c", B)])
    s.add("Equal", 19, "bool_empty", [N("Equal", ["a", "b"], ["c"])],
          [("a", np.zeros((0,), bool)), ("b", np.array([True]))], [("c", B)])

    # AveragePool-19: dilations.
    rng = s.rng("AveragePool")
    for tag, shape, elem, attrs in (
            ("dil2_3x3", (1, 2, 9, 9), F, dict(kernel_shape=[3, 3], dilations=[2, 2])),
            ("dil2_pads_count_pad", (1, 1, 7, 7), F, dict(kernel_shape=[3, 3], dilations=[2, 2],
                                                         pads=[1, 1, 1, 1], count_include_pad=1)),
            ("dil2_pads_exclude_pad", (1, 1, 7, 7), F, dict(kernel_shape=[3, 3], dilations=[2, 2],
                                                           pads=[2, 1, 2, 1])),
            ("dil2_ceil_strides2", (1, 1, 8, 8), F, dict(kernel_shape=[2, 2], dilations=[2, 2],
                                                        strides=[2, 2], ceil_mode=1)),
            ("1d_dil3", (2, 3, 12), F, dict(kernel_shape=[2], dilations=[3], strides=[2])),
            ("3d_dil", (1, 1, 5, 5, 5), F, dict(kernel_shape=[2, 2, 2], dilations=[2, 1, 1])),
            ("f16_plain", (1, 2, 4, 4), H, dict(kernel_shape=[2, 2])),
            ("f64_dil_same_upper", (1, 1, 6, 6), D, dict(kernel_shape=[2, 2], dilations=[2, 2],
                                                         auto_pad="SAME_UPPER"))):
        s.add("AveragePool", 19, tag, [N("AveragePool", ["x"], ["y"], **attrs)],
              [("x", rand(rng, shape, elem))], [("y", elem)])

    gen_cast(s, "Cast", 19)
    gen_cast(s, "CastLike", 19)
    gen_constant(s, 19)

    # DeformConv (new in 19).
    rng = s.rng("DeformConv")

    def deform(tag, n, c, h, w, oc, k, attrs, offset_scale=1.0, mask=False, bias=False, elem=F):
        kh, kw = k
        strides = attrs.get("strides", [1, 1])
        pads = attrs.get("pads", [0, 0, 0, 0])
        dil = attrs.get("dilations", [1, 1])
        og = attrs.get("offset_group", 1)
        g = attrs.get("group", 1)
        oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
        ow = (w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
        ins = [("x", rand(rng, (n, c, h, w), elem)), ("w", rand(rng, (oc, c // g, kh, kw), elem)),
               ("offset", (rand(rng, (n, og * 2 * kh * kw, oh, ow), elem) * offset_scale).astype(NP_OF[elem]))]
        names = ["x", "w", "offset"]
        if bias or mask:
            if bias:
                ins.append(("b", rand(rng, (oc,), elem)))
                names.append("b")
            else:
                names.append("")
        if mask:
            ins.append(("mask", rand(rng, (n, og * kh * kw, oh, ow), elem, 0, 1)))
            names.append("mask")
        s.add("DeformConv", 19, tag, [N("DeformConv", names, ["y"], kernel_shape=[kh, kw], **attrs)],
              ins, [("y", elem)])

    deform("zero_offset_is_conv", 1, 2, 5, 5, 3, (3, 3), {}, offset_scale=0.0)
    deform("frac_offsets", 1, 2, 6, 5, 2, (2, 2), {}, offset_scale=1.5)
    deform("mask_bias_pads_strides", 2, 3, 7, 7, 4, (3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]},
           offset_scale=2.0, mask=True, bias=True)
    deform("groups2_offset_groups2", 1, 4, 5, 6, 4, (3, 2),
           {"group": 2, "offset_group": 2, "dilations": [1, 2]}, offset_scale=1.0)
    deform("mask_only_f64", 1, 1, 4, 4, 1, (2, 2), {}, offset_scale=0.7, mask=True, elem=D)

    gen_dequantize(s, 19)
    gen_identity(s, 19)
    gen_if(s, 19)
    gen_loop(s, 19)
    gen_pad(s, 19)
    gen_quantize(s, 19)
    gen_reshape(s, 19)

    # Resize-19: half_pixel_symmetric.
    rng = s.rng("Resize19")
    x = rand(rng, (1, 1, 4, 6), F, 0, 1)
    for tag, mode, scales, extra in (("linear_up", "linear", [1, 1, 2, 1.5], {}),
                                     ("linear_down", "linear", [1, 1, 0.6, 0.5], {}),
                                     ("cubic_up", "cubic", [1, 1, 1.75, 2], {}),
                                     ("nearest_up", "nearest", [1, 1, 2.5, 1.5], {}),
                                     ("linear_axes_antialias_down", "linear", [0.5, 0.4],
                                      {"axes": [2, 3], "antialias": 1})):
        s.add("Resize", 19, f"half_pixel_symmetric_{tag}",
              [N("Resize", ["x", "", "scales"], ["y"], mode=mode,
                 coordinate_transformation_mode="half_pixel_symmetric", **extra)],
              [("x", x)], [("y", F)], inits=[init("scales", np.array(scales, np.float32))])
    s.add("Resize", 19, "half_pixel_symmetric_sizes_linear",
          [N("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
             coordinate_transformation_mode="half_pixel_symmetric")],
          [("x", x)], [("y", F)], inits=[init("sizes", i64(1, 1, 7, 4))])

    gen_scan(s, 19)
    gen_shape(s, 19)
    gen_size(s, 19)


def gen_constant(s, since):
    rng = s.rng(f"Constant{since}")
    if since == 19:
        for elem in FLOAT8_TYPES:
            vals = rng.choice(F8_GRID, size=(2, 3))
            s.add("Constant", 19, f"{SHORT[elem]}_tensor",
                  [N("Constant", [], ["c"], value=f8_tensor("v", elem, vals)), N("Cast", ["c"], ["y"], to=F)],
                  [], [("y", F)], desc="float8 constant (new in 19), read back through Cast")
    else:
        for elem in (INT4, UINT4):
            vals = rng.integers(-8 if elem == INT4 else 0, 8 if elem == INT4 else 16, size=(3, 3))
            s.add("Constant", 21, f"{SHORT[elem]}_tensor",
                  [N("Constant", [], ["c"], value=int4_tensor("v", elem, vals)), N("Cast", ["c"], ["y"], to=I32)],
                  [], [("y", I32)], desc="int4/uint4 constant (new in 21), read back through Cast")
    s.add("Constant", since, "value_floats",
          [N("Constant", [], ["y"], value_floats=[1.5, -2.0, 3.25])], [], [("y", F)])
    s.add("Constant", since, "value_int_rank0", [N("Constant", [], ["y"], value_int=42)], [], [("y", I64)])
    s.add("Constant", since, "value_strings",
          [N("Constant", [], ["y"], value_strings=["b", "c", "light"])], [], [("y", S)])
    s.add("Constant", since, "value_tensor_f16_add",
          [N("Constant", [], ["c"], value=init("v", rand(rng, (2, 2), H))), N("Add", ["x", "c"], ["y"])],
          [("x", rand(rng, (2, 2), H))], [("y", H)])
    sparse = helper.make_sparse_tensor(init("values", np.array([5.0, -1.0], np.float32)),
                                       init("indices", i64(1, 6)), [2, 4])
    s.add("Constant", since, "sparse_value_add", [N("Constant", [], ["c"], sparse_value=sparse),
                                                  N("Add", ["x", "c"], ["y"])],
          [("x", rand(rng, (2, 4), F))], [("y", F)],
          desc="sparse_value attribute, consumed densely by Add (ORT hands out a sparse tensor "
               "when the Constant is itself a graph output)")
    s.add("Constant", since, "value_float_rank0", [N("Constant", [], ["y"], value_float=0.125)], [], [("y", F)])


def gen_dequantize(s, since):
    rng = s.rng(f"DequantizeLinear{since}")

    def dq(tag, inits, inputs, out_elem, desc="", **attrs):
        names = ["x", "scale", "zp"]
        present = {n for n, _ in inputs} | {t.name for t in inits}
        names = [n if n in present else "" for n in names]
        while names[-1] == "":
            names.pop()
        s.add("DequantizeLinear", since, tag, [N("DequantizeLinear", names, ["y"], **attrs)],
              inputs, [("y", out_elem)], inits=inits, desc=desc)

    dq("u8_per_tensor", [], [("x", rand(rng, (3, 4), U8, 0, 255)), ("scale", np.array(0.05, np.float32)),
                             ("zp", np.array(128, np.uint8))], F)
    dq("i8_per_axis1", [], [("x", rand(rng, (2, 3, 2), I8, -128, 127)),
                            ("scale", np.array([0.1, 0.2, 0.5], np.float32)),
                            ("zp", np.array([0, -3, 7], np.int8))], F, axis=1)
    dq("i32_no_zp", [], [("x", rand(rng, (5,), I32, -10000, 10000)), ("scale", np.array(1e-3, np.float32))], F)
    dq("u8_f16_scale", [], [("x", rand(rng, (4,), U8, 0, 255)), ("scale", np.array(0.25, np.float16)),
                            ("zp", np.array(3, np.uint8))], H, desc="float16 scale gives float16 output")
    dq("u8_empty", [], [("x", np.zeros((0, 3), np.uint8)), ("scale", np.array(0.5, np.float32))], F)
    if since == 19:
        for elem in FLOAT8_TYPES:
            vals = rng.choice(F8_GRID, size=(3, 4))
            dq(f"{SHORT[elem]}_initializer", [f8_tensor("x", elem, vals)],
               [("scale", np.array(0.5, np.float32))], F, desc="float8 input (new in 19)")
        dq("f8e4m3fn_per_axis0", [f8_tensor("x", FLOAT8E4M3FN, rng.choice(F8_GRID, size=(2, 3))),
                                  f8_tensor("zp", FLOAT8E4M3FN, [0.0, 0.0])],
           [("scale", np.array([2.0, 0.125], np.float32))], F, axis=0)
    else:
        x = rand(rng, (4, 6), I8, -128, 127)
        dq("i8_blocked_axis1_b2", [], [("x", x), ("scale", rand(rng, (4, 3), F, 0.01, 0.1)),
                                        ("zp", rand(rng, (4, 3), I8, -5, 5))], F, axis=1, block_size=2,
           desc="blocked quantization (new in 21)")
        dq("u8_blocked_axis0_b3_ragged", [], [("x", rand(rng, (7, 2), U8, 0, 255)),
                                               ("scale", rand(rng, (3, 2), F, 0.01, 0.1)),
                                               ("zp", rand(rng, (3, 2), U8, 100, 150))], F, axis=0,
           block_size=3, desc="blocked, last block partial")
        dq("i4_per_tensor", [int4_tensor("x", INT4, rng.integers(-8, 8, (3, 5))),
                             int4_tensor("zp", INT4, 1)], [("scale", np.array(0.5, np.float32))], F,
           desc="int4 input (new in 21)")
        dq("u4_blocked_axis1", [int4_tensor("x", UINT4, rng.integers(0, 16, (2, 8))),
                                int4_tensor("zp", UINT4, rng.integers(0, 16, (2, 2)))],
           [("scale", rand(rng, (2, 2), F, 0.1, 1))], F, axis=1, block_size=4)
        dq("i4_blocked_no_zp", [int4_tensor("x", INT4, rng.integers(-8, 8, (4, 4)))],
           [("scale", rand(rng, (2, 4), F, 0.1, 1))], F, axis=0, block_size=2)
        dq("i16_per_axis", [], [("x", rand(rng, (3, 2), I16, -30000, 30000)),
                                ("scale", np.array([1e-3, 2e-3], np.float32)),
                                ("zp", np.array([5, -5], np.int16))], F, axis=-1, desc="int16 (new in 21)")
        dq("u16_per_tensor", [], [("x", rand(rng, (5,), U16, 0, 65535)), ("scale", np.array(1e-2, np.float32)),
                                  ("zp", np.array(32768, np.uint16))], F)


def gen_quantize(s, since):
    rng = s.rng(f"QuantizeLinear{since}")

    def q(tag, inputs, out_elem, inits=(), back=None, desc="", **attrs):
        names = ["x", "scale", "zp"]
        present = {n for n, _ in inputs} | {t.name for t in inits}
        names = [n if n in present else "" for n in names]
        while names[-1] == "":
            names.pop()
        nodes = [N("QuantizeLinear", names, ["y" if back is None else "q"], **attrs)]
        if back is not None:  # type with no .npy form: DequantizeLinear back with the same params
            dnames = ["q"] + names[1:]
            nodes.append(N("DequantizeLinear", dnames, ["y"], **{k: v for k, v in attrs.items()
                                                                if k in ("axis", "block_size")}))
        s.add("QuantizeLinear", since, tag, nodes, inputs, [("y", out_elem if back is None else back)],
              inits=list(inits), desc=desc)

    ties = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 1000, -1000], np.float32) * 0.5
    q("u8_per_tensor_ties", [("x", ties), ("scale", np.array(0.5, np.float32)), ("zp", np.array(10, np.uint8))],
      U8, desc="round half to even and saturation")
    q("i8_per_axis1", [("x", rand(rng, (2, 3, 4), F, -20, 20)), ("scale", np.array([0.1, 0.2, 0.3], np.float32)),
                       ("zp", np.array([0, 5, -5], np.int8))], I8, axis=1)
    q("u8_no_zp", [("x", rand(rng, (6,), F, -1, 60)), ("scale", np.array(0.25, np.float32))], U8)
    q("f16_in_u8", [("x", rand(rng, (3, 3), H, 0, 10)), ("scale", np.array(0.125, np.float16)),
                    ("zp", np.array(0, np.uint8))], U8)
    q("empty_u8", [("x", np.zeros((2, 0), np.float32)), ("scale", np.array(0.1, np.float32))], U8)
    if since == 19:
        for elem in FLOAT8_TYPES:
            for sat in (1, 0):
                q(f"{SHORT[elem]}_sat{sat}_roundtrip",
                  [("x", CAST_SPECIAL[np.isfinite(CAST_SPECIAL)]), ("scale", np.array(2.0, np.float32))], F,
                  inits=[f8_tensor("zp", elem, 0.0)], back=F, saturate=sat,
                  desc="float8 output (new in 19) read back through DequantizeLinear")
    else:
        q("i8_blocked_axis1_b2", [("x", rand(rng, (3, 6), F, -10, 10)), ("scale", rand(rng, (3, 3), F, 0.05, 0.1)),
                                  ("zp", rand(rng, (3, 3), I8, -3, 3))], I8, axis=1, block_size=2,
          desc="blocked quantization (new in 21)")
        q("u8_blocked_axis0_ragged", [("x", rand(rng, (5, 2), F, 0, 10)), ("scale", rand(rng, (2, 2), F, 0.05, 0.1))],
          U8, axis=0, block_size=3)
        q("u16_per_tensor", [("x", rand(rng, (5,), F, -100, 100)), ("scale", np.array(0.01, np.float32)),
                             ("zp", np.array(32768, np.uint16))], U16, desc="uint16 (new in 21)")
        q("i16_per_axis", [("x", rand(rng, (2, 3), F, -400, 400)), ("scale", np.array([0.01, 0.02, 0.05], np.float32))],
          I16, axis=1, output_dtype=I16, desc="output_dtype attribute (new in 21)")
        q("output_dtype_i8_no_zp", [("x", rand(rng, (4,), F, -20, 20)), ("scale", np.array(0.1, np.float32))],
          I8, output_dtype=I8)
        q("i4_roundtrip", [("x", rand(rng, (2, 5), F, -5, 5)), ("scale", np.array(0.5, np.float32))], F,
          inits=[int4_tensor("zp", INT4, 0)], back=F, desc="int4 output (new in 21), saturating to [-8, 7]")
        q("u4_blocked_roundtrip", [("x", rand(rng, (2, 4), F, -1, 9)), ("scale", rand(rng, (2, 2), F, 0.4, 0.6))], F,
          inits=[int4_tensor("zp", UINT4, [[1, 2], [3, 0]])], back=F, axis=1, block_size=2)


def gen_identity(s, since):
    rng = s.rng(f"Identity{since}")
    s.unary("Identity", since, "f32", rand(rng, (2, 3), F), F)
    s.unary("Identity", since, "string", np.array([["a", "bb"], ["", "ccc"]]), S)
    s.unary("Identity", since, "bool_rank0", np.array(True), B)
    s.unary("Identity", since, "empty_i64", np.zeros((3, 0), np.int64), I64)
    if since == 19:
        s.via("Identity", 19, "f8e4m3fn_via_cast", rand(rng, (4,), F, -400, 400), FLOAT8E4M3FN, F,
              desc="float8 (new in 19)")
        s.via("Identity", 19, "f8e5m2fnuz_via_cast", rand(rng, (2, 2), F, -10, 10), FLOAT8E5M2FNUZ, F)
    else:
        x4, xu4 = rand(rng, (5,), I8, -8, 7), rand(rng, (2, 3), U8, 0, 15)
        s.via("Identity", 21, "i4_via_cast", x4, INT4, I8, desc="int4 (new in 21)", references=[x4])
        s.via("Identity", 21, "u4_via_cast", xu4, UINT4, U8, references=[xu4])


def gen_if(s, since):
    rng = s.rng(f"If{since}")
    x = rand(rng, (2, 3), F)
    then_g = helper.make_graph(
        [N("Constant", [], ["one"], value_float=1.0), N("Add", ["x", "one"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph(
        [N("Constant", [], ["two"], value_float=2.0), N("Mul", ["x", "two"], ["e"])], "else", [],
        [helper.make_tensor_value_info("e", F, None)])
    for val in (True, False):
        s.add("If", since, f"outer_scope_{str(val).lower()}",
              [N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
              [("c", np.array(val)), ("x", x)], [("y", F)], desc="branches read an outer-scope value")
    # Branches with different output shapes.
    then_g = helper.make_graph([N("Identity", ["x"], ["t"])], "then", [], [helper.make_tensor_value_info("t", F, None)])
    else_g = helper.make_graph([N("ReduceSum", ["x"], ["e"], keepdims=0)], "else", [],
                               [helper.make_tensor_value_info("e", F, None)])
    s.add("If", since, "shape_differs_false", [N("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
          [("c", np.array(False)), ("x", x)], [("y", F)], desc="branch outputs of different rank")
    # Two outputs, integer type.
    mk = lambda nm, a, b: helper.make_graph(
        [N("Constant", [], ["k"], value=init("k", np.array(a, np.int32))), N("Add", ["n", "k"], [f"{nm}0"]),
         N("Constant", [], [f"{nm}1"], value=init("k2", np.array([b], np.int64)))], nm, [],
        [helper.make_tensor_value_info(f"{nm}0", I32, None), helper.make_tensor_value_info(f"{nm}1", I64, None)])
    s.add("If", since, "two_outputs_i32_true",
          [N("If", ["c"], ["y0", "y1"], then_branch=mk("then", 5, 1), else_branch=mk("else", -5, 0))],
          [("c", np.array(True)), ("n", rand(rng, (4,), I32, -9, 9))], [("y0", I32), ("y1", I64)])
    typ = FLOAT8E4M3FN if since == 19 else INT4
    src = rand(rng, (3,), F, -6, 6) if since == 19 else rand(rng, (3,), F, -7, 7).round()
    then_g = helper.make_graph([N("Cast", ["x"], ["t"], to=typ)], "then", [], [helper.make_tensor_value_info("t", typ, None)])
    else_g = helper.make_graph([N("Neg", ["x"], ["nx"]), N("Cast", ["nx"], ["e"], to=typ)], "else", [],
                               [helper.make_tensor_value_info("e", typ, None)])
    s.add("If", since, f"{SHORT[typ]}_branch_output",
          [N("If", ["c"], ["m"], then_branch=then_g, else_branch=else_g), N("Cast", ["m"], ["y"], to=F)],
          [("c", np.array(False)), ("x", src)], [("y", F)],
          desc=f"{SHORT[typ]} values flowing out of the branch (new in {since})",
          references=None if since == 19 else [-src])


def gen_loop(s, since):
    rng = s.rng(f"Loop{since}")
    vi = helper.make_tensor_value_info
    # for i in range(M): v = v + step; scan out v
    body = helper.make_graph(
        [N("Identity", ["cond_in"], ["cond_out"]), N("Add", ["v_in", "step"], ["v_out"]),
         N("Identity", ["v_out"], ["scan_out"])], "body",
        [vi("i", I64, []), vi("cond_in", B, []), vi("v_in", F, None)],
        [vi("cond_out", B, []), vi("v_out", F, None), vi("scan_out", F, None)])
    s.add("Loop", since, "trip_count_scan_output", [N("Loop", ["M", "", "v0"], ["v", "scan"], body=body)],
          [("M", np.array(4, np.int64)), ("v0", rand(rng, (3,), F)), ("step", rand(rng, (3,), F))],
          [("v", F), ("scan", F)], desc="trip count, outer-scope value, scan output")
    s.add("Loop", since, "zero_trips", [N("Loop", ["M", "", "v0"], ["v"], body=helper.make_graph(
        [N("Identity", ["cond_in"], ["cond_out"]), N("Add", ["v_in", "step"], ["v_out"])], "body",
        [vi("i", I64, []), vi("cond_in", B, []), vi("v_in", F, None)],
        [vi("cond_out", B, []), vi("v_out", F, None)]))],
          [("M", np.array(0, np.int64)), ("v0", rand(rng, (2, 2), F)), ("step", rand(rng, (2, 2), F))],
          [("v", F)], desc="M=0: loop-carried values pass through")
    # while (cond): v = v * 2; cond = i < limit  (no trip count)
    body = helper.make_graph(
        [N("Less", ["i", "limit"], ["cond_out"]),
         N("Constant", [], ["two"], value=init("two", np.array(2, np.int32))),
         N("Mul", ["v_in", "two"], ["v_out"])], "body",
        [vi("i", I64, []), vi("cond_in", B, []), vi("v_in", I32, None)],
        [vi("cond_out", B, []), vi("v_out", I32, None)])
    s.add("Loop", since, "while_cond_i32", [N("Loop", ["", "c0", "v0"], ["v"], body=body)],
          [("c0", np.array(True)), ("v0", rand(rng, (3,), I32, -9, 9)), ("limit", np.array(3, np.int64))],
          [("v", I32)], desc="condition-only loop")
    # trip count and condition both, iteration counter as scan output
    body = helper.make_graph(
        [N("Less", ["i", "limit"], ["cond_out"]), N("Add", ["acc_in", "i"], ["acc_out"]),
         N("Identity", ["i"], ["iters"])], "body",
        [vi("i", I64, []), vi("cond_in", B, []), vi("acc_in", I64, None)],
        [vi("cond_out", B, []), vi("acc_out", I64, None), vi("iters", I64, None)])
    s.add("Loop", since, "trip_and_cond_i64", [N("Loop", ["M", "c0", "acc0"], ["acc", "iters"], body=body)],
          [("M", np.array(10, np.int64)), ("c0", np.array(True)), ("acc0", np.array(0, np.int64)),
           ("limit", np.array(4, np.int64))], [("acc", I64), ("iters", I64)],
          desc="both a trip count and a condition; the condition stops it first")
    # A loop-carried value of the type new in this version (float8 in 19, int4 in 21).
    typ, back = (FLOAT8E5M2, F) if since == 19 else (INT4, I8)
    v0 = (rng.choice(F8_GRID, (2, 3)).astype(np.float32) if since == 19 else rand(rng, (2, 3), I8, -8, 7))
    body = helper.make_graph(
        [N("Identity", ["cond_in"], ["cond_out"]), N("Identity", ["v_in"], ["v_out"]),
         N("Identity", ["v_in"], ["scan_out"])], "body",
        [vi("i", I64, []), vi("cond_in", B, []), vi("v_in", typ, None)],
        [vi("cond_out", B, []), vi("v_out", typ, None), vi("scan_out", typ, None)])
    s.add("Loop", since, f"{SHORT[typ]}_carried_via_cast",
          [N("Cast", ["x"], ["x8"], to=typ), N("Loop", ["M", "", "x8"], ["v8", "scan8"], body=body),
           N("Cast", ["v8"], ["v"], to=back), N("Cast", ["scan8"], ["scan"], to=back)],
          [("M", np.array(2, np.int64)), ("x", v0)], [("v", back), ("scan", back)],
          desc=f"{SHORT[typ]} loop-carried value and scan output (new in {since}); values exact in the type",
          references=[v0, np.stack([v0, v0])])


def gen_scan(s, since):
    rng = s.rng(f"Scan{since}")
    vi = helper.make_tensor_value_info
    body = helper.make_graph([N("Add", ["s_in", "x_t"], ["s_out"]), N("Identity", ["s_out"], ["y_t"])], "body",
                             [vi("s_in", F, None), vi("x_t", F, None)], [vi("s_out", F, None), vi("y_t", F, None)])
    s0 = np.zeros((4,), np.float32)
    s.add("Scan", since, "cumsum", [N("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1)],
          [("s0", s0), ("x", rand(rng, (5, 4), F))], [("s", F), ("y", F)])
    s.add("Scan", since, "cumsum_reverse", [N("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1,
                                             scan_input_directions=[1])],
          [("s0", s0), ("x", rand(rng, (3, 4), F))], [("s", F), ("y", F)])
    s.add("Scan", since, "input_axis1_output_axis1",
          [N("Scan", ["s0", "x"], ["s", "y"], body=body, num_scan_inputs=1, scan_input_axes=[1],
             scan_output_axes=[1], scan_output_directions=[1])],
          [("s0", s0), ("x", rand(rng, (4, 6), F))], [("s", F), ("y", F)])
    body2 = helper.make_graph(
        [N("Mul", ["a_t", "b_t"], ["p"]), N("Add", ["s_in", "p"], ["s_out"]), N("ReduceSum", ["p"], ["r_t"], keepdims=0)],
        "body", [vi("s_in", D, None), vi("a_t", D, None), vi("b_t", D, None)],
        [vi("s_out", D, None), vi("r_t", D, None)])
    typ, back = (FLOAT8E4M3FN, F) if since == 19 else (UINT4, U8)
    xs = (rng.choice(F8_GRID, (3, 2)).astype(np.float32) if since == 19 else rand(rng, (3, 2), U8, 0, 15))
    body3 = helper.make_graph([N("Identity", ["x_t"], ["s_out"]), N("Identity", ["x_t"], ["y_t"])], "body",
                              [vi("s_in", typ, None), vi("x_t", typ, None)], [vi("s_out", typ, None), vi("y_t", typ, None)])
    s.add("Scan", since, f"{SHORT[typ]}_via_cast",
          [N("Cast", ["x"], ["x8"], to=typ), N("Cast", ["s"], ["s8"], to=typ),
           N("Scan", ["s8", "x8"], ["sf8", "y8"], body=body3, num_scan_inputs=1),
           N("Cast", ["sf8"], ["sf"], to=back), N("Cast", ["y8"], ["y"], to=back)],
          [("s", np.zeros((2,), xs.dtype)), ("x", xs)], [("sf", back), ("y", back)],
          desc=f"{SHORT[typ]} state and scan values (new in {since}); values exact in the type",
          references=[xs[-1].copy(), xs])
    s.add("Scan", since, "two_inputs_f64", [N("Scan", ["s0", "a", "b"], ["s", "r"], body=body2, num_scan_inputs=2)],
          [("s0", np.zeros((3,), np.float64)), ("a", rand(rng, (4, 3), D)), ("b", rand(rng, (4, 3), D))],
          [("s", D), ("r", D)])


def gen_reshape(s, since):
    rng = s.rng(f"Reshape{since}")

    def rs(tag, x, shape, shape_input=False, desc="", **attrs):
        s.add("Reshape", since, tag, [N("Reshape", ["x", "shape"], ["y"], **attrs)],
              [("x", x)] + ([("shape", shape)] if shape_input else []), [("y", elem_of(x))],
              inits=[] if shape_input else [init("shape", shape)], desc=desc)

    rs("minus1_zero_f32", rand(rng, (2, 3, 4), F), i64(0, -1))
    rs("shape_input_i64", rand(rng, (6,), I64, -9, 9), i64(3, 1, 2), shape_input=True)
    rs("rank0_to_1", np.array(np.float32(2.5)), i64(1))
    rs("to_rank0", np.array([7], np.int32), np.zeros((0,), np.int64))
    rs("allowzero_empty", np.zeros((0, 4), np.float32), i64(0, 2, 2), allowzero=1,
       desc="allowzero=1 keeps an explicit 0 dimension")
    rs("string", np.array(["a", "b", "c", "d"]), i64(2, 2))
    if since == 19:
        nodes = [N("Cast", ["x"], ["m"], to=FLOAT8E5M2), N("Reshape", ["m", "shape"], ["r"]),
                 N("Cast", ["r"], ["y"], to=F)]
        xf8 = rng.choice(F8_GRID, (2, 6)).astype(np.float32)
        s.add("Reshape", 19, "f8e5m2_via_cast", nodes, [("x", xf8)], [("y", F)],
              inits=[init("shape", i64(3, -1))], desc="float8 (new in 19); values exact in float8",
              references=[xf8.reshape(3, 4)])
    else:
        nodes = [N("Cast", ["x"], ["m"], to=INT4), N("Reshape", ["m", "shape"], ["r"]), N("Cast", ["r"], ["y"], to=I8)]
        x4 = rand(rng, (3, 5), I8, -8, 7)
        s.add("Reshape", 21, "i4_via_cast", nodes, [("x", x4)], [("y", I8)],
              inits=[init("shape", i64(5, 3))], desc="int4 (new in 21)", references=[x4.reshape(5, 3)])


def gen_shape(s, since):
    rng = s.rng(f"Shape{since}")
    x = rand(rng, (2, 3, 4, 5), F)
    s.unary("Shape", since, "full", x, I64)
    s.unary("Shape", since, "start1_end_neg1", x, I64, start=1, end=-1)
    s.unary("Shape", since, "start_neg_clamped", x, I64, start=-10)
    s.unary("Shape", since, "empty_slice", x, I64, start=3, end=1)
    s.unary("Shape", since, "rank0", np.array(np.float32(1)), I64)
    s.unary("Shape", since, "empty_dims_string", np.zeros((0, 2), dtype="<U1"), I64)
    mid = FLOAT8E4M3FNUZ if since == 19 else UINT4
    src = rand(rng, (3, 2), F, -5, 5) if since == 19 else rand(rng, (3, 2), F, 0, 15)
    s.add("Shape", since, f"{SHORT[mid]}_input",
          [N("Cast", ["x"], ["m"], to=mid), N("Shape", ["m"], ["y"])], [("x", src)], [("y", I64)],
          desc=f"{SHORT[mid]} input (new in {since})", references=[i64(3, 2)])


def gen_size(s, since):
    rng = s.rng(f"Size{since}")
    s.unary("Size", since, "f32", rand(rng, (2, 3, 4), F), I64)
    s.unary("Size", since, "empty", np.zeros((0, 3), np.float32), I64)
    s.unary("Size", since, "rank0", np.array(np.int32(5)), I64)
    s.unary("Size", since, "string", np.array(["x", "yy", "zzz"]), I64)
    mid = FLOAT8E5M2 if since == 19 else INT4
    s.add("Size", since, f"{SHORT[mid]}_input",
          [N("Cast", ["x"], ["m"], to=mid), N("Size", ["m"], ["y"])], [("x", rand(rng, (5, 3), F, -7, 7))],
          [("y", I64)], desc=f"{SHORT[mid]} input (new in {since})", references=[np.array(15, np.int64)])


# ---------------------------------------------------------------------------------------
# Opset 20

def gen_opset20(s):
    rng = s.rng("AffineGrid")
    theta2 = (np.array([[1, 0, 0], [0, 1, 0]], np.float32) + rand(rng, (2, 2, 3), F, -0.3, 0.3))
    for ac in (0, 1):
        s.add("AffineGrid", 20, f"2d_align{ac}", [N("AffineGrid", ["theta", "size"], ["grid"], align_corners=ac)],
              [("theta", theta2)], [("grid", F)], inits=[init("size", i64(2, 3, 4, 5))])
    theta3 = np.concatenate([np.eye(3, 4, dtype=np.float32)[None], rand(rng, (1, 3, 4), F, -0.5, 0.5)])
    s.add("AffineGrid", 20, "3d_align0", [N("AffineGrid", ["theta", "size"], ["grid"])],
          [("theta", theta3)], [("grid", F)], inits=[init("size", i64(2, 1, 3, 4, 2))])
    s.add("AffineGrid", 20, "2d_f64_size_input", [N("AffineGrid", ["theta", "size"], ["grid"], align_corners=1)],
          [("theta", theta2.astype(np.float64)), ("size", i64(2, 1, 3, 3))], [("grid", D)])
    s.add("AffineGrid", 20, "2d_size1", [N("AffineGrid", ["theta", "size"], ["grid"])],
          [("theta", theta2[:1])], [("grid", F)], inits=[init("size", i64(1, 1, 1, 4))],
          desc="a spatial size of 1")

    gen_constant_of_shape(s, 20)

    # DFT-20: dft_length and axis as inputs.
    rng = s.rng("DFT")

    def dft(tag, x, length=None, axis=None, elem=F, tol=None, desc="", **attrs):
        names, inputs, inits = ["x"], [("x", x)], []
        if length is not None:
            names.append("len")
            inits.append(init("len", np.array(length, np.int64)))
        elif axis is not None:
            names.append("")
        if axis is not None:
            names.append("axis")
            inits.append(init("axis", np.array(axis, np.int64)))
        s.add("DFT", 20, tag, [N("DFT", names, ["y"], **attrs)], inputs, [("y", elem)], inits=inits,
              tol=tol, desc=desc)

    dft("real_default_axis", rand(rng, (2, 8, 1), F), desc="real input, default axis -2")
    dft("real_onesided", rand(rng, (1, 9, 1), F), axis=1, onesided=1)
    dft("complex_inverse", rand(rng, (3, 6, 2), F), axis=1, inverse=1)
    dft("real_length_pad", rand(rng, (1, 6, 1), F), length=10, axis=1, desc="dft_length > signal: zero padding")
    dft("complex_length_trunc", rand(rng, (2, 8, 2), F), length=5, axis=-2, desc="dft_length < signal: truncation")
    dft("axis2_rank4_complex", rand(rng, (2, 3, 4, 2), F), axis=2)
    dft("axis0_rank3", rand(rng, (5, 3, 2), F), axis=0)
    dft("f64_onesided_length", rand(rng, (2, 7, 1), D), length=8, axis=1, onesided=1, elem=D)
    dft("f64_inverse_prime", rand(rng, (1, 13, 2), D), axis=-2, inverse=1, elem=D)

    # Gelu (new in 20).
    rng = s.rng("Gelu")
    s.unary("Gelu", 20, "none_f32", rand(rng, (3, 5), F, -6, 6), F)
    s.unary("Gelu", 20, "tanh_f32", rand(rng, (3, 5), F, -6, 6), F, approximate="tanh")
    s.unary("Gelu", 20, "none_f64", rand(rng, (7,), D, -4, 4), D)
    s.unary("Gelu", 20, "tanh_f16", rand(rng, (2, 4), H, -4, 4), H, approximate="tanh")
    s.unary("Gelu", 20, "none_f16", rand(rng, (2, 4), H, -4, 4), H)
    s.unary("Gelu", 20, "rank0_f32", np.array(np.float32(-0.5)), F)
    s.unary("Gelu", 20, "empty_f32", np.zeros((0,), np.float32), F)

    # GridSample-20: linear/nearest/cubic names, N-d.
    rng = s.rng("GridSample")
    x4 = rand(rng, (2, 2, 4, 5), F)
    grid = rand(rng, (2, 3, 6, 2), F, -1.2, 1.2)
    for tag, mode, pad, ac in (("linear_zeros_align0", "linear", "zeros", 0),
                               ("linear_border_align1", "linear", "border", 1),
                               ("nearest_reflection_align0", "nearest", "reflection", 0),
                               ("nearest_zeros_align1", "nearest", "zeros", 1),
                               ("cubic_border_align0", "cubic", "border", 0),
                               ("cubic_reflection_align1", "cubic", "reflection", 1)):
        s.add("GridSample", 20, tag, [N("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode=pad,
                                        align_corners=ac)],
              [("x", x4), ("grid", grid)], [("y", F)])
    s.add("GridSample", 20, "5d_linear_zeros", [N("GridSample", ["x", "grid"], ["y"], mode="linear")],
          [("x", rand(rng, (1, 2, 3, 4, 4), F)), ("grid", rand(rng, (1, 2, 3, 2, 3), F, -1.1, 1.1))], [("y", F)],
          desc="volumetric (5-D) input, new in 20")
    s.add("GridSample", 20, "f64_linear", [N("GridSample", ["x", "grid"], ["y"])],
          [("x", x4.astype(np.float64)), ("grid", grid.astype(np.float64))], [("y", D)])

    # ImageDecoder (new in 20): PNG streams; the decoded pixels are known exactly.
    rng = s.rng("ImageDecoder")
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    stream_rgb = np.frombuffer(png_bytes(rgb), np.uint8).copy()
    stream_gray = np.frombuffer(png_bytes(gray), np.uint8).copy()
    for tag, stream, fmt, ref in (("png_rgb_to_RGB", stream_rgb, "RGB", rgb),
                                  ("png_rgb_to_BGR", stream_rgb, "BGR", rgb[..., ::-1].copy()),
                                  ("png_gray_to_Grayscale", stream_gray, "Grayscale", gray[..., None]),
                                  ("png_gray_to_RGB", stream_gray, "RGB", np.repeat(gray[..., None], 3, axis=2)),
                                  ("png_rgb_to_Grayscale", stream_rgb, "Grayscale", luma601(rgb)[..., None])):
        s.add("ImageDecoder", 20, tag, [N("ImageDecoder", ["stream"], ["img"], pixel_format=fmt)],
              [("stream", stream)], [("img", U8)], references=[ref],
              desc="8-bit PNG; reference pixels are the encoded ones (Grayscale of RGB: BT.601 luma)")

    # IsInf-20 / IsNaN-20 (new types: float8, bfloat16).
    special = np.array([0, 1.5, -2, np.inf, -np.inf, np.nan, 3e38, -0.0], np.float32)
    for op in ("IsInf", "IsNaN"):
        s.unary(op, 20, "f32", special, B)
        s.unary(op, 20, "f64", special.astype(np.float64), B)
        s.unary(op, 20, "f16", np.array([0, np.inf, -np.inf, np.nan, 6e4], np.float16), B)
        s.unary(op, 20, "rank0_f32", np.array(np.float32(np.nan)), B)
        s.unary(op, 20, "empty_f32", np.zeros((0, 2), np.float32), B)
        for mid in (FLOAT8E5M2, FLOAT8E4M3FN, 16):  # 16 = BFLOAT16
            s.add(op, 20, f"{'bf16' if mid == 16 else SHORT[mid]}_via_cast",
                  [N("Cast", ["x"], ["m"], to=mid), N(op, ["m"], ["y"])], [("x", special)], [("y", B)],
                  desc="type new in 20; Cast(saturate=1 default) of inf into float8 saturates")
    s.unary("IsInf", 20, "detect_positive_only", special, B, detect_negative=0)
    s.unary("IsInf", 20, "detect_negative_only", special, B, detect_positive=0)

    # ReduceMax-20 / ReduceMin-20: bool.
    for op in ("ReduceMax", "ReduceMin"):
        rng = s.rng(f"{op}20")
        xb = rand(rng, (3, 4), B)
        s.add(op, 20, "bool_axes1_keepdims", [N(op, ["x", "axes"], ["y"], keepdims=1)], [("x", xb)], [("y", B)],
              inits=[init("axes", i64(1))], desc="bool (new in 20)")
        s.add(op, 20, "bool_all", [N(op, ["x"], ["y"], keepdims=0)], [("x", xb)], [("y", B)])
        s.add(op, 20, "bool_noop_empty_axes", [N(op, ["x"], ["y"], noop_with_empty_axes=1)], [("x", xb)], [("y", B)])
        s.add(op, 20, "bool_rank3_axes_input", [N(op, ["x", "axes"], ["y"], keepdims=0)],
              [("x", rand(rng, (2, 3, 2), B)), ("axes", i64(0, -1))], [("y", B)])
        s.add(op, 20, "bool_empty_axis", [N(op, ["x", "axes"], ["y"], keepdims=0)],
              [("x", np.zeros((0, 3), bool))], [("y", B)], inits=[init("axes", i64(0))],
              desc="bool over an empty axis: the spec gives the type's minimum (max) or maximum (min)",
              references=[np.full((3,), op == "ReduceMin")])
        s.add(op, 20, "f32", [N(op, ["x", "axes"], ["y"])], [("x", rand(rng, (2, 5), F))], [("y", F)],
              inits=[init("axes", i64(1))])
        s.add(op, 20, "i8", [N(op, ["x"], ["y"], keepdims=0)], [("x", rand(rng, (4, 2), I8, -128, 127))], [("y", I8)])

    # Strings (new in 20).
    words = np.array([["www.cern.ch", "www.example.com"], ["hepml", ""]])
    for tag, x, pattern in (("url", np.array(["www.google.com", "www.facebook.com", "www.bbc.co.uk", "www.com"]),
                             r"www\.[\w.-]+\.\bcom\b"),
                            ("rank2_empty_string", words, r"(www\.)?[a-z]*"),
                            ("digits_unicode", np.array(["12345", "12a45", "١٢٣", "Zürich-42"]), r"\d+|\pL+-\d+"),
                            ("empty_tensor", np.zeros((0,), dtype="<U1"), r".*")):
        s.add("RegexFullMatch", 20, tag, [N("RegexFullMatch", ["x"], ["y"], pattern=pattern)], [("x", x)], [("y", B)])
    for tag, a, b in (("same_shape", np.array(["jet", "muon", ""]), np.array(["_pt", "_eta", "x"])),
                      ("bcast", np.array([["a", "b", "c"], ["dd", "ee", "ff"]]), np.array(["1", "2", "3"])),
                      ("rank0_bcast", np.array("pre_"), np.array(["α", "β"])),
                      ("empty", np.zeros((0, 2), dtype="<U1"), np.array(["z"]))):
        s.add("StringConcat", 20, tag, [N("StringConcat", ["a", "b"], ["y"])], [("a", a), ("b", b)], [("y", S)])
    for tag, x, attrs in (("dash_maxsplit1", np.array(["a-b-c", "d", "e-f", ""]), {"delimiter": "-", "maxsplit": 1}),
                          ("whitespace", np.array(["  hello  world ", "one", "a b c d"]), {}),
                          ("multichar_rank2", np.array([["a::b", "::c::"], ["d", "e::f::g"]]), {"delimiter": "::"}),
                          ("maxsplit_large", np.array(["1,2,3", "4,,5"]), {"delimiter": ",", "maxsplit": 10})):
        s.add("StringSplit", 20, tag, [N("StringSplit", ["x"], ["y", "z"], **attrs)], [("x", x)],
              [("y", S), ("z", I64)])


def gen_constant_of_shape(s, since):
    rng = s.rng(f"ConstantOfShape{since}")

    def cos(tag, shape, value, out_elem, back=None, shape_input=True, desc="", ref=None):
        attrs = {} if value is None else {"value": value}
        nodes = [N("ConstantOfShape", ["shape"], ["y" if back is None else "m"], **attrs)]
        if back is not None:
            nodes.append(N("Cast", ["m"], ["y"], to=back))
        s.add("ConstantOfShape", since, tag, nodes, [("shape", shape)] if shape_input else [],
              [("y", out_elem if back is None else back)],
              inits=[] if shape_input else [init("shape", shape)], desc=desc,
              references=None if ref is None else [ref])

    cos("default_f32_zero", i64(2, 3), None, F)
    cos("i64_value", i64(4), init("value", np.array([-7], np.int64)), I64)
    cos("rank0_output", np.zeros((0,), np.int64), init("value", np.array([2.5], np.float32)), F,
        desc="empty shape: a rank-0 output")
    cos("empty_dim", i64(3, 0), init("value", np.array([1], np.int32)), I32, shape_input=False)
    cos("bool_true", i64(2, 2), init("value", np.array([True])), B)
    if since == 20:
        for elem in (FLOAT8E4M3FN, FLOAT8E5M2):
            cos(f"{SHORT[elem]}_value", i64(2, 3), f8_tensor("value", elem, [1.5]), F, back=F,
                desc="float8 value (new in 20)", ref=np.full((2, 3), 1.5, np.float32))
        bf16 = raw_tensor("value", 16, [1], struct.pack("<H", 0x3FC0))  # 1.5 in bfloat16
        cos("bf16_value", i64(3,), bf16, F, back=F, desc="bfloat16 value (new in 20)",
            ref=np.full((3,), 1.5, np.float32))
    else:
        cos("i4_value", i64(2, 3), int4_tensor("value", INT4, [-3]), I8, back=I8, desc="int4 value (new in 21)",
            ref=np.full((2, 3), -3, np.int8))
        cos("u4_value", i64(5,), int4_tensor("value", UINT4, [12]), U8, back=U8, desc="uint4 value (new in 21)",
            ref=np.full((5,), 12, np.uint8))
        cos("f16_value", i64(2,), init("value", np.array([0.5], np.float16)), H)


# ---------------------------------------------------------------------------------------
# Opset 21

def gen_opset21(s):
    gen_cast(s, "Cast", 21)
    gen_cast(s, "CastLike", 21)
    gen_constant(s, 21)
    gen_constant_of_shape(s, 21)
    gen_dequantize(s, 21)

    rng = s.rng("Flatten")
    x = rand(rng, (2, 3, 4), F)
    for axis in (0, 1, 2, -1, 3):
        s.unary("Flatten", 21, f"axis{axis}".replace("-", "neg"), x, F, axis=axis)
    s.unary("Flatten", 21, "empty_dim_i64", np.zeros((2, 0, 3), np.int64), I64, axis=2)
    s.unary("Flatten", 21, "rank1_bool", rand(rng, (5,), B), B, axis=1)
    x4 = rand(rng, (2, 2, 3), I8, -8, 7)
    s.via("Flatten", 21, "i4_via_cast", x4, INT4, I8, axis=1, desc="int4 (new in 21)", references=[x4.reshape(2, 6)])

    # GroupNormalization-21: scale/bias per channel, stash_type.
    rng = s.rng("GroupNormalization21")
    for tag, shape, g, elem, extra in (("nchw_g2_f32", (2, 4, 3, 3), 2, F, {}),
                                       ("ncl_g3_eps_f32", (1, 6, 5), 3, F, {"epsilon": 1e-3}),
                                       ("g1_f64", (2, 3, 4), 1, D, {}),
                                       ("g_eq_c_f32", (2, 4, 5), 4, F, {}),
                                       ("f16_stash_f32", (2, 4, 3), 2, H, {"stash_type": 1}),
                                       ("nc_only_f32", (3, 6), 3, F, {}),
                                       ("g2_f64_stash_f64", (2, 4, 3), 2, D, {"stash_type": 11})):
        c = shape[1]
        # stash_type defaults to float32: a float64 X is normalized in float32, so its
        # output is only as precise as float32 (and how ORT's float32 ReduceMean sums).
        f32_stage = elem == D and extra.get("stash_type", 1) == 1
        s.add("GroupNormalization", 21, tag,
              [N("GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=g, **extra)],
              [("x", rand(rng, shape, elem, -3, 3)), ("scale", rand(rng, (c,), elem)), ("bias", rand(rng, (c,), elem))],
              [("y", elem)], tol={"rtol": 1e-4, "atol": 1e-5} if f32_stage else None,
              desc="float64 X, default stash_type 1: stage one in float32, float32 tolerance" if f32_stage else "")

    gen_identity(s, 21)
    gen_if(s, 21)
    gen_loop(s, 21)
    gen_pad(s, 21)

    # QLinearMatMul-21.
    rng = s.rng("QLinearMatMul")

    def qmm(tag, a, b, a_zp, b_zp, y_zp, scales=(0.02, 0.03, 0.05), b_scale=None, inits=(), desc=""):
        ins = [("a", a), ("a_scale", np.array(scales[0], np.float32)), ("a_zp", a_zp),
               ("b", b), ("b_scale", np.array(scales[1], np.float32) if b_scale is None else b_scale),
               ("b_zp", b_zp), ("y_scale", np.array(scales[2], np.float32)), ("y_zp", y_zp)]
        init_names = {t.name for t in inits}
        ins = [(n, v) for n, v in ins if n not in init_names]
        names = ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"]
        out = elem_of(y_zp) if y_zp is not None else [t for t in inits if t.name == "y_zp"][0].data_type
        s.add("QLinearMatMul", 21, tag, [N("QLinearMatMul", names, ["y"])], ins, [("y", out)], inits=list(inits),
              desc=desc)

    qmm("u8_2d", rand(rng, (3, 4), U8, 0, 255), rand(rng, (4, 5), U8, 0, 255), np.array(113, np.uint8),
        np.array(120, np.uint8), np.array(127, np.uint8))
    qmm("i8_2d", rand(rng, (2, 6), I8, -128, 127), rand(rng, (6, 3), I8, -128, 127), np.array(-3, np.int8),
        np.array(5, np.int8), np.array(1, np.int8))
    qmm("u8_batched_3d", rand(rng, (2, 3, 4), U8, 0, 255), rand(rng, (2, 4, 2), U8, 0, 255),
        np.array(128, np.uint8), np.array(128, np.uint8), np.array(100, np.uint8))
    qmm("u8_per_column_b", rand(rng, (2, 4), U8, 0, 255), rand(rng, (4, 3), U8, 0, 255),
        np.array(128, np.uint8), np.array([100, 128, 140], np.uint8), np.array(128, np.uint8),
        b_scale=np.array([0.01, 0.02, 0.04], np.float32), desc="per-column b scale and zero point")
    f8a = f8_tensor("a", FLOAT8E4M3FN, rng.choice(F8_GRID, (2, 3)))
    f8b = f8_tensor("b", FLOAT8E4M3FN, rng.choice(F8_GRID, (3, 2)))
    zps = [f8_tensor(n, FLOAT8E4M3FN, 0.0) for n in ("a_zp", "b_zp", "y_zp")]
    s.add("QLinearMatMul", 21, "f8e4m3fn_initializers",
          [N("QLinearMatMul", ["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], ["q"]),
           N("DequantizeLinear", ["q", "y_scale", "y_zp"], ["y"])],
          [("a_scale", np.array(0.5, np.float32)), ("b_scale", np.array(0.25, np.float32)),
           ("y_scale", np.array(0.125, np.float32))], [("y", F)], inits=[f8a, f8b] + zps,
          desc="float8 operands (new in 21), result read back through DequantizeLinear")

    gen_quantize(s, 21)
    gen_reshape(s, 21)
    gen_scan(s, 21)
    gen_shape(s, 21)
    gen_size(s, 21)

    # Squeeze-21 / Unsqueeze-21 / Transpose-21.
    rng = s.rng("Squeeze")
    x = rand(rng, (1, 3, 1, 4), F)
    s.add("Squeeze", 21, "axes_0_2", [N("Squeeze", ["x", "axes"], ["y"])], [("x", x)], [("y", F)],
          inits=[init("axes", i64(0, 2))])
    s.unary("Squeeze", 21, "no_axes_all_ones", x, F)
    s.add("Squeeze", 21, "neg_axes_input", [N("Squeeze", ["x", "axes"], ["y"])], [("x", x), ("axes", i64(-2))], [("y", F)])
    s.add("Squeeze", 21, "to_rank0_i64", [N("Squeeze", ["x", "axes"], ["y"])], [("x", np.array([9], np.int64))],
          [("y", I64)], inits=[init("axes", i64(0))])
    s.add("Squeeze", 21, "empty_dim_kept", [N("Squeeze", ["x", "axes"], ["y"])],
          [("x", np.zeros((0, 1, 3), np.float32))], [("y", F)], inits=[init("axes", i64(1))])
    nodes = [N("Cast", ["x"], ["m"], to=INT4), N("Squeeze", ["m", "axes"], ["r"]), N("Cast", ["r"], ["y"], to=I8)]
    x4 = rand(rng, (3, 1, 2), I8, -8, 7)
    s.add("Squeeze", 21, "i4_via_cast", nodes, [("x", x4)], [("y", I8)],
          inits=[init("axes", i64(1))], desc="int4 (new in 21)", references=[x4.reshape(3, 2)])

    rng = s.rng("Unsqueeze")
    s.add("Unsqueeze", 21, "rank0_to_1", [N("Unsqueeze", ["x", "axes"], ["y"])], [("x", np.array(np.float32(3)))],
          [("y", F)], inits=[init("axes", i64(0))])
    s.add("Unsqueeze", 21, "axes_0_neg1", [N("Unsqueeze", ["x", "axes"], ["y"])], [("x", rand(rng, (3, 4), F))],
          [("y", F)], inits=[init("axes", i64(0, -1))])
    s.add("Unsqueeze", 21, "unsorted_axes_input", [N("Unsqueeze", ["x", "axes"], ["y"])],
          [("x", rand(rng, (2, 3), I32, -9, 9)), ("axes", i64(3, 0))], [("y", I32)])
    s.add("Unsqueeze", 21, "empty_string", [N("Unsqueeze", ["x", "axes"], ["y"])],
          [("x", np.zeros((0,), dtype="<U1"))], [("y", S)], inits=[init("axes", i64(1))])
    nodes = [N("Cast", ["x"], ["m"], to=UINT4), N("Unsqueeze", ["m", "axes"], ["r"]), N("Cast", ["r"], ["y"], to=U8)]
    xu4 = rand(rng, (3,), U8, 0, 15)
    s.add("Unsqueeze", 21, "u4_via_cast", nodes, [("x", xu4)], [("y", U8)],
          inits=[init("axes", i64(0))], desc="uint4 (new in 21)", references=[xu4[None]])

    rng = s.rng("Transpose")
    s.unary("Transpose", 21, "default_perm_reverse", rand(rng, (2, 3, 4), F), F)
    s.unary("Transpose", 21, "perm_021_i64", rand(rng, (2, 3, 4), I64, -9, 9), I64, perm=[0, 2, 1])
    s.unary("Transpose", 21, "rank4_perm_f16", rand(rng, (2, 1, 3, 4), H), H, perm=[3, 0, 2, 1])
    s.unary("Transpose", 21, "rank1", rand(rng, (5,), F), F)
    s.unary("Transpose", 21, "empty_bool", np.zeros((0, 3), bool), B)
    s.unary("Transpose", 21, "string", np.array([["a", "b", "c"], ["d", "e", "f"]]), S)
    x4, xu4 = rand(rng, (3, 5), I8, -8, 7), rand(rng, (3, 3), U8, 0, 15)
    s.via("Transpose", 21, "i4_via_cast", x4, INT4, I8, perm=[1, 0], desc="int4 (new in 21)",
          references=[x4.T.copy()])
    s.via("Transpose", 21, "u4_odd_via_cast", xu4, UINT4, U8, desc="uint4, odd count", references=[xu4.T.copy()])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (replaced)")
    ap.add_argument("--filter", help="only write cases whose name matches this regex")
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    s = Suite(args.out, args.filter)
    gen_opset18(s)
    gen_opset19(s)
    gen_opset20(s)
    gen_opset21(s)
    missing = [f"{op}-{v}" for v, ops in OP_VERSIONS.items() for op in ops if (op, v) not in s.covered]
    if missing:
        sys.exit(f"gen_cases: no case for {', '.join(missing)}")
    index = {"generator": "tests/differential/gen_cases.py", "onnx_python": onnx.__version__,
             "op_versions": {f"{op}-{v}": s.covered[(op, v)] for v, ops in OP_VERSIONS.items() for op in ops},
             "cases": [c["name"] for c in s.cases]}
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
    n_ops = sum(len(v) for v in OP_VERSIONS.values())
    print(f"gen_cases: wrote {len(s.cases)} cases for {n_ops} operator versions to {args.out}")


if __name__ == "__main__":
    main()
