#!/usr/bin/env python3
"""Trains a small MLP jet tagger on the make_dataset.py files: one trial of the
HPO example. Prints `hepml-metric val_loss=X step=E` after each epoch (what
`hepml hpo` reads) and writes OUT/model.onnx at the end.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default=".")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    load = lambda name: torch.from_numpy(np.load(os.path.join(args.data, name + ".npy")))
    x_train, y_train, x_val, y_val = load("x_train"), load("y_train"), load("x_val"), load("y_val")

    layers, width = [], x_train.shape[1]
    for _ in range(args.layers):
        layers += [torch.nn.Linear(width, args.hidden), torch.nn.ReLU(), torch.nn.Dropout(args.dropout)]
        width = args.hidden
    layers.append(torch.nn.Linear(width, 2))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(y_train)
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        perm = torch.randperm(n)
        for i in range(0, n, args.batch_size):
            idx = perm[i:i + args.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = loss_fn(logits, y_val).item()
            acc = (logits.argmax(1) == y_val).float().mean().item()
        if not np.isfinite(val_loss):
            print(f"epoch {epoch}: the loss diverged", file=sys.stderr)
            return 2
        print(f"hepml-metric val_loss={val_loss:.6f} val_acc={acc:.4f} step={epoch}", flush=True)
        print(f"epoch {epoch}: {time.time() - t0:.2f} s", file=sys.stderr, flush=True)
    os.makedirs(args.out, exist_ok=True)
    torch.onnx.export(model, x_val[:1], os.path.join(args.out, "model.onnx"), input_names=["jets"],
                      output_names=["logits"], dynamic_axes={"jets": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=13)
    return 0


if __name__ == "__main__":
    sys.exit(main())
