#!/usr/bin/python3
"""Per-call overhead of the hepml Python module over the C++ Session.

    PYTHONPATH=build/python bench/python_overhead.py --hepml build/src/cli/hepml \
        [--model examples/models/trigger_mlp.onnx] [--batch 1] [--iterations 20000] [--rounds 5]

Each round runs `hepml bench MODEL --batch B --threads 1 --iterations N --json` (the C++
median per Session::Run, p50) and then, in this process, N timed calls of
hepml.Session(MODEL, num_threads=1).run({input: x}) on the same random input of batch B,
each call timed alone with time.perf_counter_ns (after 1,000 untimed ones), and takes
the median. Rounds alternate the two so that load from other processes hits both; the
overhead is the median over rounds of (Python median - C++ median). Prints a table and
one JSON line.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import hepml


def python_median_us(session, feeds, iterations, warmup=1000):
    for _ in range(warmup):
        session.run(feeds)
    times = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        session.run(feeds)
        times.append(clock() - t0)
    return statistics.median(times) / 1000.0


def cpp_median_us(hepml_cli, model, batch, iterations):
    out = subprocess.run([hepml_cli, "bench", model, "--batch", str(batch), "--threads", "1", "--iterations",
                          str(iterations), "--warmup", "1000", "--json"], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return json.loads(out)["latency_us"]["p50"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hepml", required=True, help="the hepml command line")
    p.add_argument("--model", default=os.path.join(here, "..", "examples", "models", "trigger_mlp.onnx"))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iterations", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()

    session = hepml.Session(a.model, num_threads=1)
    feeds = {}
    for spec in session.inputs:
        shape = [a.batch if not isinstance(d, int) else d for d in spec["shape"]]
        feeds[spec["name"]] = np.random.default_rng(0).standard_normal(shape).astype(spec["dtype"])

    rows = []
    for r in range(a.rounds):
        cpp = cpp_median_us(a.hepml, a.model, a.batch, a.iterations)
        py = python_median_us(session, feeds, a.iterations)
        rows.append((cpp, py, py - cpp))
        print(f"round {r + 1}: C++ p50 {cpp:.2f} us  Python p50 {py:.2f} us  overhead {py - cpp:.2f} us",
              file=sys.stderr)
    overhead = statistics.median(row[2] for row in rows)
    print(json.dumps({"model": os.path.basename(a.model), "batch": a.batch, "iterations": a.iterations,
                      "rounds": a.rounds, "cpp_p50_us": [round(x[0], 3) for x in rows],
                      "python_p50_us": [round(x[1], 3) for x in rows], "overhead_us": round(overhead, 3)}))


if __name__ == "__main__":
    main()
