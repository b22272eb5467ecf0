"""Comparison of `hepml run` outputs with reference .npy files, shared by
tests/differential/check_diff.py and tests/models/check_models.py.

Rules (README.md in this folder says why):
  - shapes must be identical (rank 0 is not (1,));
  - dtypes must be identical, except that string arrays compare by value whatever their
    fixed width ('<U3' equals '<U5' when the strings are equal);
  - floating point: NaN where the reference has NaN, the same infinities, and
    |actual - expected| <= atol + rtol * |expected| elsewhere;
  - integers, bool and strings: exact.
"""

import os
import re
import shlex
import subprocess

import numpy as np

# dtype -> (rtol, atol)
DEFAULT_TOLERANCE = {
    np.dtype(np.float16): (4e-3, 1e-3),
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-7, 1e-9),
}


def sanitize(name):
    """The file stem `hepml run --output-dir` uses for a graph output name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def tolerance_for(dtype, override=None):
    rtol, atol = DEFAULT_TOLERANCE.get(np.dtype(dtype), (0.0, 0.0))
    if override:
        rtol = override.get("rtol", rtol)
        atol = override.get("atol", atol)
    return rtol, atol


def _fmt_index(shape, flat):
    return str(tuple(int(i) for i in np.unravel_index(flat, shape))) if shape else "()"


def compare(actual, expected, rtol=None, atol=None, max_report=3):
    """Returns a list of human-readable problems; empty when `actual` matches."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if expected.dtype.kind in "US":
        if actual.dtype.kind not in "US":
            return [f"dtype {actual.dtype} where {expected.dtype} (string) was expected"]
    elif actual.dtype != expected.dtype:
        return [f"dtype {actual.dtype} where {expected.dtype} was expected"]
    if actual.shape != expected.shape:
        return [f"shape {actual.shape} where {expected.shape} was expected"]
    if expected.size == 0:
        return []
    a, e = actual.ravel(), expected.ravel()
    if expected.dtype.kind == "f":
        d_rtol, d_atol = tolerance_for(expected.dtype)
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        nan_a, nan_e = np.isnan(a64), np.isnan(e64)
        inf_e = np.isinf(e64)
        finite = ~nan_e & ~inf_e
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(a64 - e64)
            bad_finite = finite & ~(err <= atol + rtol * np.abs(e64))
        bad = (nan_a != nan_e) | (inf_e & (a64 != e64)) | bad_finite
        if not bad.any():
            return []
        idx = np.nonzero(bad)[0]
        problems = [f"{len(idx)} of {e.size} elements differ beyond rtol={rtol:g} atol={atol:g}"]
        fin = finite & ~nan_a
        if fin.any():
            rel = err[fin] / np.maximum(np.abs(e64[fin]), np.finfo(np.float64).tiny)
            problems[0] += f" (max abs err {err[fin].max():.3g}, max rel err {rel.max():.3g})"
        for i in idx[:max_report]:
            problems.append(f"at {_fmt_index(expected.shape, i)}: got {a[i]!r}, expected {e[i]!r}")
        return problems
    if expected.dtype.kind in "US":
        bad = np.array([str(x) != str(y) for x, y in zip(a, e)])
    else:
        bad = a != e
    if not bad.any():
        return []
    idx = np.nonzero(bad)[0]
    problems = [f"{len(idx)} of {e.size} elements differ (exact comparison for {expected.dtype})"]
    for i in idx[:max_report]:
        problems.append(f"at {_fmt_index(expected.shape, i)}: got {a[i]!r}, expected {e[i]!r}")
    return problems


def perturb(expected, rtol=None, atol=None, scale=10.0):
    """A copy of `expected` that `compare` must reject (scale > 1) or accept (scale < 1,
    floating point only): one element moved by `scale` times the tolerance, or flipped,
    incremented, extended; an empty array gets a different shape."""
    e = np.array(expected, copy=True)
    if e.size == 0:
        if scale < 1:
            return e
        return np.zeros(e.shape[:-1] + (e.shape[-1] + 1,) if e.ndim else (1,), dtype=e.dtype)
    flat = e.reshape(-1)
    if e.dtype.kind == "f":
        d_rtol, d_atol = tolerance_for(e.dtype)
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
        finite = np.nonzero(np.isfinite(flat))[0]
        if len(finite) == 0:
            if scale < 1:
                return e
            flat[0] = 0 if not np.isnan(flat[0]) else 1.0
            return e
        # Move the element with the largest magnitude: the one rtol matters most for.
        i = finite[np.argmax(np.abs(flat[finite].astype(np.float64)))]
        v = float(flat[i])
        step = scale * (atol + rtol * abs(v))
        with np.errstate(over="ignore"):
            new = flat.dtype.type(v + step)
            if scale > 1 and (not np.isfinite(new) or new == flat[i]):
                new = flat.dtype.type(v - step)
        if scale < 1 and abs(float(new) - v) > atol + rtol * abs(v):
            new = flat[i]  # rounding to the dtype would overshoot: leave it
        flat[i] = new
        return e
    if scale < 1:
        return e
    if e.dtype.kind == "b":
        flat[0] = not flat[0]
    elif e.dtype.kind in "iu":
        flat[0] = flat[0] + 1 if flat[0] != np.iinfo(e.dtype).max else flat[0] - 1
    elif e.dtype.kind == "U":
        e = e.astype(f"<U{e.dtype.itemsize // 4 + 1}")
        e.reshape(-1)[0] = str(e.reshape(-1)[0]) + "x"
    else:
        raise TypeError(f"cannot perturb dtype {e.dtype}")
    return e


def run_hepml(hepml, model, feeds, out_dir, timeout):
    """Runs `<hepml> run MODEL --input NAME=FILE ... --output-dir OUT_DIR`.

    hepml is a command line (split like a shell would: "build/hepml" or
    "node bench/peers/ort_cli.mjs"). Returns (ok, message).
    """
    cmd = shlex.split(hepml) + ["run", model]
    for name, path in feeds:
        cmd += ["--input", f"{name}={path}"]
    cmd += ["--output-dir", out_dir]
    os.makedirs(out_dir, exist_ok=True)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              text=True, errors="replace")
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout}s: {' '.join(shlex.quote(c) for c in cmd)}"
    except OSError as e:
        return False, f"cannot run {cmd[0]}: {e}"
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-6:])
        return False, f"exit status {proc.returncode}: {tail}"
    return True, ""
