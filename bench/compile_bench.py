#!/usr/bin/python3
"""Latency and memory of `hepml compile` packages against `hepml bench` on the same models.

    bench/compile_bench.py --hepml build/src/cli/hepml --models DIR [--only trigger_mlp,calo_gan]
                           [--batches 1,64] [--rounds 7] [--iterations 2000] [--work DIR]

DIR is what bench/models/generate.py wrote. Each model is compiled (--max-batch = the
largest batch) and built twice with its CMakeLists.txt defaults (Release): for the x86-64
baseline and with NAME_NATIVE=ON (-march=native). Each round runs, one after the other,
`hepml bench --threads 1 --json`, `NAME_run --bench --json` (baseline) and the native one;
the table gives the median over rounds of each p50 and of peak RSS. Not a test: nothing
here asserts a timing.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--only", default="trigger_mlp,calo_gan")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="hepml_compile_bench_")
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    for m in args.only.split(","):
        pkg = os.path.join(work, m)
        subprocess.run([args.hepml, "compile", os.path.join(args.models, f"{m}.onnx"), "-o", pkg, "--name", m,
                        "--max-batch", str(max(batches))], check=True, stdout=subprocess.DEVNULL)
        exes = {}
        for kind, native in (("compiled", "OFF"), ("compiled -march=native", "ON")):
            build = os.path.join(work, f"{m}-build-{native}")
            subprocess.run(["cmake", "-S", pkg, "-B", build, f"-D{m}_NATIVE={native}"], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run(["cmake", "--build", build, "-j", "2"], check=True, stdout=subprocess.DEVNULL)
            exes[kind] = os.path.join(build, f"{m}_run")
        for b in batches:
            common = ["--batch", str(b), "--iterations", str(args.iterations), "--warmup", str(args.iterations // 10),
                      "--json"]
            cmds = {"hepml": [args.hepml, "bench", os.path.join(args.models, f"{m}.onnx"), "--threads", "1"] + common}
            for kind, exe in exes.items():
                cmds[kind] = [exe, "--bench"] + common
            p50 = {k: [] for k in cmds}
            rss = {k: [] for k in cmds}
            for _ in range(args.rounds):
                for k, cmd in cmds.items():
                    j = json.loads(subprocess.check_output(cmd))
                    p50[k].append(j["latency_us"]["p50"])
                    rss[k].append(j["peak_rss_mib"])
            rows.append((m, b, {k: (statistics.median(p50[k]), statistics.median(rss[k])) for k in cmds}))
    kinds = list(rows[0][2])
    print("| model | batch | " + " | ".join(f"{k} p50 (us)" for k in kinds) + " | " +
          " | ".join(f"{k} peak RSS (MiB)" for k in kinds) + " |")
    print("|---|---:|" + "---:|" * (2 * len(kinds)))
    for m, b, r in rows:
        print(f"| {m} | {b} | " + " | ".join(f"{r[k][0]:.2f}" for k in kinds) + " | " +
              " | ".join(f"{r[k][1]:.1f}" for k in kinds) + " |")


if __name__ == "__main__":
    main()
