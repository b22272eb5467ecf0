#!/usr/bin/env python3
"""`hepml data info` and `hepml data head` on real files: the schema and values
they print, and one-line errors with exit code 1 (bad data) or 2 (bad usage).

ROOT fixtures come from --data (scikit-hep-testdata under shared/data/root);
without them only the CSV and error checks run."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(hepml, *args):
    p = subprocess.run([hepml, "data", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    root = os.path.join(args.data, "root")
    have_root = os.path.exists(os.path.join(root, "uproot-Zmumu-zlib.root"))

    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "table.csv")
        with open(csv, "w") as f:
            f.write("id,pt,label\n1,2.5,a\n2,3.5,\"b,c\"\n")
        rc, out, err = run(args.hepml, "info", csv, "--json")
        check(rc == 0, f"info csv exit {rc}: {err}")
        info = json.loads(out)
        check(info["entries"] == 2, "csv entries")
        check([c["dtype"] for c in info["columns"]] == ["int64", "float64", "string"], "csv dtypes")
        rc, out, err = run(args.hepml, "head", csv, "-n", "5")
        check(rc == 0 and out.splitlines() == ['0: id=1  pt=2.5  label="a"', '1: id=2  pt=3.5  label="b,c"'],
              f"head csv: {out!r}")

        for argv, code, needle in [
            (["info", os.path.join(tmp, "missing.root")], 1, "missing.root"),
            (["head", csv, "--columns", "nope"], 1, "no column 'nope'"),
            (["head", csv, "-n", "-1"], 2, "-n"),
            (["info", csv, "--format", "parquet"], 1, "unknown format 'parquet'"),
            (["info"], 2, ""),
        ]:
            rc, out, err = run(args.hepml, *argv)
            check(rc == code, f"{argv}: exit {rc}, want {code}")
            check(needle in err, f"{argv}: stderr {err!r} lacks {needle!r}")
            if code == 1:
                check(err.startswith("hepml data") and len(err.strip().splitlines()) == 1, f"{argv}: one line: {err!r}")

    if have_root:
        zmumu = os.path.join(root, "uproot-Zmumu-zstd.root")
        rc, out, err = run(args.hepml, "info", zmumu, "--json")
        check(rc == 0, f"info zmumu: {err}")
        info = json.loads(out)
        check(info["entries"] == 2304 and info["files"][0]["object"] == "events", "zmumu entries/tree")
        check(info["files"][0].get("file compression", "").startswith("zstd"), "zmumu compression")
        cols = {c["name"]: c for c in info["columns"]}
        check(cols["E1"]["dtype"] == "float64" and cols["Type"]["dtype"] == "string", "zmumu dtypes")
        check(cols["E1"]["compressed_bytes"] > 0, "zmumu sizes")
        rc, out, err = run(args.hepml, "head", zmumu, "-n", "2", "--columns", "Run,Type,Q1")
        check(out.splitlines() == ['0: Run=148031  Type="GT"  Q1=1', '1: Run=148031  Type="TT"  Q1=-1'],
              f"head zmumu: {out!r}")
        sample = os.path.join(root, "uproot-sample-6.20.04-lzma.root")
        rc, out, err = run(args.hepml, "head", sample, "-n", "3", "--columns", "Ai2,ai2", "--pad", "2")
        check(out.splitlines()[2] == "2: Ai2=[-15, -13] mask=11  ai2=[-12, -11, -10]", f"head sample: {out!r}")
        rc, out, err = run(args.hepml, "info", zmumu, "--tree", "nope")
        check(rc == 1 and "no TTree or RNTuple 'nope'" in err and "events" in err, f"missing tree: {err!r}")
        ntuple = os.path.join(root, "test_1jag_int_float_rntuple_v1-0-0-0.root")
        rc, out, err = run(args.hepml, "head", ntuple, "-n", "3", "--columns", "two_v_floats")
        check(rc == 0 and out.splitlines()[2] == "2: two_v_floats=[10, 9.9]", f"head rntuple: {out!r}")
        # Two files as one dataset.
        rc, out, err = run(args.hepml, "info", zmumu, os.path.join(root, "uproot-Zmumu-lz4.root"), "--json")
        check(rc == 0 and json.loads(out)["entries"] == 4608, "two files")
    else:
        print("ROOT fixtures not found under", root, "- skipping their checks")

    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
