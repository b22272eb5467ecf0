#!/usr/bin/env python3
"""A synthetic jet-tagging dataset for the HPO example: quark (1) vs gluon (0)
jets described by 16 jet features drawn from class-dependent Gaussian
mixtures (mass, width, constituent multiplicity, pT balance, ...), correlated
and overlapping so that the classes are separable but not trivially.

Writes DIR/{x_train,y_train,x_val,y_val}.npy (float32 features, int64 labels).
Same --seed, same files.
"""
import argparse
import os

import numpy as np

FEATURES = 16


def make(n, rng, centres, mix):
    """n jets of each class: a mixture of len(mix) correlated Gaussians per class."""
    xs, ys = [], []
    for label in (0, 1):
        comp = rng.choice(len(mix), size=n, p=mix)
        x = np.empty((n, FEATURES), dtype=np.float64)
        for k in range(len(mix)):
            idx = comp == k
            mean, chol = centres[label][k]
            z = rng.standard_normal((idx.sum(), FEATURES))
            x[idx] = mean + z @ chol.T
        xs.append(x)
        ys.append(np.full(n, label, dtype=np.int64))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    # A few non-linear features, as real jet substructure has (ratios, logs).
    x[:, 12] = np.tanh(x[:, 0] * x[:, 1])
    x[:, 13] = np.log1p(np.abs(x[:, 2] - x[:, 3]))
    x[:, 14] = x[:, 4] ** 2 - x[:, 5]
    x[:, 15] = np.sin(x[:, 6]) * x[:, 7]
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train", type=int, default=8000, help="jets per class for training")
    ap.add_argument("--val", type=int, default=2000, help="jets per class for validation")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    mix = [0.5, 0.3, 0.2]
    centres = {}
    base = rng.normal(0, 1, size=(len(mix), FEATURES))
    for label in (0, 1):
        centres[label] = []
        for k in range(len(mix)):
            shift = rng.normal(0, 0.35, size=FEATURES) * (1 if label else -1)
            a = rng.normal(0, 0.5, size=(FEATURES, FEATURES))
            cov = a @ a.T / FEATURES + np.eye(FEATURES) * (0.6 + 0.3 * label)
            centres[label].append((base[k] + shift, np.linalg.cholesky(cov)))
    x_train, y_train = make(args.train, rng, centres, mix)
    x_val, y_val = make(args.val, rng, centres, mix)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    x_train = (x_train - mu) / sd
    x_val = (x_val - mu) / sd
    os.makedirs(args.out, exist_ok=True)
    for name, arr in (("x_train", x_train), ("y_train", y_train), ("x_val", x_val), ("y_val", y_val)):
        np.save(os.path.join(args.out, name + ".npy"), arr)
    print(f"wrote {len(y_train)} training and {len(y_val)} validation jets ({FEATURES} features) to {args.out}")


if __name__ == "__main__":
    main()
