#!/usr/bin/env python3
"""Benchmarks of the `hepml hpo` runner (docs/benchmarks.md, "hepml hpo: runner").

  asha      On the example study (examples/hpo), random search with N trials of
            9 epochs vs the same sampler (same seed, so the same configurations
            in the same order) with ASHA pruning: the trial-epochs ASHA spends
            until a complete trial reaches the best validation loss random
            search reached with its whole budget, over several seeds.
  overhead  Scheduling overhead per trial: a study of trivial trials
            (`echo hepml-metric loss=X`), one at a time, against the same
            command run by a shell loop.
  scale     1000 trivial trials, 2 at a time, the runner killed (SIGKILL) once
            midway and resumed: the trials in the registry are counted (no
            lost or duplicated trial).

  /usr/bin/python3 bench/hpo_example.py --hepml build/src/cli/hepml [--only asha|overhead|scale] [--seeds 1,2,3]
"""
import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "hpo")

EXAMPLE_STUDY = """name: {name}
command: >-
  /usr/bin/python3 {example}/train.py --data {data} --out {{trial_dir}}
  --lr {{lr}} --hidden {{hidden}} --layers {{layers}} --dropout {{dropout}} --epochs {epochs}
space:
  lr: {{type: float, low: 1.0e-4, high: 0.3, log: true}}
  hidden: {{type: int, low: 8, high: 128, step: 8}}
  layers: {{type: int, low: 1, high: 3}}
  dropout: {{type: float, low: 0.0, high: 0.5}}
objective: {{metric: val_loss, direction: minimize}}
sampler: {{kind: random, seed: {seed}}}
pruner: {pruner}
budget: {{trials: {trials}, parallel: 2}}
"""

TRIVIAL_STUDY = """name: {name}
command: echo hepml-metric loss={{x}}
space:
  x: {{type: float, low: 0.0, high: 1.0}}
objective: {{metric: loss, direction: minimize}}
budget: {{trials: {trials}, parallel: {parallel}}}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def trials(hepml, name, reg):
    out = run([hepml, "hpo", "status", name, "--json", "--registry", reg], capture_output=True, text=True).stdout
    return json.loads(out)["trials"]


def study(hepml, work, name, text):
    path = os.path.join(work, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    reg = os.path.join(work, "registry")
    t0 = time.time()
    run([hepml, "hpo", "run", path, "--registry", reg, "--quiet"], stdout=subprocess.DEVNULL)
    return time.time() - t0, trials(hepml, name, reg)


def bench_asha(hepml, work, seeds, n, epochs):
    data = os.path.join(work, "data")
    run(["/usr/bin/python3", os.path.join(EXAMPLE, "make_dataset.py"), "--out", data], stdout=subprocess.DEVNULL)
    rows = []
    for seed in seeds:
        common = dict(example=EXAMPLE, data=data, seed=seed, epochs=epochs)
        wall_r, rnd = study(hepml, work, f"random-{seed}", EXAMPLE_STUDY.format(
            name=f"random-{seed}", pruner="{kind: none}", trials=n, **common))
        target = min(t["value"] for t in rnd if t["state"] == "complete")
        random_epochs = sum(len(t["intermediate"]) for t in rnd)
        asha_pruner = f"{{kind: asha, min_resource: 1, max_resource: {epochs}, reduction_factor: 3}}"
        wall_a, asha = study(hepml, work, f"asha-{seed}", EXAMPLE_STUDY.format(
            name=f"asha-{seed}", pruner=asha_pruner, trials=2 * n, **common))
        def epochs_to_reach(limit):
            """Trial-epochs ASHA spent (trials in the order they started) until a
            complete trial reached `limit`; None when none did."""
            spent = 0
            for t in asha:
                spent += len(t["intermediate"])
                if t["state"] == "complete" and t["value"] <= limit + 1e-9:
                    return spent
            return None

        asha_total = sum(len(t["intermediate"]) for t in asha)
        reached = epochs_to_reach(target)
        reached_1pct = epochs_to_reach(target * 1.01)
        # Not reached: counted as everything ASHA spent (a lower bound of what it needs).
        ratio = (reached if reached is not None else asha_total) / random_epochs
        ratio_1pct = (reached_1pct if reached_1pct is not None else asha_total) / random_epochs
        rows.append(dict(seed=seed, target=target, random_epochs=random_epochs, asha_epochs=reached,
                         asha_epochs_1pct=reached_1pct, asha_epochs_total=asha_total, ratio=ratio,
                         ratio_1pct=ratio_1pct, reached=reached is not None,
                         asha_best=min(t["value"] for t in asha if t["state"] == "complete"),
                         random_wall_s=wall_r, asha_wall_s=wall_a,
                         asha_pruned=sum(t["state"] == "pruned" for t in asha), random_trials=rnd, asha_trials=asha))
        print(json.dumps({k: v for k, v in rows[-1].items() if not k.endswith("_trials")}), flush=True)
    median = statistics.median(r["ratio"] for r in rows)
    median_1pct = statistics.median(r["ratio_1pct"] for r in rows)
    print(f"asha: median trial-epochs to reach random search's best = {median:.3f} of random search's "
          f"({n} trials x {epochs} epochs); to within 1% of it: {median_1pct:.3f}", flush=True)
    return dict(rows=rows, median_ratio=median, median_ratio_1pct=median_1pct, trials=n, epochs=epochs)


def bench_overhead(hepml, work, n):
    wall, t = study(hepml, work, "overhead", TRIVIAL_STUDY.format(name="overhead", trials=n, parallel=1))
    assert sum(x["state"] == "complete" for x in t) == n
    t0 = time.time()
    run(["/bin/sh", "-c", f"for i in $(seq {n}); do /bin/sh -c 'echo hepml-metric loss=0.5' > /dev/null; done"])
    shell = time.time() - t0
    per_trial = wall / n
    overhead = (wall - shell) / n
    print(f"overhead: {n} trivial trials in {wall:.2f} s = {1e3 * per_trial:.1f} ms per trial; the commands alone "
          f"{1e3 * shell / n:.1f} ms each; runner overhead {1e3 * overhead:.1f} ms per trial", flush=True)
    return dict(trials=n, wall_s=wall, per_trial_ms=1e3 * per_trial, command_ms=1e3 * shell / n,
                overhead_ms=1e3 * overhead)


def bench_scale(hepml, work, n):
    path = os.path.join(work, "scale.yaml")
    with open(path, "w") as f:
        f.write(TRIVIAL_STUDY.format(name="scale", trials=n, parallel=2))
    reg = os.path.join(work, "registry")
    t0 = time.time()
    runner = subprocess.Popen([hepml, "hpo", "run", path, "--registry", reg, "--quiet"], stdout=subprocess.DEVNULL)
    db = os.path.join(reg, "registry.db")
    while True:  # kill it once about 40% of the trials are recorded
        time.sleep(0.2)
        if runner.poll() is not None:
            break
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                done = c.execute("SELECT count(*) FROM run_tags WHERE key='hepml.hpo.state' AND value='complete'"
                                 ).fetchone()[0]
        except sqlite3.Error:
            continue
        if done >= 0.4 * n:
            runner.send_signal(signal.SIGKILL)
            break
    runner.wait()
    killed_at = done
    run([hepml, "hpo", "resume", "scale", "--registry", reg, "--quiet"], stdout=subprocess.DEVNULL)
    wall = time.time() - t0
    t = trials(hepml, "scale", reg)
    with sqlite3.connect(db) as c:
        exp = c.execute("SELECT id FROM experiments WHERE name='scale'").fetchone()[0]
        runs = c.execute("SELECT count(*) FROM runs WHERE experiment_id=?", (exp,)).fetchone()[0]
        numbers = [int(r[0]) for r in c.execute(
            "SELECT value FROM run_tags JOIN runs ON runs.id=run_tags.run_id "
            "WHERE runs.experiment_id=? AND key='hepml.hpo.trial'", (exp,))]
    complete = [x for x in t if x["state"] == "complete" and not x["lost"]]
    lost = [x for x in t if x["lost"]]
    xs = [x["params"]["x"] for x in complete]
    result = dict(trials=n, killed_after=killed_at, trial_runs=len(numbers), runs=runs, complete=len(complete),
                  lost_and_rerun=len(lost), duplicate_numbers=len(numbers) - len(set(numbers)),
                  contiguous=sorted(numbers) == list(range(len(numbers))), repeated_params=len(xs) - len(set(xs)),
                  wall_s=wall)
    print("scale: " + json.dumps(result), flush=True)
    ok = (result["complete"] == n and result["duplicate_numbers"] == 0 and result["contiguous"]
          and result["repeated_params"] == 0 and runs == len(numbers) + 1)
    if not ok:
        sys.exit("scale: FAILED")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hepml", required=True)
    ap.add_argument("--only", choices=["asha", "overhead", "scale"])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--trials", type=int, default=10, help="random search trials (ASHA gets twice as many)")
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    hepml = os.path.abspath(args.hepml)
    results = {}
    with tempfile.TemporaryDirectory(prefix="hepml_hpo_bench_") as work:
        if args.only in (None, "overhead"):
            results["overhead"] = bench_overhead(hepml, work, 200)
        if args.only in (None, "scale"):
            results["scale"] = bench_scale(hepml, work, 1000)
        if args.only in (None, "asha"):
            seeds = [int(s) for s in args.seeds.split(",")]
            results["asha"] = bench_asha(hepml, work, seeds, args.trials, args.epochs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
