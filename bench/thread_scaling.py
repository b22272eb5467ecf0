#!/usr/bin/python3
"""Two-thread scaling of hepml binaries: CPU time per call and wall-clock throughput at 1 and 2
threads, in interleaved rounds.

    /usr/bin/python3 bench/thread_scaling.py --hepml build/src/cli/hepml [--hepml OTHER ...]
        [--work build/bench-work] [--models calo_gan,trigger_mlp] [--batch 256]
        [--rounds 7] [--lo 50] [--hi 1050] [--extra=--batch-split=off]

Every round runs, for each model, binary and thread count (1, 2) in that order, a fresh
`hepml bench MODEL --input ... --batch B --threads T --json` process at LO and at HI timed calls
(warmup 10). Per-call CPU time (user + sys of the whole process, every thread, spinning TBB
workers included) is the difference between the two processes' CPU times (os.wait4) over HI - LO
calls: start-up, model loading and warm-up cancel out. Wall-clock figures (p50 latency,
throughput) come from the HI process's own JSON. CPU time holds up on a machine shared with
other builds; wall clock does not, so the load average (1 minute) before each round is printed
and the script reports the medians over rounds, with the two-thread/one-thread ratios of
throughput (higher is better) and of CPU per call (the cost of the second thread).
`--extra` adds arguments to every hepml bench command of the last binary given (repeatable),
e.g. to compare a mode switched off against on in the same binary: pass the binary twice.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(cmd):
    """Runs cmd; returns (stdout, cpu seconds of the child)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = b"", b""
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-500:]}")
    return out.decode(), usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", action="append", required=True, help="hepml binary (repeatable)")
    ap.add_argument("--work", default="build/bench-work")
    ap.add_argument("--models", default="calo_gan,trigger_mlp")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lo", type=int, default=50)
    ap.add_argument("--hi", type=int, default=1050)
    ap.add_argument("--extra", action="append", default=[], help="argument for the last binary's runs")
    a = ap.parse_args()
    bins = [(i, b) for i, b in enumerate(a.hepml)]
    results = {}  # (model, binary index, threads) -> list of (cpu_us, p50_us, throughput)
    for r in range(a.rounds):
        load = os.getloadavg()[0]
        print(f"round {r + 1}/{a.rounds}  load average {load:.2f}", flush=True)
        for model in a.models.split(","):
            onnx = os.path.join(a.work, "models", model + ".onnx")
            folder = os.path.join(a.work, "inputs", model, f"b{a.batch}")
            inputs = []
            for f in sorted(os.listdir(folder)):
                if f.endswith(".npy"):
                    inputs += ["--input", f"{f[:-4]}={os.path.join(folder, f)}"]
            for i, binary in bins:
                extra = a.extra if i == len(bins) - 1 else []
                for threads in (1, 2):
                    base = [binary, "bench", onnx, *inputs, "--batch", str(a.batch), "--threads", str(threads),
                            "--warmup", "10", "--json", *extra]
                    _, cpu_lo = run(base + ["--iterations", str(a.lo)])
                    out, cpu_hi = run(base + ["--iterations", str(a.hi)])
                    j = json.loads(out)
                    cpu_us = (cpu_hi - cpu_lo) / (a.hi - a.lo) * 1e6
                    row = (cpu_us, j["latency_us"]["p50"], j["throughput_per_s"], j.get("batch_slices", 1))
                    results.setdefault((model, i, threads), []).append(row)
                    print(f"  {model:12s} bin{i} t{threads}: cpu {row[0]:8.1f} us/call  p50 {row[1]:8.1f} us  "
                          f"{row[2]:10.0f} /s  slices {row[3]}", flush=True)
    print(f"\nmedians over {a.rounds} rounds (batch {a.batch}); load average now {os.getloadavg()[0]:.2f}")
    for model in a.models.split(","):
        for i, binary in bins:
            med = {}
            for threads in (1, 2):
                rows = results[(model, i, threads)]
                med[threads] = [statistics.median(x[k] for x in rows) for k in range(3)]
            per_round = [t2[2] / t1[2] for t1, t2 in zip(results[(model, i, 1)], results[(model, i, 2)])]
            print(f"{model:12s} bin{i} ({binary}{' ' + ' '.join(a.extra) if i == len(bins) - 1 and a.extra else ''})")
            for threads in (1, 2):
                c, p, t = med[threads]
                print(f"    t{threads}: cpu {c:8.1f} us/call  p50 {p:8.1f} us  throughput {t:10.0f} /s")
            print(f"    t2/t1: throughput x{med[2][2] / med[1][2]:.2f} (median of per-round ratios "
                  f"x{statistics.median(per_round):.2f}), p50 x{med[1][1] / med[2][1]:.2f}, "
                  f"cpu per call x{med[2][0] / med[1][0]:.2f}")


if __name__ == "__main__":
    main()
