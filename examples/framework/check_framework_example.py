#!/usr/bin/env python3
"""Smoke test of hepml_framework_example: in process on 1 and 2 threads, then
through RemoteSession against a real `hepml serve` with and without
coalescing; the checksums of all runs agree (same events, same model), every
line has its figures, and a bad model is a clear error. Asserts no timing."""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "serve"))
import serve_harness  # noqa: E402

MODEL = os.path.join(SOURCE, "examples", "models", "trigger_mlp.onnx")
REPOSITORY = os.path.join(SOURCE, "examples", "model_repository")


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--example", required=True)
    p.add_argument("--hepml", required=True)
    a = p.parse_args()
    failures = serve_harness.Failures()
    server = serve_harness.Server(a.hepml, [REPOSITORY])
    try:
        failures.check(server.wait_ready(), "server ready")
        cmd = [a.example, "--model", MODEL, "--events", "3000", "--threads", "1,2", "--server", server.grpc_target,
               "--remote-model", "trigger_mlp", "--inflight", "32", "--coalesce", "0,32"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        print(res.stdout, res.stderr)
        failures.check(res.returncode == 0, f"example exit {res.returncode}")
        lines = res.stdout.splitlines()
        session = [fields(l) for l in lines if l.startswith("session ")]
        remote = [fields(l) for l in lines if l.startswith("remote ")]
        failures.check([s.get("threads") for s in session] == ["1", "2"], "one session line per thread count")
        failures.check([r.get("max_batch") for r in remote] == ["0", "32"], "one remote line per coalescing setting")
        failures.check(any(l.startswith("rss_per_extra_thread_mib=") for l in lines), "memory per extra thread")
        for f in session + remote:
            failures.check(float(f.get("events_per_s", 0)) > 0, f"events/s in {f}")
            failures.check(float(f.get("vmrss_mib", 0)) > 0 and float(f.get("vmhwm_mib", 0)) > 0, f"memory in {f}")
        sums = [float(f["checksum"]) for f in session + remote if "checksum" in f]
        failures.check(len(sums) == 4 and max(sums) - min(sums) <= 1e-6 * abs(sums[0]),
                       f"same checksum in process and remote: {sums}")
        if len(remote) == 2:
            failures.check(remote[0].get("mean_batch") == "1.00", "no coalescing: one call per request")
            failures.check(int(remote[1]["requests"]) < 3000, "coalescing: fewer requests than events")
        bad = subprocess.run([a.example, "--model", "/nonexistent.onnx"], capture_output=True, text=True)
        failures.check(bad.returncode == 1 and "/nonexistent.onnx" in bad.stderr, f"bad model: {bad.stderr!r}")
        usage = subprocess.run([a.example, "--frobnicate"], capture_output=True, text=True)
        failures.check(usage.returncode == 2 and "usage" in usage.stderr, "bad argument: usage, exit 2")
    finally:
        server.stop()
    failures.finish()


if __name__ == "__main__":
    main()
