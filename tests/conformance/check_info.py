#!/usr/bin/env python3
"""`hepml info --json` on every model of the ONNX backend suite, checked against
python3-onnx's own reading of the same file: inputs to feed (graph inputs minus
initializers), outputs, their dtypes and shapes (symbolic dims by name), opset
imports, parameter count and the operator histogram (subgraphs included).

Ends with 'N passed, M failed'; exit 1 on any failure.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys

import onnx
from onnx import helper

ROOT = "/usr/share/libonnx-testdata/data"
GROUPS = ["node", "simple", "pytorch-converted", "pytorch-operator"]

DTYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16",
}


def expected_value(vi):
    t = vi.type
    kind = "tensor"
    if t.HasField("sequence_type"):
        kind, t = "sequence", t.sequence_type.elem_type
    elif t.HasField("optional_type"):
        kind, t = "optional", t.optional_type.elem_type
        if t.HasField("sequence_type"):
            t = t.sequence_type.elem_type
    out = {"name": vi.name, "kind": kind}
    if t.HasField("tensor_type"):
        tt = t.tensor_type
        out["dtype"] = DTYPES.get(tt.elem_type, "undefined")
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value"):
                    dims.append(d.dim_value)
                elif d.HasField("dim_param"):
                    dims.append(d.dim_param)
                else:
                    dims.append(None)
            out["shape"] = dims
        else:
            out["shape"] = None
    return out


def histogram(graph, counts):
    for node in graph.node:
        key = node.op_type if node.domain in ("", "ai.onnx") else node.domain + "." + node.op_type
        counts[key] += 1
        for attr in node.attribute:
            if attr.HasField("g"):
                histogram(attr.g, counts)
            for g in attr.graphs:
                histogram(g, counts)
    return counts


def params(graph):
    n = 0
    for init in graph.initializer:
        size = 1
        for d in init.dims:
            size *= d
        n += size
    for sp in graph.sparse_initializer:
        size = 1
        for d in sp.dims:
            size *= d
        n += size
    return n


def check(hepml, path):
    model = onnx.load(path, load_external_data=False)
    proc = subprocess.run([hepml, "info", "--json", path], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return f"exit {proc.returncode}: {proc.stderr.strip()}"
    info = json.loads(proc.stdout)
    inits = {i.name for i in model.graph.initializer} | {s.values.name for s in model.graph.sparse_initializer}
    problems = []
    want_inputs = [expected_value(vi) for vi in model.graph.input if vi.name not in inits]
    want_outputs = [expected_value(vi) for vi in model.graph.output]
    for label, want, got in (("inputs", want_inputs, info["inputs"]), ("outputs", want_outputs, info["outputs"])):
        if len(want) != len(got):
            problems.append(f"{label}: {len(got)} != {len(want)}")
            continue
        for w, g in zip(want, got):
            for key in w:
                if w[key] != g.get(key):
                    problems.append(f"{label} {w['name']}.{key}: {g.get(key)!r} != {w[key]!r}")
    want_opsets = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    if want_opsets != info["opset_imports"]:
        problems.append(f"opsets {info['opset_imports']} != {want_opsets}")
    if params(model.graph) != info["parameters"]:
        problems.append(f"parameters {info['parameters']} != {params(model.graph)}")
    if dict(histogram(model.graph, collections.Counter())) != info["operators"]:
        problems.append(f"operators {info['operators']} != {dict(histogram(model.graph, collections.Counter()))}")
    if info["nodes"] != sum(info["operators"].values()):
        problems.append("node count does not match the histogram")
    return "; ".join(problems)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--root", default=ROOT)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    paths = []
    for group in GROUPS:
        d = os.path.join(args.root, group)
        for case in sorted(os.listdir(d)):
            p = os.path.join(d, case, "model.onnx")
            if os.path.exists(p):
                paths.append(p)
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for path, problem in zip(paths, pool.map(lambda p: check(args.hepml, p), paths)):
            if problem:
                failed += 1
                print(f"FAIL {path}: {problem}")
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed or not paths else 0


if __name__ == "__main__":
    sys.exit(main())
