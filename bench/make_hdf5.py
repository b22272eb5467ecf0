#!/usr/bin/python3
"""Writes the HDF5 file of the dataset benchmarks (bench/data_hdf5_vs_h5py.sh,
bench/data_run_overlap.sh):

  /dense/x     float32 [N_DENSE, 64], chunked (4096, 64) = 1 MiB chunks
  /events      compound [N_EVENTS] {f0..f15 float32, event int64}, chunked
               (16384,) = 1.1 MiB chunks: 16 features per event, the width of
               bench/models' trigger_mlp

Uncompressed (the benchmarks measure the reader, not zlib). Values are
random normals, written in slabs so the writer needs little memory.

  /usr/bin/python3 bench/make_hdf5.py OUT.h5 [N_DENSE] [N_EVENTS]
"""
import sys

import h5py
import numpy as np

out = sys.argv[1]
n_dense = int(sys.argv[2]) if len(sys.argv) > 2 else 8_000_000
n_events = int(sys.argv[3]) if len(sys.argv) > 3 else 16_000_000
slab = 1 << 20
rng = np.random.default_rng(7)
fields = [(f"f{i}", "<f4") for i in range(16)] + [("event", "<i8")]
etype = np.dtype(fields)
with h5py.File(out, "w") as f:
    dense = f.create_group("dense").create_dataset("x", (n_dense, 64), dtype="<f4", chunks=(4096, 64))
    for i in range(0, n_dense, slab):
        n = min(slab, n_dense - i)
        dense[i:i + n] = rng.standard_normal((n, 64), dtype=np.float32)
    events = f.create_dataset("events", (n_events,), dtype=etype, chunks=(16384,))
    for i in range(0, n_events, slab):
        n = min(slab, n_events - i)
        block = np.empty(n, dtype=etype)
        feats = rng.standard_normal((n, 16), dtype=np.float32)
        for k in range(16):
            block[f"f{k}"] = feats[:, k]
        block["event"] = np.arange(i, i + n)
        events[i:i + n] = block
print(out, n_dense, "dense rows,", n_events, "events")
