#!/usr/bin/python3
"""Differential check of hepml against ONNX Runtime on the opset 18-21 cases.

    check_diff.py --hepml PATH_OR_COMMAND --cases DIR [--filter REGEX] [-v]
    check_diff.py --self-test --cases DIR

For each case folder made by gen_cases.py and run through run_ort.mjs it runs

    <hepml> run DIR/<case>/model.onnx --input <name>=DIR/<case>/input_<K>.npy ... --output-dir TMP

and compares TMP/<output name>.npy with expected_<K>.npy (tolerances in README.md and
npcompare.py; a case may carry its own in case.json). Cases ORT could not run are
counted as skipped with ORT's reason. Ends with `N passed, M failed, K skipped`; exit
status 1 when any case failed, 77 when run_ort.mjs has not produced expected outputs.

--self-test checks this script instead of hepml: the expected outputs compared with
themselves must all pass, copies moved by half the tolerance must pass, and copies with
one element moved by ten times the tolerance (or flipped/incremented; empty outputs get
another shape) must all fail.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npcompare import compare, perturb, run_hepml, sanitize  # noqa: E402


# Exit status when ORT's expected outputs were never produced (CTest's SKIP_RETURN_CODE).
EXIT_NO_EXPECTED = 77


def load_cases(root, name_filter):
    results_path = os.path.join(root, "ort_results.json")
    if not os.path.exists(results_path):
        print(f"check_diff: {results_path} is missing: run tests/differential/run_ort.mjs --cases {root} "
              f"first (it needs onnxruntime-node in bench/peers/)", file=sys.stderr)
        sys.exit(EXIT_NO_EXPECTED)
    with open(results_path) as f:
        ort = json.load(f)["cases"]
    cases = []
    for name in sorted(os.listdir(root)):
        meta_path = os.path.join(root, name, "case.json")
        if not os.path.exists(meta_path) or (name_filter and not re.search(name_filter, name)):
            continue
        with open(meta_path) as f:
            meta = json.load(f)
        meta["dir"] = os.path.join(root, name)
        meta["ort"] = ort.get(name, {"status": "skipped", "reason": "not run by run_ort.mjs"})
        cases.append(meta)
    if not cases:
        sys.exit(f"check_diff: no cases under {root}")
    return cases


def expected_outputs(case):
    return [(o["name"], np.load(os.path.join(case["dir"], o["file"]))) for o in case["outputs"]]


def check_outputs(case, actual_by_name):
    """actual_by_name: {output name: array or None (missing)} -> list of problems."""
    tol = case.get("tolerance") or {}
    problems = []
    for name, expected in expected_outputs(case):
        actual = actual_by_name.get(name)
        if actual is None:
            problems.append(f"output '{name}': no file {sanitize(name)}.npy written")
            continue
        for p in compare(actual, expected, tol.get("rtol"), tol.get("atol")):
            problems.append(f"output '{name}': {p}")
    return problems


def run_case(case, hepml, tmp_root, timeout):
    out_dir = os.path.join(tmp_root, case["name"])
    feeds = [(i["name"], os.path.join(case["dir"], i["file"])) for i in case["inputs"]]
    ok, msg = run_hepml(hepml, os.path.join(case["dir"], "model.onnx"), feeds, out_dir, timeout)
    if not ok:
        return [f"hepml run failed: {msg}"]
    actual = {}
    for o in case["outputs"]:
        path = os.path.join(out_dir, sanitize(o["name"]) + ".npy")
        if os.path.exists(path):
            try:
                actual[o["name"]] = np.load(path, allow_pickle=False)
            except ValueError as e:
                return [f"output '{o['name']}': unreadable .npy: {e}"]
    problems = check_outputs(case, actual)
    shutil.rmtree(out_dir, ignore_errors=True)
    return problems


def self_test(cases):
    runnable = [c for c in cases if c["ort"]["status"] != "skipped"]
    failures = []
    for c in runnable:
        exp = dict(expected_outputs(c))
        tol = c.get("tolerance") or {}
        if check_outputs(c, exp):
            failures.append(f"{c['name']}: identical outputs were rejected")
        near = {n: perturb(a, tol.get("rtol"), tol.get("atol"), scale=0.5) for n, a in exp.items()}
        if problems := check_outputs(c, near):
            failures.append(f"{c['name']}: outputs within tolerance were rejected: {problems[0]}")
        # Perturb one output at a time: every one must be caught.
        for n in exp:
            far = dict(exp)
            far[n] = perturb(exp[n], tol.get("rtol"), tol.get("atol"), scale=10.0)
            if not check_outputs(c, far):
                failures.append(f"{c['name']}: perturbed output '{n}' was accepted")
        missing = dict(exp)
        missing.pop(next(iter(exp)))
        if not check_outputs(c, missing):
            failures.append(f"{c['name']}: a missing output was accepted")
    for f in failures:
        print(f"SELF-TEST FAIL {f}")
    n_out = sum(len(c["outputs"]) for c in runnable)
    print(f"self-test: {len(runnable)} cases, {n_out} outputs: identical and within-tolerance copies "
          f"accepted, perturbed and missing outputs rejected" if not failures else
          f"self-test: {len(failures)} problems")
    skipped = len(cases) - len(runnable)
    print(f"{len(runnable) - len({f.split(':')[0] for f in failures})} passed, "
          f"{len({f.split(':')[0] for f in failures})} failed, {skipped} skipped")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", help="the hepml binary, or a command line standing in for it")
    ap.add_argument("--cases", required=True, help="folder written by gen_cases.py and run_ort.mjs")
    ap.add_argument("--filter", help="only cases whose name matches this regex")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    ap.add_argument("--self-test", action="store_true", help="check the comparison logic, not hepml")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list passing and skipped cases")
    ap.add_argument("--known-failures", help="file of case names that still fail (one per line, '#' comments): "
                    "they do not fail the run, but a listed case that passes does (remove it from the list)")
    args = ap.parse_args()
    known = set()
    if args.known_failures:
        for line in open(args.known_failures):
            name = line.split("#", 1)[0].strip()
            if name:
                known.add(name)
    cases = load_cases(args.cases, args.filter)
    if args.self_test:
        return self_test(cases)
    if not args.hepml:
        ap.error("--hepml is required (or --self-test)")
    passed = failed = skipped = 0
    unexpected, fixed = [], []
    tmp_root = tempfile.mkdtemp(prefix="hepml_diff_")
    try:
        for c in cases:
            if c["ort"]["status"] == "skipped":
                skipped += 1
                if args.verbose:
                    print(f"SKIP {c['name']}: {c['ort'].get('reason', '')}")
                continue
            problems = run_case(c, args.hepml, tmp_root, args.timeout)
            if problems:
                failed += 1
                if c["name"] not in known:
                    unexpected.append(c["name"])
                print(f"FAIL {c['name']} ({c['op']}-{c['since']}, opset {c['opset']})"
                      + (" [known failure]" if c["name"] in known else ""))
                for p in problems:
                    print(f"    {p}")
            else:
                passed += 1
                if c["name"] in known:
                    fixed.append(c["name"])
                if args.verbose:
                    src = " (expected from exact reference)" if c["ort"]["status"] == "reference" else ""
                    print(f"ok   {c['name']}{src}")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    for name in fixed:
        print(f"now passing, remove from {args.known_failures}: {name}")
    for name in unexpected:
        print(f"unexpected failure: {name}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if args.known_failures:
        return 1 if unexpected or fixed else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
