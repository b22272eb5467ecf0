#!/usr/bin/env python3
"""`hepml bench`: the JSON has the documented keys with sane values, symbolic
dims follow --batch/--dim, --trace writes a Chrome trace, --sweep --html writes
a self-contained page, --disable-pass switches passes off, and bad arguments
fail cleanly. Ends 'N passed, M failed'."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml_bench_")
    model = os.path.join(tmp, "m.onnx")
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["s"], name="add"), helper.make_node("Mul", ["s", "x"], ["z"], name="mul")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n_particles"]),
              helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "n_particles"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "n_particles"])])
    open(model, "wb").write(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    results = []

    def check(label, ok, detail=""):
        results.append(ok)
        print(("ok   " if ok else "FAIL ") + label + ("" if ok else ": " + detail))

    def run(*argv):
        return subprocess.run([a.hepml, "bench", model, *argv], capture_output=True, text=True, timeout=120)

    p = run("--batch", "8", "--dim", "n_particles=5", "--iterations", "20", "--json", "--profile",
            "--trace", os.path.join(tmp, "t.json"))
    check("bench --json runs", p.returncode == 0, p.stderr)
    if p.returncode == 0:
        j = json.loads(p.stdout)
        keys = ["model", "batch", "threads", "iterations", "load_ms", "latency_us", "throughput_per_s", "peak_rss_mib"]
        check("json keys", all(k in j for k in keys), str(j.keys()))
        lat = j["latency_us"]
        check("latency percentiles ordered", 0 < lat["p50"] <= lat["p90"] <= lat["p99"], str(lat))
        check("batch and iterations echoed", j["batch"] == 8 and j["iterations"] == 20, str(j))
        check("throughput consistent with batch", j["throughput_per_s"] > 0, str(j))
        ops = {row["op"] for row in j["profile"]["operators"]}
        check("profile names both operators", ops == {"Add", "Mul"}, str(ops))
        trace = json.load(open(os.path.join(tmp, "t.json")))
        names = sorted(e["name"] for e in trace["traceEvents"])
        check("trace has one event per node", names == ["add", "mul"], str(names))
    # Given inputs are used as given.
    np.save(os.path.join(tmp, "x.npy"), np.ones((3, 7), np.float32))
    np.save(os.path.join(tmp, "y.npy"), np.ones((3, 7), np.float32))
    p = run("--input", "x=" + os.path.join(tmp, "x.npy"), "--input", "y=" + os.path.join(tmp, "y.npy"),
            "--iterations", "5", "--json")
    check("bench with given inputs", p.returncode == 0, p.stderr)
    p = run("--sweep", "1,4,16", "--dim", "n_particles=3", "--iterations", "5", "--html", os.path.join(tmp, "s.html"), "--json")
    ok = p.returncode == 0 and len(json.loads(p.stdout)) == 3
    check("sweep gives one result per batch size", ok, p.stderr)
    html = open(os.path.join(tmp, "s.html")).read() if ok else ""
    check("html report is self-contained with plots", "<svg" in html and "<script src" not in html and "Add" in html)
    p = run("--iterations", "5")
    check("missing --dim for a symbolic inner dim is a clear error",
          p.returncode == 1 and "n_particles" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr)
    p = run("--dim", "oops")
    check("malformed --dim is a usage error", p.returncode == 2, p.stderr)
    p = run("--dim", "n_particles=3", "--iterations", "5", "--disable-pass", "fuse-gelu", "--disable-pass", "fold-constants")
    check("--disable-pass switches passes off", p.returncode == 0, p.stderr)
    p = run("--dim", "n_particles=3", "--iterations", "5", "--disable-pass", "no-such-pass")
    check("--disable-pass with an unknown pass names it",
          p.returncode == 1 and "no-such-pass" in p.stderr and "fuse-gelu" in p.stderr, p.stderr)
    # --precision: echoed in the JSON; bf16 stores a MatMul weight in half the bytes.
    dense = os.path.join(tmp, "dense.onnx")
    w = helper.make_tensor("w", TensorProto.FLOAT, [256, 256], np.full(256 * 256, 0.01, np.float32))
    gd = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")], "dense",
                           [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])], [w])
    open(dense, "wb").write(helper.make_model(gd, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    weights = {}
    for precision in ("fp32", "bf16"):
        p = subprocess.run([a.hepml, "bench", dense, "--iterations", "3", "--json", "--precision", precision],
                           capture_output=True, text=True, timeout=120)
        ok = p.returncode == 0 and json.loads(p.stdout).get("precision") == precision
        check(f"bench --precision {precision} runs and is echoed", ok, p.stderr)
        if ok:
            weights[precision] = json.loads(p.stdout)["weight_mib"]
    check("bf16 halves the weights", weights.get("fp32") == 0.25 and weights.get("bf16") == 0.125, str(weights))
    p = run("--precision", "int8")
    check("unknown --precision is a usage error naming the choices",
          p.returncode == 2 and "'int8'" in p.stderr and "bf16" in p.stderr, p.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
