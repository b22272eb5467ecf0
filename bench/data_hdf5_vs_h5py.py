#!/usr/bin/python3
"""HDF5 read throughput, hepml vs h5py, on the file of bench/make_hdf5.py.

Each round reads every row of /dense/x (float32 [N, 64]) and of /events
(compound of 16 float32 + 1 int64 members) in batches of B rows, once with
hepml (bench/data_bench --batches: one Dataset, no read-ahead, all columns)
and once with h5py (`ds[i:i+B]`, which returns the whole batch as one array,
a structured array for the compound), alternating which goes first. Prints
the median MB/s of the rounds (bytes of the values read, page cache warm), by
wall time and by CPU time (user + sys of the reading process): on a loaded
shared machine the wall time mostly measures the scheduler.

  /usr/bin/python3 bench/data_hdf5_vs_h5py.py BUILD_DIR FILE.h5 [ROUNDS] [BATCH...]

With HEPML_BASELINE=PATH (a data_bench built from another commit), that
binary reads every round too, in turn with the other two, for a before/after
measured under the same load. "hepml 1 thread" is hepml with
DatasetOptions::gather_threads = 1 (a large compound batch gathered by the
reading thread alone; by default two threads share it).
"""
import json
import os
import statistics
import subprocess
import sys
import time

import h5py

build, path = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
batches = [int(b) for b in sys.argv[4:]] or [4096, 65536]
bench = os.path.join(build, "bench", "data_bench")
baseline = os.environ.get("HEPML_BASELINE")


def h5py_read(dataset, batch):
    t0, c0 = time.perf_counter(), time.process_time()
    nbytes = 0
    with h5py.File(path, "r") as f:
        ds = f[dataset]
        for i in range(0, ds.shape[0], batch):
            nbytes += ds[i:i + batch].nbytes
    return time.perf_counter() - t0, time.process_time() - c0, nbytes


def hepml_read(group, batch, binary=bench, gather_threads=0):
    env = dict(os.environ, HEPML_GATHER_THREADS=str(gather_threads))
    out = subprocess.run([binary, "--batches", path, group, "", str(batch), "0"], check=True,
                         capture_output=True, text=True, env=env).stdout
    r = json.loads(out)
    return r["seconds"], r["cpu_seconds"], r["bytes"]


print(f"load average at start: {os.getloadavg()}")
for batch in batches:
    for dataset, group in (("/dense/x", "/dense"), ("/events", "/")):
        # (The root group also holds the group /dense: /events is its only dataset.)
        readers = ["hepml", "h5py", "hepml1"] + (["baseline"] if baseline else [])
        wall = {k: [] for k in readers}
        cpu = {k: [] for k in readers}
        for r in range(rounds):
            order = readers[r % len(readers):] + readers[:r % len(readers)]
            for who in order:
                if who == "h5py":
                    s, c, b = h5py_read(dataset, batch)
                elif who == "hepml1":
                    s, c, b = hepml_read(group, batch, bench, gather_threads=1)
                else:
                    s, c, b = hepml_read(group, batch, bench if who == "hepml" else baseline)
                wall[who].append(b / s / 1e6)
                cpu[who].append(b / c / 1e6)
        med = {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in wall}
        print(f"{dataset:10s} batch {batch:6d}: wall MB/s hepml {med['hepml'][0]:6.0f} h5py {med['h5py'][0]:6.0f}"
              f" ratio {med['hepml'][0] / med['h5py'][0]:4.2f}; per CPU second hepml {med['hepml'][1]:6.0f}"
              f" h5py {med['h5py'][1]:6.0f} ratio {med['hepml'][1] / med['h5py'][1]:4.2f}"
              f"  (wall rounds: hepml {[round(x) for x in wall['hepml']]}, h5py {[round(x) for x in wall['h5py']]})")
        print(f"{'':10s} hepml 1 thread: wall MB/s {med['hepml1'][0]:6.0f} ratio {med['hepml1'][0] / med['h5py'][0]:4.2f};"
              f" per CPU second {med['hepml1'][1]:6.0f} ratio {med['hepml1'][1] / med['h5py'][1]:4.2f}"
              f"  (wall rounds {[round(x) for x in wall['hepml1']]})")
        if baseline:
            print(f"{'':10s} baseline: wall MB/s {med['baseline'][0]:6.0f} ratio {med['baseline'][0] / med['h5py'][0]:4.2f};"
                  f" per CPU second {med['baseline'][1]:6.0f} ratio {med['baseline'][1] / med['h5py'][1]:4.2f}"
                  f"  (wall rounds {[round(x) for x in wall['baseline']]})")
print(f"load average at end: {os.getloadavg()}")
