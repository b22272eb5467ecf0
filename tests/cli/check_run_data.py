#!/usr/bin/env python3
"""`hepml run MODEL --data URL --map INPUT=COLS --out FILE.npy`: batch inference over
datasets. Outputs are compared with numpy's computation of the same model over the
same columns; --shard 0/2 + 1/2 must equal the full run; a run killed mid-way must
finish with --resume to the identical output; bad input gives one-line errors.

ROOT fixtures come from --data (scikit-hep-testdata under shared/data/root)."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def hepml_run(hepml, *args, timeout=300):
    p = subprocess.run([hepml, "run", *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


RNG = np.random.default_rng(7)
W1 = RNG.normal(size=(3, 8)).astype(np.float32) * 0.01
B1 = RNG.normal(size=(8,)).astype(np.float32)
W2 = RNG.normal(size=(8, 2)).astype(np.float32)
B2 = RNG.normal(size=(2,)).astype(np.float32)


def mlp(x):
    x = x.astype(np.float32)
    return np.maximum(x @ W1 + B1, 0) @ W2 + B2


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def make_mlp(path):
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "B1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "B2"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in [(W1, "W1"), (B1, "B1"), (W2, "W2"), (B2, "B2")]]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], inits)
    save(g, path)


def make_two(path):
    """x [batch,3] float, n [batch] int64 -> s = sum(x, axis 1) (+) n as float; d = x * 2."""
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["sx"], keepdims=0),
        helper.make_node("Cast", ["n"], ["nf"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["sx", "nf"], ["s"]),
        helper.make_node("Add", ["x", "x"], ["d"]),
    ]
    g = helper.make_graph(nodes, "two",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
                           helper.make_tensor_value_info("n", TensorProto.INT64, ["batch"])],
                          [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch"]),
                           helper.make_tensor_value_info("d", TensorProto.FLOAT, ["batch", 3])],
                          [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    save(g, path)


def make_sum_pad(path, length):
    """p [batch, LEN] float -> t = sum over items."""
    nodes = [helper.make_node("ReduceSum", ["p", "axes"], ["t"], keepdims=0)]
    g = helper.make_graph(nodes, "sumpad", [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", length])],
                          [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch"])],
                          [numpy_helper.from_array(np.array([1], np.int64), "axes")])
    save(g, path)


def write_npz(path, n, seed=1):
    rng = np.random.default_rng(seed)
    cols = {"a": rng.normal(size=n).astype(np.float64), "b": rng.normal(size=n).astype(np.float32),
            "c": rng.integers(-50, 50, size=n).astype(np.int32), "k": rng.integers(0, 9, size=n).astype(np.int64)}
    np.savez(path, **cols)
    return cols


def one_line_error(err, needle, what):
    lines = err.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("hepml run:"), f"{what}: not one 'hepml run:' line: {err!r}")
    check(needle in err, f"{what}: stderr {err!r} lacks {needle!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    hepml = args.hepml
    zmumu = os.path.join(args.data, "root", "uproot-Zmumu-zstd.root")
    tmp = tempfile.mkdtemp(prefix="hepml-run-data-")
    mlp_path = os.path.join(tmp, "mlp.onnx")
    make_mlp(mlp_path)
    two_path = os.path.join(tmp, "two.onnx")
    make_two(two_path)

    # --- npz dataset: numpy reference, batch sizes that do not divide the entries.
    npz = os.path.join(tmp, "cols.npz")
    cols = write_npz(npz, 1000)
    x = np.stack([cols["a"], cols["b"], cols["c"]], axis=1)
    for bs in ["1000", "64", "7"]:
        out = os.path.join(tmp, f"npz_{bs}.npy")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", npz, "--map", "x=a,b,c", "--batch-size", bs, "--out", out)
        if check(rc == 0, f"npz batch {bs}: exit {rc}: {err}"):
            y = np.load(out)
            check(y.shape == (1000, 2) and y.dtype == np.float32, f"npz batch {bs}: shape {y.shape} {y.dtype}")
            check(np.allclose(y, mlp(x), atol=1e-4, rtol=1e-5), f"npz batch {bs}: values differ from numpy")
            check(err == "", f"npz batch {bs}: stderr without a terminal: {err!r}")
            check(not os.path.exists(out + ".progress") and not os.path.exists(out + ".partial"),
                  f"npz batch {bs}: progress/partial files left behind")

    # --- float32 columns feeding a float32 input: stacked without conversion, a
    # block of rows at a time (batches across and inside the 64-row blocks).
    f32 = os.path.join(tmp, "f32.npz")
    rng = np.random.default_rng(5)
    f32cols = {k: rng.normal(size=1000).astype(np.float32) for k in ("a", "b", "c")}
    np.savez(f32, **f32cols)
    xf = np.stack([f32cols["a"], f32cols["b"], f32cols["c"]], axis=1)
    for bs in ["1000", "130", "7"]:
        out = os.path.join(tmp, f"f32_{bs}.npy")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", f32, "--map", "x=a,b,c", "--batch-size", bs, "--out", out)
        if check(rc == 0, f"float32 npz batch {bs}: exit {rc}: {err}"):
            y = np.load(out)
            check(y.shape == (1000, 2) and np.allclose(y, mlp(xf), atol=1e-4, rtol=1e-5),
                  f"float32 npz batch {bs}: values differ from numpy")
        # Columns in another order give the other input.
        out = os.path.join(tmp, f"f32r_{bs}.npy")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", f32, "--map", "x=c,a,b", "--batch-size", bs, "--out", out)
        if check(rc == 0, f"float32 npz reordered batch {bs}: exit {rc}: {err}"):
            check(np.allclose(np.load(out), mlp(xf[:, [2, 0, 1]]), atol=1e-4, rtol=1e-5),
                  f"float32 npz reordered batch {bs}: values differ from numpy")

    # --- CSV dataset (int and float columns cast to float32).
    csv = os.path.join(tmp, "table.csv")
    with open(csv, "w") as f:
        f.write("u,v,w,label\n")
        for i in range(257):
            f.write(f"{i * 0.5},{-i},{(i % 13) * 1.25},x{i}\n")
    xc = np.array([[i * 0.5, -i, (i % 13) * 1.25] for i in range(257)])
    out = os.path.join(tmp, "csv.npy")
    rc, so, err = hepml_run(hepml, mlp_path, "--data", csv, "--map", "x=u,v,w", "--batch-size", "50", "--out", out)
    if check(rc == 0, f"csv: exit {rc}: {err}"):
        check(np.allclose(np.load(out), mlp(xc), atol=1e-4, rtol=1e-5), "csv: values differ from numpy")

    # --- several inputs and outputs: one file per output, STEM.<output>.npy.
    stem = os.path.join(tmp, "multi", "res.npy")
    rc, so, err = hepml_run(hepml, two_path, "--data", npz, "--map", "x=a,b,c", "--map", "n=k", "--batch-size", "300",
                            "--out", stem)
    if check(rc == 0, f"two outputs: exit {rc}: {err}"):
        s = np.load(os.path.join(tmp, "multi", "res.s.npy"))
        d = np.load(os.path.join(tmp, "multi", "res.d.npy"))
        xf = x.astype(np.float32)
        check(s.shape == (1000,) and np.allclose(s, xf.sum(axis=1) + cols["k"], atol=1e-4), "two outputs: s")
        check(d.shape == (1000, 3) and np.allclose(d, 2 * xf), "two outputs: d")

    # --- a fixed-array column (.npy of [N, 3]) maps as is; one of [N, 4] does not fit x[batch,3].
    arr = os.path.join(tmp, "arr.npy")
    np.save(arr, x.astype(np.float64))
    out = os.path.join(tmp, "arr_out.npy")
    rc, so, err = hepml_run(hepml, mlp_path, "--data", arr, "--map", "x=arr", "--batch-size", "128", "--out", out)
    if check(rc == 0, f"fixed array: exit {rc}: {err}"):
        check(np.allclose(np.load(out), mlp(x), atol=1e-4, rtol=1e-5), "fixed array: values differ from numpy")
    arr4 = os.path.join(tmp, "arr4.npy")
    np.save(arr4, np.zeros((10, 4), np.float32))
    rc, so, err = hepml_run(hepml, mlp_path, "--data", arr4, "--map", "x=arr4", "--out", out + "4")
    check(rc == 2, f"fixed array [4] into [batch,3]: exit {rc}")
    one_line_error(err, "gives [batch,4]", "fixed array [4] into [batch,3]")

    # --- --out FILE.h5: one HDF5 file, a dataset per output, same values as the .npy files.
    h5out = os.path.join(tmp, "res.h5")
    rc, so, err = hepml_run(hepml, two_path, "--data", npz, "--map", "x=a,b,c", "--map", "n=k", "--batch-size", "300",
                            "--out", h5out)
    if check(rc == 0, f"h5 output: exit {rc}: {err}"):
        check(not [f for f in os.listdir(tmp) if f.startswith("res.h5.")], f"h5 output: leftovers {os.listdir(tmp)}")
        try:
            import h5py
        except ImportError:
            h5py = None
            print("h5py missing: .h5 values not checked")
        if h5py:
            with h5py.File(h5out, "r") as f:
                check(sorted(f.keys()) == ["d", "s"], f"h5 output: datasets {list(f.keys())}")
                check(np.array_equal(f["s"][()], np.load(os.path.join(tmp, "multi", "res.s.npy"))), "h5 output: s")
                check(np.array_equal(f["d"][()], np.load(os.path.join(tmp, "multi", "res.d.npy"))), "h5 output: d")

    # --- several files: --shard splits the file list; shards in order give the full run.
    files = []
    for i in range(3):
        f = os.path.join(tmp, f"part{i}.npz")
        write_npz(f, 100 + 37 * i, seed=10 + i)
        files += ["--data", f]
    whole = os.path.join(tmp, "files_all.npy")
    rc, so, err = hepml_run(hepml, mlp_path, *files, "--map", "x=a,b,c", "--batch-size", "64", "--out", whole)
    check(rc == 0 and np.load(whole).shape == (100 + 137 + 174, 2), f"three files: exit {rc}: {err}")
    pieces = []
    for i in range(3):
        part = os.path.join(tmp, f"files_shard{i}.npy")
        rc, so, err = hepml_run(hepml, mlp_path, *files, "--map", "x=a,b,c", "--batch-size", "64", "--out", part,
                                "--shard", f"{i}/3")
        if check(rc == 0, f"file shard {i}/3: exit {rc}: {err}"):
            pieces.append(np.load(part))
            check(len(pieces[-1]) == 100 + 37 * i, f"file shard {i}/3: {len(pieces[-1])} entries, want one file's")
    if len(pieces) == 3 and rc == 0:
        check(np.array_equal(np.concatenate(pieces), np.load(whole)), "file shards != full run")

    # --- the real ROOT fixture, compared with `hepml run` on an npy of the mapped inputs.
    if os.path.exists(zmumu):
        out = os.path.join(tmp, "zmumu.npy")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", zmumu, "--tree", "events", "--map", "x=px1,py1,pz1",
                                "--batch-size", "500", "--out", out)
        if check(rc == 0, f"zmumu: exit {rc}: {err}"):
            y = np.load(out)
            check(y.shape == (2304, 2), f"zmumu: shape {y.shape}")
            # The same columns through `hepml data head` (printed values) and the model standalone.
            p = subprocess.run([hepml, "data", "head", zmumu, "-n", "5000", "--columns", "px1,py1,pz1"],
                               capture_output=True, text=True, timeout=120)
            rows = []
            for line in p.stdout.splitlines():
                fields = dict(kv.split("=") for kv in line.split(": ", 1)[1].split())
                rows.append([float(fields["px1"]), float(fields["py1"]), float(fields["pz1"])])
            xz = np.array(rows, np.float32)
            check(xz.shape == (2304, 3), f"zmumu head: {xz.shape}")
            np.save(os.path.join(tmp, "xz.npy"), xz)
            rc, so, err = hepml_run(hepml, mlp_path, "--input", "x=" + os.path.join(tmp, "xz.npy"), "--output-dir",
                                    os.path.join(tmp, "zstand"))
            if check(rc == 0, f"zmumu standalone: {err}"):
                ys = np.load(os.path.join(tmp, "zstand", "y.npy"))
                check(np.allclose(y, ys, atol=1e-3, rtol=1e-4), "zmumu: --data differs from --input")
                check(np.allclose(y, mlp(xz), atol=1e-3, rtol=1e-4), "zmumu: differs from numpy")

        # Shards of one file split the entries; their concatenation is the full run.
        parts = []
        for i in range(2):
            part = os.path.join(tmp, f"zmumu_shard{i}.npy")
            rc, so, err = hepml_run(hepml, mlp_path, "--data", zmumu, "--map", "x=px1,py1,pz1", "--batch-size", "333",
                                    "--out", part, "--shard", f"{i}/2")
            check(rc == 0, f"shard {i}/2: exit {rc}: {err}")
            parts.append(np.load(part) if rc == 0 else None)
        if all(p is not None for p in parts) and os.path.exists(out):
            check(np.array_equal(np.concatenate(parts), np.load(out)), "zmumu: shards 0/2 + 1/2 != full run")

        # Corrupt file mid-way: a clear error, no final file, a resumable state.
        bad = os.path.join(tmp, "corrupt.root")
        data = bytearray(open(zmumu, "rb").read())
        mid = len(data) * 2 // 3
        data[mid:mid + 4096] = b"\xff" * 4096
        open(bad, "wb").write(bytes(data))
        out = os.path.join(tmp, "corrupt.npy")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", bad, "--map", "x=px1,py1,pz1,E1,px2,py2,pz2,E2", "--batch-size", "64",
                                "--out", out)
        # The 8-column map does not fit x[batch,3]: a usage error first.
        check(rc == 2, f"8 columns into x[batch,3]: exit {rc}")
        one_line_error(err, "x", "8 columns into x[batch,3]")
        # The second file's pz2 basket is damaged: the first file's entries are
        # written, then a one-line error naming the file; no final file.
        rc, so, err = hepml_run(hepml, mlp_path, "--data", zmumu, "--data", bad, "--map", "x=px2,py2,pz2",
                                "--batch-size", "64", "--out", out)
        check(rc == 1, f"corrupt: exit {rc}: {err}")
        one_line_error(err, "corrupt.root", "corrupt file")
        check("2304 of 4608 entries written" in err and "--resume" in err, f"corrupt: {err!r}")
        check(not os.path.exists(out), "corrupt: a final file was written")
        check(os.path.exists(out + ".progress") and os.path.exists(out + ".partial"), "corrupt: no resumable state")
        # Repaired (a fresh copy), the job resumes after the first file.
        shutil.copyfile(zmumu, bad)
        rc, so, err = hepml_run(hepml, mlp_path, "--data", zmumu, "--data", bad, "--map", "x=px2,py2,pz2",
                                "--batch-size", "64", "--out", out, "--resume")
        if check(rc == 0, f"corrupt then resume: exit {rc}: {err}"):
            check(so.strip().splitlines()[-1].startswith("2304 entries") and "(resumed)" in so,
                  f"corrupt then resume: {so!r}")
            one = os.path.join(tmp, "zmumu2.npy")
            rc, so, err = hepml_run(hepml, mlp_path, "--data", zmumu, "--map", "x=px2,py2,pz2", "--out", one)
            y1 = np.load(one)
            check(np.array_equal(np.load(out), np.concatenate([y1, y1])), "corrupt then resume: output differs")

    # --- kill mid-way, then --resume: identical output, nothing redone or duplicated.
    big = os.path.join(tmp, "big.npz")
    cols_big = write_npz(big, 60000, seed=3)
    full = os.path.join(tmp, "big_full.npy")
    rc, so, err = hepml_run(hepml, mlp_path, "--data", big, "--map", "x=a,b,c", "--batch-size", "4096", "--out", full)
    check(rc == 0, f"big full: {err}")
    killed = os.path.join(tmp, "big_killed.npy")
    argv = [hepml, "run", mlp_path, "--data", big, "--map", "x=a,b,c", "--batch-size", "32", "--out", killed,
            "--checkpoint-seconds", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    prog = killed + ".progress"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with open(prog) as f:
                text = f.read().splitlines()
            done = int(text[2].split()[1])
        except (OSError, IndexError, ValueError):
            done = 0
        if done >= 32 * 20:
            break
        time.sleep(0.01)
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if check(still_running, "kill: the job ended before it could be killed"):
        check(not os.path.exists(killed), "kill: a final file exists after SIGKILL")
        check(os.path.exists(killed + ".partial"), "kill: no partial file")
        # Appending a torn chunk simulates a write interrupted after the last checkpoint.
        with open(killed + ".partial", "ab") as f:
            f.write(b"\x01" * 24)
        # Resuming with other arguments would mix two jobs: refused, state kept.
        rc, so, err = hepml_run(hepml, mlp_path, "--data", big, "--map", "x=a,b,c", "--batch-size", "64", "--out",
                                killed, "--resume")
        check(rc == 2, f"resume with another batch size: exit {rc}")
        one_line_error(err, "other arguments", "resume with another batch size")
        rc, so, err = hepml_run(hepml, mlp_path, "--data", big, "--map", "x=a,b,c", "--batch-size", "32", "--out", killed,
                                "--resume", timeout=900)
        if check(rc == 0, f"resume: exit {rc}: {err}"):
            check("(resumed)" in so, f"resume: did not resume: {so!r}")
            resumed_entries = int(so.strip().splitlines()[-1].split()[0])
            check(resumed_entries < 60000, f"resume: redid {resumed_entries} entries")
            a, b = np.load(killed), np.load(full)
            check(a.shape == b.shape == (60000, 2), f"resume: shape {a.shape}")
            check(np.array_equal(a, b), "resume: output differs from the uninterrupted run")
    # --resume of a finished job (no progress file) runs it again from the start.
    rc, so, err = hepml_run(hepml, mlp_path, "--data", big, "--map", "x=a,b,c", "--batch-size", "4096", "--out", killed,
                            "--resume")
    check(rc == 0 and "(resumed)" not in so, f"resume of a finished job: exit {rc}: {err}")
    check(rc == 0 and np.array_equal(np.load(killed), np.load(full)), "resume of a finished job: output differs")

    # --- jagged columns: --pad (generated npz cannot hold jagged data; use a ROOT fixture if present).
    sample = os.path.join(args.data, "root", "uproot-sample-6.20.04-uncompressed.root")
    if os.path.exists(sample):
        pad_model = os.path.join(tmp, "sumpad.onnx")
        make_sum_pad(pad_model, 4)
        out = os.path.join(tmp, "pad.npy")
        rc, so, err = hepml_run(hepml, pad_model, "--data", sample, "--map", "p=Af8", "--pad", "p=4", "--batch-size", "7",
                                "--out", out)
        if check(rc == 0, f"pad: exit {rc}: {err}"):
            p = subprocess.run([hepml, "data", "head", sample, "-n", "1000", "--columns", "Af8"],
                               capture_output=True, text=True, timeout=120)
            ref = []
            for line in p.stdout.splitlines():
                body = line.split("Af8=", 1)[1].strip().strip("[]")
                vals = [float(v) for v in body.replace(",", " ").split()] if body else []
                ref.append(sum(vals[:4]))
            t = np.load(out)
            check(t.shape == (len(ref),) and np.allclose(t, ref, atol=1e-4), f"pad: sums differ {t[:5]} {ref[:5]}")
        # Two jagged columns into [batch, 2, 4] (columns first): sums of both.
        pad2 = os.path.join(tmp, "sumpad2.onnx")
        nodes = [helper.make_node("ReduceSum", ["p", "axes"], ["t"], keepdims=0)]
        g = helper.make_graph(nodes, "sumpad2", [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 2, 4])],
                              [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch", 2])],
                              [numpy_helper.from_array(np.array([2], np.int64), "axes")])
        save(g, pad2)
        out2 = os.path.join(tmp, "pad2.npy")
        rc, so, err = hepml_run(hepml, pad2, "--data", sample, "--map", "p=Af8,Ai4", "--pad", "p=4", "--batch-size", "8",
                                "--out", out2)
        if check(rc == 0, f"pad two columns: exit {rc}: {err}"):
            p = subprocess.run([hepml, "data", "head", sample, "-n", "1000", "--columns", "Ai4"],
                               capture_output=True, text=True, timeout=120)
            ref_i = []
            for line in p.stdout.splitlines():
                body = line.split("Ai4=", 1)[1].strip().strip("[]")
                vals = [float(v) for v in body.replace(",", " ").split()] if body else []
                ref_i.append(sum(vals[:4]))
            t2 = np.load(out2)
            check(t2.shape == (len(ref), 2) and np.allclose(t2[:, 0], ref, atol=1e-4) and
                  np.allclose(t2[:, 1], ref_i, atol=1e-4), f"pad two columns: {t2[:4]}")
        rc, so, err = hepml_run(hepml, pad_model, "--data", sample, "--map", "p=Af8", "--out", out)
        check(rc == 2, f"jagged without --pad: exit {rc}")
        one_line_error(err, "--pad p=", "jagged without --pad")
        rc, so, err = hepml_run(hepml, pad_model, "--data", sample, "--map", "p=Af8", "--pad", "p=5", "--out", out)
        check(rc == 2, f"pad 5 into [batch,4]: exit {rc}")
        one_line_error(err, "[batch,4]", "pad 5 into [batch,4]")

    # --- bad input: one line, exit 2 (usage) or 1 (data), no output written.
    out = os.path.join(tmp, "bad.npy")
    for argv, code, needle in [
        ([mlp_path, "--data", npz, "--map", "x=a,b,nope", "--out", out], 2, "unknown column 'nope'"),
        ([mlp_path, "--data", npz, "--map", "z=a,b,c", "--out", out], 2, "no input 'z'"),
        ([mlp_path, "--data", npz, "--map", "x=a,b", "--out", out], 2, "2 scalar column(s) give [batch,2]"),
        ([two_path, "--data", npz, "--map", "x=a,b,c", "--out", out], 2, "model input 'n'"),
        ([mlp_path, "--data", npz, "--map", "x=a,b,c", "--out", out, "--shard", "2/2"], 2, "--shard"),
        ([mlp_path, "--data", npz, "--map", "x=a,b,c", "--out", out, "--batch-size", "0"], 2, "--batch-size"),
        ([mlp_path, "--data", npz, "--map", "x=a,b,c", "--out", out, "--pad", "x=4"], 2, "no column"),
        ([mlp_path, "--data", npz, "--map", "xabc", "--out", out], 2, "INPUT=COL"),
        ([mlp_path, "--data", npz, "--map", "x=a,b,c"], 2, "--out"),
        ([mlp_path, "--data", os.path.join(tmp, "missing.npz"), "--map", "x=a,b,c", "--out", out], 1, "missing.npz"),
    ]:
        rc, so, err = hepml_run(hepml, *argv)
        check(rc == code, f"{argv[1:]}: exit {rc}, want {code}: {err}")
        one_line_error(err, needle, str(argv[1:]))
        check(not os.path.exists(out), f"{argv[1:]}: wrote {out}")
        for extra in [".partial", ".progress"]:
            if os.path.exists(out + extra):
                os.remove(out + extra)

    if failures:
        print(f"{len(failures)} failure(s); files kept in {tmp}")
        return 1
    shutil.rmtree(tmp)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
