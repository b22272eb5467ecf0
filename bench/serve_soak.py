#!/usr/bin/env python3
"""Soak test of `hepml serve`: steady load for a long time, watching for
failed requests and memory growth. A benchmark, not a test.

  nice -n 10 /usr/bin/python3 bench/serve_soak.py --hepml build/src/cli/hepml \
      [--repository examples/model_repository] [--model trigger_mlp] \
      [--minutes 30] [--concurrency 32] [--protocols grpc,http] [--json OUT.json]

Starts `hepml serve` on the repository (free loopback ports), then runs
`hepml perf` at the given concurrency back to back, one 10 s measurement
window per run, alternating the protocols (each run opens its clients'
connections afresh, so connection setup and teardown are soaked too). A
sampler reads the server's VmRSS from /proc every 10 s. After a warm-up
(--warmup-s, default 60) the RSS is taken as the start value; the report
gives failed requests (must be 0), RSS at start and end, growth in percent
(target: under 5), the growth and the fitted slope over the second half of
the run (a leak keeps climbing there; warm-up growth does not), and the
throughput of every window.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(hepml, repo):
    err = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([hepml, "serve", "--model-repository", repo, "--http-port", "0", "--grpc-port", "0",
                             "--metrics-port", "-1"], stdout=subprocess.PIPE, stderr=err, text=True)
    ports = {}
    while len(ports) < 2:
        line = proc.stdout.readline()
        if not line:
            err.seek(0)
            sys.exit(f"hepml serve did not start: {err.read()}")
        m = re.match(r"Started (HTTP|GRPCInference)Service at \S+:(\d+)", line.strip())
        if m:
            ports["http" if m.group(1) == "HTTP" else "grpc"] = int(m.group(2))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
    return proc, ports


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--repository", default=os.path.join(os.path.dirname(__file__), "..", "examples",
                                                          "model_repository"))
    ap.add_argument("--model", default="trigger_mlp")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup-s", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--protocols", default="grpc,http")
    ap.add_argument("--interval-ms", type=int, default=10000)
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()

    proc, ports = start_server(args.hepml, args.repository)
    samples = []  # (seconds since start, VmRSS KiB)
    stop = threading.Event()
    t0 = time.monotonic()

    def sample():
        while not stop.is_set():
            try:
                samples.append((time.monotonic() - t0, rss_kib(proc.pid)))
            except (OSError, RuntimeError):
                return
            stop.wait(10)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    protocols = args.protocols.split(",")
    windows = []
    failed = 0
    failures = []
    end = t0 + args.warmup_s + args.minutes * 60
    i = 0
    try:
        while time.monotonic() < end:
            if proc.poll() is not None:
                failures.append(f"the server exited with {proc.returncode}")
                failed += 1
                break
            protocol = protocols[i % len(protocols)]
            i += 1
            out = subprocess.run([args.hepml, "perf", "-m", args.model, "-u", f"127.0.0.1:{ports[protocol]}",
                                  "-i", protocol, "--concurrency-range", f"{args.concurrency}:{args.concurrency}",
                                  "-p", str(args.interval_ms), "--json"], capture_output=True, text=True)
            at = time.monotonic() - t0
            try:
                level = json.loads(out.stdout)["levels"][0]
            except (ValueError, KeyError, IndexError):
                failed += 1
                failures.append(f"{protocol} at {at:.0f} s: hepml perf exited {out.returncode}: {out.stderr.strip()}")
                continue
            errors = int(level["errors"])
            if errors or out.returncode != 0:
                failed += max(errors, 1)
                failures.append(f"{protocol} at {at:.0f} s: {errors} errors: {out.stderr.strip()}")
            windows.append({"t_s": round(at), "protocol": protocol, "requests": level["requests"],
                            "errors": errors, "infer_per_s": round(level["throughput_infer_per_s"], 1),
                            "p99_us": round(level["latency_us"]["p99"])})
            print(f"{at:7.0f} s  {protocol:4}  {level['throughput_infer_per_s']:9.1f} infer/s  "
                  f"p99 {level['latency_us']['p99']:8.0f} us  errors {errors}  "
                  f"RSS {samples[-1][1] / 1024 if samples else 0:.1f} MiB", flush=True)
    finally:
        stop.set()
        sampler.join()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    after = [kib for t, kib in samples if t >= args.warmup_s]
    start_kib = after[0] if after else None
    end_kib = after[-1] if after else None
    growth = 100.0 * (end_kib - start_kib) / start_kib if start_kib else None
    # Warm-up growth (allocator arenas, connection buffers) and a leak look
    # alike in two numbers; the second half's own growth and slope tell them
    # apart (a leak keeps climbing).
    half = [(t, kib) for t, kib in samples if t >= args.warmup_s + args.minutes * 30]
    half_growth = slope = None
    if len(half) >= 2:
        half_growth = 100.0 * (half[-1][1] - half[0][1]) / half[0][1]
        n = len(half)
        mt = sum(t for t, _ in half) / n
        mk = sum(k for _, k in half) / n
        var = sum((t - mt) ** 2 for t, _ in half)
        slope = sum((t - mt) * (k - mk) for t, k in half) / var * 3600 / 1024 if var else 0.0
    report = {
        "model": args.model, "concurrency": args.concurrency, "protocols": protocols,
        "minutes": args.minutes, "warmup_s": args.warmup_s,
        "requests": sum(w["requests"] for w in windows), "failed_requests": failed, "failures": failures[:20],
        "rss_start_mib": round(start_kib / 1024, 1) if start_kib else None,
        "rss_end_mib": round(end_kib / 1024, 1) if end_kib else None,
        "rss_max_mib": round(max(after) / 1024, 1) if after else None,
        "rss_growth_pct": round(growth, 2) if growth is not None else None,
        "rss_second_half_growth_pct": round(half_growth, 2) if half_growth is not None else None,
        "rss_second_half_slope_mib_per_h": round(slope, 2) if slope is not None else None,
        "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
        "windows": windows, "rss_samples_kib": samples,
    }
    for proto in protocols:
        rates = [w["infer_per_s"] for w in windows if w["protocol"] == proto]
        if rates:
            report[f"{proto}_infer_per_s"] = {"min": min(rates), "median": sorted(rates)[len(rates) // 2],
                                              "max": max(rates)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    summary = {k: v for k, v in report.items() if k not in ("windows", "rss_samples_kib")}
    print(json.dumps(summary, indent=1))
    ok = failed == 0 and growth is not None and growth < 5
    print("PASS" if ok else "FAIL", "(no failed request, RSS growth < 5%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
