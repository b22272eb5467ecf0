#!/usr/bin/python3
"""Extra ONNX backend-suite cases for the opset-17 operators that Debian's
libonnx-testdata (ONNX 1.12) leaves without a passing test: Bernoulli (its suite
data cannot be reproduced, see skips.txt), GlobalLpPool, LpNormalization, LpPool,
MaxRoiPool, Multinomial, RandomNormal, RandomNormalLike, RandomUniform and
RandomUniformLike.

    /usr/bin/python3 tests/conformance/make_extra_cases.py --out DIR

writes DIR/<test name>/model.onnx and DIR/<test name>/test_data_set_0/input_K.pb,
output_K.pb (TensorProto), the backend suite's layout, so `hepml conformance --data
DIR` runs them. DIR is replaced. Every test is named test_extra_<operator>_<what>.

Expected outputs come from the numpy implementations of each operator's
definition below, never from hepml or ONNX Runtime. The models use opset 17
(onnx 1.12's checker validates each one).

Random operators cannot be compared value by value, so their models end in
checks whose results are known: the random node's output y feeds ops that
compute
  - zeros      y * 0: right shape and dtype, and every value finite;
  - in_range   1 if every value lies in the distribution's support
               (RandomUniform: low <= y < high; Bernoulli: y in {0, 1};
               Multinomial: 0 <= y < classes), as an int32 scalar;
  - *_ok       a moment or frequency of many (10^4) draws within 6 standard
               errors of its exact value (the draws of a correct sampler fail
               that with probability below 1e-8; a wrong distribution, range
               or weighting fails it).
and, where the result is certain, the values themselves: Bernoulli with p in
{0, 1}, Multinomial with one class of probability 1, RandomNormal with a scale of
1e-6 compared with its mean (tolerance in skips.txt: atol 1e-4, i.e. 100 scales).
For every check case the generator draws the same distribution with numpy,
evaluates the checks and asserts they give the expected values, so the
tolerances are known to pass a correct sampler.
"""
import argparse
import itertools
import math
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17
N_DRAWS = (100, 100)  # shape of the sampled tensors in the check cases

F, D, H = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16
I32, I64, B = TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL
NP_OF = {F: np.float32, D: np.float64, H: np.float16, I32: np.int32, I64: np.int64, B: np.bool_}
ELEM_OF = {np.dtype(v): k for k, v in NP_OF.items()}


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


class Writer:
    def __init__(self, out):
        self.out = out
        self.names = []

    def case(self, name, nodes, inputs, expected, inits=()):
        """inputs: [(name, array)]; expected: [(output name, array)]."""
        assert name.startswith("test_extra_") and name not in self.names, name
        self.names.append(name)
        graph = helper.make_graph(
            nodes, name,
            [helper.make_tensor_value_info(n, ELEM_OF[a.dtype], a.shape) for n, a in inputs],
            [helper.make_tensor_value_info(n, ELEM_OF[a.dtype], a.shape) for n, a in expected],
            initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
        model = helper.make_model(graph, producer_name="hepml-make_extra_cases",
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model)
        d = os.path.join(self.out, name)
        os.makedirs(os.path.join(d, "test_data_set_0"))
        onnx.save(model, os.path.join(d, "model.onnx"))
        for prefix, values in (("input", inputs), ("output", expected)):
            for k, (n, a) in enumerate(values):
                with open(os.path.join(d, "test_data_set_0", f"{prefix}_{k}.pb"), "wb") as f:
                    f.write(numpy_helper.from_array(np.asarray(a), n).SerializeToString())


# ---------------------------------------------------------------------------------------
# numpy implementations of the deterministic operators

def global_lp_pool(x, p):
    """GlobalLpPool: (sum over all spatial axes of |x|^p)^(1/p), spatial dims kept as 1."""
    axes = tuple(range(2, x.ndim))
    s = np.sum(np.abs(x.astype(np.float64)) ** p, axis=axes, keepdims=True)
    return (s ** (1.0 / p)).astype(x.dtype)


def lp_normalization(x, axis, p):
    """LpNormalization: x / ||x||_p along `axis` (p is 1 or 2)."""
    xd = x.astype(np.float64)
    norm = np.sum(np.abs(xd) ** p, axis=axis, keepdims=True) ** (1.0 / p)
    return (xd / norm).astype(x.dtype)


def pool_geometry(in_sp, kernel, strides, pads, auto_pad):
    """Output sizes and (begin, end) pads per spatial axis, as for every ONNX pool."""
    out, pb, pe = [], [], []
    for d, (n, k, s) in enumerate(zip(in_sp, kernel, strides)):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)
            total = max((o - 1) * s + k - n, 0)
            small = total // 2
            b, e = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        elif auto_pad == "VALID":
            o, b, e = (n - k) // s + 1, 0, 0
        else:
            b, e = pads[d], pads[d + len(in_sp)]
            o = (n + b + e - k) // s + 1
        out.append(o)
        pb.append(b)
        pe.append(e)
    return out, pb, pe


def lp_pool(x, kernel, p=2, strides=None, pads=None, auto_pad="NOTSET"):
    """LpPool-11: (sum over the window of |x|^p)^(1/p); padding adds zeros."""
    nd = len(kernel)
    strides = strides or [1] * nd
    pads = pads or [0] * (2 * nd)
    out, pb, pe = pool_geometry(x.shape[2:], kernel, strides, pads, auto_pad)
    xp = np.pad(np.abs(x.astype(np.float64)) ** p, [(0, 0), (0, 0)] + list(zip(pb, pe)))
    y = np.zeros(x.shape[:2] + tuple(out))
    for o in itertools.product(*[range(n) for n in out]):
        win = tuple(slice(o[d] * strides[d], o[d] * strides[d] + kernel[d]) for d in range(nd))
        y[(Ellipsis,) + o] = np.sum(xp[(Ellipsis,) + win], axis=tuple(range(2, 2 + nd)))
    return (y ** (1.0 / p)).astype(x.dtype)


def round_half_away(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def max_roi_pool(x, rois, pooled_shape, spatial_scale=1.0):
    """MaxRoiPool (Fast R-CNN RoI pooling): each RoI [batch, x1, y1, x2, y2], scaled
    and rounded to whole pixels (inclusive corners), is cut into pooled_shape bins
    [floor(i * size / pooled), ceil((i + 1) * size / pooled)) clipped to the image; a
    bin's value is its maximum, 0 for an empty bin."""
    n_rois = rois.shape[0]
    _, c, height, width = x.shape
    ph, pw = pooled_shape
    y = np.zeros((n_rois, c, ph, pw), x.dtype)
    for r in range(n_rois):
        b = int(rois[r, 0])
        scaled = [float(v) * spatial_scale for v in rois[r, 1:]]
        assert all(abs(v - math.floor(v) - 0.5) > 1e-3 for v in scaled), "a tie: rounding rules differ"
        x1, y1, x2, y2 = (round_half_away(v) for v in scaled)
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        for i in range(ph):
            h0 = min(max(math.floor(i * rh / ph) + y1, 0), height)
            h1 = min(max(math.ceil((i + 1) * rh / ph) + y1, 0), height)
            for j in range(pw):
                w0 = min(max(math.floor(j * rw / pw) + x1, 0), width)
                w1 = min(max(math.ceil((j + 1) * rw / pw) + x1, 0), width)
                if h1 > h0 and w1 > w0:
                    y[r, :, i, j] = x[b, :, h0:h1, w0:w1].max(axis=(1, 2))
    return y


# numpy samplers with each random operator's definition (for the checks' self-test).

def sample_bernoulli(rng, p):
    return (rng.random(p.shape) < p).astype(np.float64)


def sample_multinomial(rng, logits, sample_size):
    out = np.zeros((logits.shape[0], sample_size), np.int64)
    for b, row in enumerate(logits.astype(np.float64)):
        prob = np.exp(row - row.max())
        out[b] = rng.choice(len(row), size=sample_size, p=prob / prob.sum())
    return out


# ---------------------------------------------------------------------------------------
# the cases

def gen_global_lp_pool(w, rng):
    for tag, shape, p, dt in (("p2_nchw", (2, 3, 4, 5), None, np.float32),
                              ("p1_nchw", (1, 2, 3, 3), 1, np.float32),
                              ("p3_ncl", (2, 2, 7), 3, np.float32),
                              ("p2_ncdhw_f64", (1, 2, 2, 3, 4), 2, np.float64),
                              ("p2_spatial_1x1", (3, 4, 1, 1), 2, np.float32)):
        x = rng.uniform(-2, 2, shape).astype(dt)
        attrs = {} if p is None else {"p": p}
        w.case(f"test_extra_global_lp_pool_{tag}", [N("GlobalLpPool", ["x"], ["y"], **attrs)],
               [("x", x)], [("y", global_lp_pool(x, 2 if p is None else p))])


def gen_lp_normalization(w, rng):
    for tag, shape, axis, p, dt in (("default_axis_p2", (3, 4), None, None, np.float32),
                                    ("axis0_p2", (3, 4), 0, 2, np.float32),
                                    ("axis1_p1_rank3", (2, 3, 4), 1, 1, np.float32),
                                    ("neg_axis_p1_f64", (2, 5, 3), -2, 1, np.float64),
                                    ("p2_f64_rank1", (6,), 0, 2, np.float64)):
        x = rng.uniform(-3, 3, shape).astype(dt)
        x[np.abs(x) < 0.1] = 0.5  # no near-zero vectors
        attrs = {k: v for k, v in (("axis", axis), ("p", p)) if v is not None}
        w.case(f"test_extra_lp_normalization_{tag}", [N("LpNormalization", ["x"], ["y"], **attrs)],
               [("x", x)], [("y", lp_normalization(x, -1 if axis is None else axis, 2 if p is None else p))])


def gen_lp_pool(w, rng):
    for tag, shape, attrs in (
            ("2d_default_p", (1, 2, 5, 5), dict(kernel_shape=[3, 3])),
            ("2d_p1_strides_pads", (2, 1, 6, 7), dict(kernel_shape=[3, 2], p=1, strides=[2, 2], pads=[1, 0, 1, 1])),
            ("1d_p3", (1, 3, 10), dict(kernel_shape=[4], p=3, strides=[3])),
            ("2d_same_upper", (1, 1, 5, 6), dict(kernel_shape=[2, 3], auto_pad="SAME_UPPER", strides=[2, 2])),
            ("2d_same_lower", (1, 1, 5, 6), dict(kernel_shape=[2, 3], auto_pad="SAME_LOWER", strides=[2, 2])),
            ("2d_valid_f64", (1, 2, 5, 4), dict(kernel_shape=[2, 2], auto_pad="VALID", p=2)),
            ("3d_p2", (1, 1, 3, 4, 4), dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2]))):
        dt = np.float64 if tag.endswith("f64") else np.float32
        x = rng.uniform(-2, 2, shape).astype(dt)
        y = lp_pool(x, attrs["kernel_shape"], attrs.get("p", 2), attrs.get("strides"), attrs.get("pads"),
                    attrs.get("auto_pad", "NOTSET"))
        w.case(f"test_extra_lp_pool_{tag}", [N("LpPool", ["x"], ["y"], **attrs)], [("x", x)], [("y", y)])


def gen_max_roi_pool(w, rng):
    x = rng.uniform(-5, 5, (2, 3, 8, 10)).astype(np.float32)
    # [batch, x1, y1, x2, y2]; after scaling no coordinate ends in .5.
    rois = np.array([[0, 0, 0, 9, 7], [1, 2, 1, 6, 5], [0, 3.2, 2.7, 8.9, 6.1], [1, 8, 6, 12, 11],
                     [0, 4, 4, 4, 4], [1, -3, -2, 2, 3]], np.float32)
    wide = rois.copy()
    wide[:, 1:] *= np.float32(2.3)
    for tag, attrs, r in (("pooled_2x2", dict(pooled_shape=[2, 2]), rois),
                          ("pooled_3x4", dict(pooled_shape=[3, 4]), rois),
                          ("scale_half", dict(pooled_shape=[2, 3], spatial_scale=0.5), wide),
                          ("pooled_1x1", dict(pooled_shape=[1, 1]), rois[:3])):
        y = max_roi_pool(x, r, attrs["pooled_shape"], attrs.get("spatial_scale", 1.0))
        w.case(f"test_extra_max_roi_pool_{tag}", [N("MaxRoiPool", ["x", "rois"], ["y"], **attrs)],
               [("x", x), ("rois", r)], [("y", y)])
    x64 = x.astype(np.float64)
    w.case("test_extra_max_roi_pool_f64", [N("MaxRoiPool", ["x", "rois"], ["y"], pooled_shape=[2, 2])],
           [("x", x64), ("rois", rois.astype(np.float64))], [("y", max_roi_pool(x64, rois, [2, 2]))])


class Checks:
    """Nodes that reduce a sampled tensor `y` to results known in advance."""

    def __init__(self, y_elem):
        self.nodes, self.inits, self.expected = [], [], []
        self.y_elem = y_elem
        self.k = 0

    def const(self, value, elem):
        self.k += 1
        name = f"c{self.k}"
        self.inits.append((name, np.array(value, NP_OF[elem])))
        return name

    def tmp(self):
        self.k += 1
        return f"t{self.k}"

    def add(self, op, ins, **attrs):
        out = self.tmp()
        self.nodes.append(N(op, ins, [out], **attrs))
        return out

    def output(self, op, ins, name, value, **attrs):
        self.nodes.append(N(op, ins, [name], **attrs))
        self.expected.append((name, value))

    def zeros(self, y_value_shape):
        """zeros = y * 0."""
        self.output("Mul", ["y", self.const(0, self.y_elem)], "zeros",
                    np.zeros(y_value_shape, NP_OF[self.y_elem]))

    def as_double(self):
        return self.add("Cast", ["y"], to=D)

    def in_range(self, lo_ok, hi_ok):
        """in_range = min over y of Cast(lo_ok(y) and hi_ok(y), int32): 1."""
        both = self.add("And", [lo_ok, hi_ok])
        self.output("ReduceMin", [self.add("Cast", [both], to=I32)], "in_range", np.array(1, np.int32),
                    keepdims=0)

    def near(self, value_name, target, tol, name):
        """name = |value - target| < tol: True."""
        dev = self.add("Abs", [self.add("Sub", [value_name, self.const(target, D)])])
        self.output("Less", [dev, self.const(tol, D)], name, np.array(True))


def six_se(sd, n):
    return 6.0 * sd / math.sqrt(n)


def gen_random_uniform(w, rng):
    n = int(np.prod(N_DRAWS))
    # low/high exact in float16, so the bounds compare the same in every dtype.
    for tag, elem, low, high, seed in (("default_range_f32", F, None, None, 1.0),
                                       ("range_f64", D, -2.0, 3.0, 2.0),
                                       ("range_f16", H, -0.5, 0.75, 3.0),
                                       ("negative_range_f32_unseeded", F, -7.0, -6.5, None)):
        lo, hi = (0.0 if low is None else low), (1.0 if high is None else high)
        attrs = dict(shape=list(N_DRAWS))
        if elem != F:
            attrs["dtype"] = elem
        attrs.update({k: v for k, v in (("low", low), ("high", high), ("seed", seed)) if v is not None})
        c = uniform_checks(Checks(elem), elem, lo, hi, n, rng)
        w.case(f"test_extra_random_uniform_{tag}", [N("RandomUniform", [], ["y"], **attrs)] + c.nodes, [],
               c.expected, inits=c.inits)
    c = Checks(F)
    c.zeros((0, 3))
    w.case("test_extra_random_uniform_empty_shape", [N("RandomUniform", [], ["y"], shape=[0, 3], seed=4.0)] + c.nodes,
           [], c.expected, inits=c.inits)


def uniform_checks(c, elem, lo, hi, n, rng):
    """zeros; in_range (lo <= y < hi); mean_ok (within 6 s.e. of (lo+hi)/2); spread_ok
    (min below lo + 1% and max above hi - 1% of the range)."""
    c.zeros(N_DRAWS)
    c.in_range(c.add("GreaterOrEqual", ["y", c.const(lo, elem)]), c.add("Less", ["y", c.const(hi, elem)]))
    yd = c.as_double()
    width = hi - lo
    c.near(c.add("ReduceMean", [yd], keepdims=0), (lo + hi) / 2, six_se(width / math.sqrt(12), n), "mean_ok")
    low_seen = c.add("Less", [c.add("ReduceMin", [yd], keepdims=0), c.const(lo + 0.01 * width, D)])
    high_seen = c.add("Greater", [c.add("ReduceMax", [yd], keepdims=0), c.const(hi - 0.01 * width, D)])
    c.output("And", [low_seen, high_seen], "spread_ok", np.array(True))
    # Self-test: numpy's draws pass the same checks.
    s = rng.uniform(lo, hi, n)
    assert abs(s.mean() - (lo + hi) / 2) < six_se(width / math.sqrt(12), n)
    assert s.min() < lo + 0.01 * width and s.max() > hi - 0.01 * width
    return c


def normal_checks(c, mean, scale, n, rng):
    """zeros; mean_ok, sd_ok (within 6 s.e.); one_sigma_ok: the fraction within one
    scale of the mean is 0.682689 within 6 s.e. (a uniform of the same mean and
    variance has 0.577)."""
    c.zeros(N_DRAWS)
    yd = c.as_double()
    m = c.add("ReduceMean", [yd], keepdims=0)
    c.near(m, mean, six_se(scale, n), "mean_ok")
    dev = c.add("Sub", [yd, m])
    sd = c.add("Sqrt", [c.add("ReduceMean", [c.add("Mul", [dev, dev])], keepdims=0)])
    c.near(sd, scale, six_se(scale / math.sqrt(2), n), "sd_ok")
    inside = c.add("Less", [c.add("Abs", [c.add("Sub", [yd, c.const(mean, D)])]), c.const(scale, D)])
    frac = c.add("ReduceMean", [c.add("Cast", [inside], to=D)], keepdims=0)
    p1 = math.erf(1 / math.sqrt(2))
    c.near(frac, p1, six_se(math.sqrt(p1 * (1 - p1)), n), "one_sigma_ok")
    s = rng.normal(mean, scale, n)
    assert abs(s.mean() - mean) < six_se(scale, n)
    assert abs(s.std() - scale) < six_se(scale / math.sqrt(2), n)
    assert abs(np.mean(np.abs(s - mean) < scale) - p1) < six_se(math.sqrt(p1 * (1 - p1)), n)
    return c


def tiny_scale(elem, shape, mean):
    """RandomNormal(mean, scale 1e-6) equals its mean to within 1e-4 (skips.txt)."""
    return np.full(shape, mean, NP_OF[elem])


def gen_random_normal(w, rng):
    n = int(np.prod(N_DRAWS))
    for tag, elem, mean, scale, seed in (("default_f32", F, None, None, 1.0),
                                         ("mean_scale_f64", D, 3.0, 0.5, 2.0),
                                         ("mean_scale_f16", H, -1.0, 2.0, 3.0),
                                         ("unseeded_f32", F, 10.0, 4.0, None)):
        mu, sd = (0.0 if mean is None else mean), (1.0 if scale is None else scale)
        attrs = dict(shape=list(N_DRAWS))
        if elem != F:
            attrs["dtype"] = elem
        attrs.update({k: v for k, v in (("mean", mean), ("scale", scale), ("seed", seed)) if v is not None})
        c = normal_checks(Checks(elem), mu, sd, n, rng)
        w.case(f"test_extra_random_normal_{tag}", [N("RandomNormal", [], ["y"], **attrs)] + c.nodes, [],
               c.expected, inits=c.inits)
    for elem, shape in ((F, [3, 4]), (D, [2, 3, 2]), (H, [5])):
        name = {F: "f32", D: "f64", H: "f16"}[elem]
        w.case(f"test_extra_random_normal_tiny_scale_{name}",
               [N("RandomNormal", [], ["y"], shape=shape, mean=5.0, scale=1e-6, dtype=elem, seed=5.0)], [],
               [("y", tiny_scale(elem, shape, 5.0))])


def gen_random_like(w, rng):
    n = int(np.prod(N_DRAWS))
    like = rng.uniform(-1, 1, N_DRAWS)
    for tag, in_dt, elem, attrs in (("f32_input", np.float32, None, dict(seed=1.0)),
                                    ("f64_input", np.float64, None, dict(low=-3.0, high=-1.0, seed=2.0)),
                                    ("int32_input_dtype_f32", np.int32, F, dict(low=2.0, high=2.5, seed=3.0)),
                                    ("f32_input_dtype_f16", np.float32, H, dict(low=0.25, high=4.0))):
        out_elem = elem if elem is not None else ELEM_OF[np.dtype(in_dt)]
        if elem is not None:
            attrs = dict(attrs, dtype=elem)
        c = uniform_checks(Checks(out_elem), out_elem, attrs.get("low", 0.0), attrs.get("high", 1.0), n, rng)
        w.case(f"test_extra_random_uniform_like_{tag}", [N("RandomUniformLike", ["x"], ["y"], **attrs)] + c.nodes,
               [("x", like.astype(in_dt))], c.expected, inits=c.inits)
    for tag, in_dt, elem, attrs in (("f32_input", np.float32, None, dict(seed=1.0)),
                                    ("f64_input", np.float64, None, dict(mean=-2.0, scale=0.1, seed=2.0)),
                                    ("int64_input_dtype_f64", np.int64, D, dict(mean=1.0, scale=3.0)),
                                    ("f32_input_dtype_f16", np.float32, H, dict(mean=0.5, scale=0.25, seed=4.0))):
        out_elem = elem if elem is not None else ELEM_OF[np.dtype(in_dt)]
        if elem is not None:
            attrs = dict(attrs, dtype=elem)
        c = normal_checks(Checks(out_elem), attrs.get("mean", 0.0), attrs.get("scale", 1.0), n, rng)
        w.case(f"test_extra_random_normal_like_{tag}", [N("RandomNormalLike", ["x"], ["y"], **attrs)] + c.nodes,
               [("x", like.astype(in_dt))], c.expected, inits=c.inits)
    x = np.zeros((2, 3), np.float32)
    w.case("test_extra_random_normal_like_tiny_scale",
           [N("RandomNormalLike", ["x"], ["y"], mean=-4.0, scale=1e-6, seed=6.0)], [("x", x)],
           [("y", tiny_scale(F, x.shape, -4.0))])


def gen_bernoulli(w, rng):
    # p in {0, 1}: the draw is certain, y = p (numpy's sampler agrees).
    p01 = (rng.random((4, 5)) < 0.5).astype(np.float64)
    for tag, in_dt, elem, extra in (("p01_f32", np.float32, None, dict(seed=1.0)),
                                    ("p01_f64_to_bool", np.float64, B, dict(seed=2.0)),
                                    ("p01_f32_to_int32", np.float32, I32, {}),
                                    ("p01_f16_to_int64", np.float16, I64, dict(seed=3.0)),
                                    ("p01_f32_to_f64", np.float32, D, dict(seed=4.0))):
        p = p01.astype(in_dt)
        out_np = NP_OF[elem] if elem is not None else in_dt
        y = sample_bernoulli(rng, p.astype(np.float64)).astype(out_np)
        assert np.array_equal(y, p.astype(out_np))
        attrs = dict(extra)
        if elem is not None:
            attrs["dtype"] = elem
        w.case(f"test_extra_bernoulli_{tag}", [N("Bernoulli", ["p"], ["y"], **attrs)], [("p", p)], [("y", y)])
    # p = 0.3 everywhere / p varying: y in {0, 1}; the mean of y is mean(p) within 6 s.e.
    n = int(np.prod(N_DRAWS))
    for tag, p in (("p03_f32", np.full(N_DRAWS, 0.3, np.float32)),
                   ("p_varying_f64", rng.uniform(0, 1, N_DRAWS))):
        c = Checks(ELEM_OF[p.dtype])
        c.zeros(N_DRAWS)
        one = c.const(1, ELEM_OF[p.dtype])
        # y * (1 - y) == 0 for y in {0, 1}
        prod = c.add("Mul", ["y", c.add("Sub", [one, "y"])])
        c.in_range(c.add("Equal", [prod, c.const(0, ELEM_OF[p.dtype])]),
                   c.add("GreaterOrEqual", ["y", c.const(0, ELEM_OF[p.dtype])]))
        se = math.sqrt(float(np.sum(p * (1 - p)))) / n
        c.near(c.add("ReduceMean", [c.as_double()], keepdims=0), float(p.mean()), 6 * se, "mean_ok")
        s = sample_bernoulli(rng, p.astype(np.float64))
        assert abs(s.mean() - p.mean()) < 6 * se
        w.case(f"test_extra_bernoulli_{tag}", [N("Bernoulli", ["p"], ["y"], seed=7.0)] + c.nodes, [("p", p)],
               c.expected, inits=c.inits)


def gen_multinomial(w, rng):
    # One class of probability 1 per row: every sample is that class.
    certain = np.array([2, 0, 3])
    logits = rng.uniform(-3, 3, (3, 4)).astype(np.float32)
    for tag, fill, in_dt, elem, extra in (("certain_neg_inf_int32", -np.inf, np.float32, None, dict(sample_size=6)),
                                          ("certain_large_negative_int64", -1e4, np.float32, I64,
                                           dict(sample_size=4, seed=3.0)),
                                          ("certain_f64_default_sample_size", -np.inf, np.float64, I32, {})):
        x = np.full_like(logits, fill).astype(in_dt)
        x[np.arange(3), certain] = logits[np.arange(3), certain]
        k = extra.get("sample_size", 1)
        y = sample_multinomial(rng, x, k).astype(NP_OF[elem] if elem is not None else np.int32)
        assert np.array_equal(y, np.repeat(certain[:, None], k, axis=1))
        attrs = dict(extra)
        if elem is not None:
            attrs["dtype"] = elem
        w.case(f"test_extra_multinomial_{tag}", [N("Multinomial", ["x"], ["y"], **attrs)], [("x", x)], [("y", y)])
    one_class = rng.uniform(-1, 1, (2, 1)).astype(np.float32)
    w.case("test_extra_multinomial_single_class", [N("Multinomial", ["x"], ["y"], sample_size=5)],
           [("x", one_class)], [("y", np.zeros((2, 5), np.int32))])
    # Weighted draws: class frequencies within 6 s.e. of softmax(x).
    n = 10000
    probs = np.array([0.2, 0.3, 0.5])
    for tag, x in (("weighted_3_classes", np.log(probs)[None, :].astype(np.float32)),
                   ("shifted_logits", (np.log(probs) + 40.0)[None, :].astype(np.float32))):
        c = Checks(I32)
        c.in_range(c.add("GreaterOrEqual", ["y", c.const(0, I32)]), c.add("Less", ["y", c.const(3, I32)]))
        for cls in (0, 2):
            hit = c.add("Cast", [c.add("Equal", ["y", c.const(cls, I32)])], to=D)
            p = float(probs[cls])
            c.near(c.add("ReduceMean", [hit], keepdims=0), p, six_se(math.sqrt(p * (1 - p)), n), f"freq{cls}_ok")
            s = sample_multinomial(rng, x, n)
            assert abs(np.mean(s == cls) - p) < six_se(math.sqrt(p * (1 - p)), n)
        w.case(f"test_extra_multinomial_{tag}", [N("Multinomial", ["x"], ["y"], sample_size=n, seed=5.0)] + c.nodes,
               [("x", x)], c.expected, inits=c.inits)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to write (replaced)")
    args = ap.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    w = Writer(args.out)
    rng = np.random.default_rng(20240517)
    for gen in (gen_global_lp_pool, gen_lp_normalization, gen_lp_pool, gen_max_roi_pool, gen_random_uniform,
                gen_random_normal, gen_random_like, gen_bernoulli, gen_multinomial):
        gen(w, rng)
    print(f"make_extra_cases: {len(w.names)} cases in {args.out}")


if __name__ == "__main__":
    main()
