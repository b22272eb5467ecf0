#!/usr/bin/python3
"""Runs the HEP model set through `hepml run` and compares with PyTorch's outputs.

    check_models.py --hepml PATH_OR_COMMAND --models DIR [--only NAME,...] [--atol 1e-4]
    check_models.py --self-test --models DIR

DIR is what bench/models/generate.py wrote (models.json, NAME.onnx, NAME/... data). For
every model and each of its data sets this runs

    <hepml> run DIR/NAME.onnx --input <name>=DIR/NAME/input_<name>.npy ... --output-dir TMP

and compares every TMP/<output name>.npy (name sanitized to [A-Za-z0-9._-]) with
DIR/NAME/output_<name>.npy: same dtype and shape, |hepml - torch| <= 1e-4 elementwise.
A model passes when all its data sets do. Prints one line per model (and the
differences of failing ones) and ends with `N passed, M failed`; exit status 1 on any
failure.

--self-test checks this script instead of hepml: PyTorch's outputs compared with
themselves pass, and copies with one element moved by 10x the tolerance fail.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))
from npcompare import compare, perturb, run_hepml, sanitize  # noqa: E402


def check_data_set(hepml, root, model, data_set, atol, tmp, timeout):
    feeds = [(n, os.path.join(root, spec["file"])) for n, spec in data_set["inputs"].items()]
    out_dir = os.path.join(tmp, model["name"], data_set["dir"].replace("/", "_"))
    ok, msg = run_hepml(hepml, os.path.join(root, model["file"]), feeds, out_dir, timeout)
    if not ok:
        return [f"hepml run failed: {msg}"]
    problems = []
    for name, spec in data_set["outputs"].items():
        expected = np.load(os.path.join(root, spec["file"]))
        path = os.path.join(out_dir, sanitize(name) + ".npy")
        if not os.path.exists(path):
            problems.append(f"output '{name}': no file {os.path.basename(path)} written")
            continue
        problems += [f"output '{name}': {p}" for p in compare(np.load(path), expected, rtol=0.0, atol=atol)]
    return problems


def self_test(root, models, atol):
    failures = 0
    n_outputs = 0
    for m in models:
        for ds in m["data_sets"]:
            for name, spec in ds["outputs"].items():
                n_outputs += 1
                e = np.load(os.path.join(root, spec["file"]))
                if compare(e, e, rtol=0.0, atol=atol):
                    print(f"SELF-TEST FAIL {m['name']}/{ds['dir']} {name}: identical output rejected")
                    failures += 1
                if compare(perturb(e, 0.0, atol, scale=0.5), e, rtol=0.0, atol=atol):
                    print(f"SELF-TEST FAIL {m['name']}/{ds['dir']} {name}: output within tolerance rejected")
                    failures += 1
                if not compare(perturb(e, 0.0, atol, scale=10.0), e, rtol=0.0, atol=atol):
                    print(f"SELF-TEST FAIL {m['name']}/{ds['dir']} {name}: perturbed output accepted")
                    failures += 1
    print(f"self-test: {n_outputs} reference outputs: {failures} problems")
    print(f"{len(models) if not failures else 0} passed, {len(models) if failures else 0} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", help="the hepml binary, or a command line standing in for it")
    ap.add_argument("--models", required=True, help="folder written by bench/models/generate.py")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: models.json, 1e-4)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run (default 300)")
    ap.add_argument("--self-test", action="store_true", help="check the comparison logic, not hepml")
    args = ap.parse_args()
    manifest_path = os.path.join(args.models, "models.json")
    if not os.path.exists(manifest_path):
        sys.exit(f"check_models: {manifest_path} is missing: run bench/models/generate.py --out {args.models}")
    with open(manifest_path) as f:
        models = json.load(f)["models"]
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {m["name"] for m in models}
        if unknown:
            sys.exit(f"check_models: not in models.json: {sorted(unknown)}")
        models = [m for m in models if m["name"] in wanted]
    if args.self_test:
        return self_test(args.models, models, args.atol or 1e-4)
    if not args.hepml:
        ap.error("--hepml is required (or --self-test)")
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="hepml_models_")
    try:
        for m in models:
            atol = args.atol if args.atol is not None else m.get("tolerance", {}).get("atol", 1e-4)
            report = []
            for ds in m["data_sets"]:
                problems = check_data_set(args.hepml, args.models, m, ds, atol, tmp, args.timeout)
                shapes = ", ".join(f"{n}{tuple(s['shape'])}" for n, s in ds["inputs"].items())
                report.append((ds["dir"], shapes, problems))
            ok = not any(p for _, _, p in report)
            passed += ok
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {m['name']} ({len(report)} data set(s), atol {atol:g})")
            for where, shapes, problems in report:
                if problems:
                    print(f"    {where}: {shapes}")
                    for p in problems:
                        print(f"        {p}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
