#!/usr/bin/python3
"""Side-by-side benchmark of hepml, ONNX Runtime and PyTorch on the HEP model set.

    /usr/bin/python3 bench/run_benchmarks.py [--hepml build/src/cli/hepml] [--quick]
        [--out docs/benchmarks.md] [--json OUT.json] [--work build/bench-work]

What it does:
  1. Installs/checks the peers: `npm install --ignore-scripts` in bench/peers/ when
     onnxruntime-node is missing; PyTorch (python3-torch) must import, else it asks for
     scripts/install-deps.sh.
  2. Generates the models (bench/models/generate.py --out WORK/models; skipped when the
     folder was made by the same generate.py) and, once, the inputs every engine reads:
     WORK/inputs/MODEL/bB/NAME.npy. Shapes follow models.json: "batch" is B, other
     symbolic axes take their size from the model's default data set; a model without a
     batch axis (interaction_network: nodes, edges) gets B graphs of that size side by
     side, with each graph's edge indices offset into its own nodes.
  3. For every model x batch {1, 256} x threads {1, 2}: calibrates an iteration count on
     hepml (about --round-seconds of timed work per round), then runs R rounds; each
     round runs hepml, ONNX Runtime and PyTorch one after another, in an order that
     rotates from round to round, so load drift on the machine hits every engine alike,
     with the same 0.1 s pause after each (spinning worker threads settle). Per round and
     engine: p50 of the per-call latencies and throughput (batch x calls / timed
     seconds); reported: the medians over rounds.
       hepml        a fresh `hepml bench MODEL --input ... --batch B --threads T
                    --iterations N --warmup W --json` process per round
       ONNX Runtime `node bench/peers/ort_bench.mjs --serve` (default graph optimizations,
                    intraOpNumThreads T, interOpNumThreads 1)
       PyTorch      `bench/peers/torch_bench.py --serve` (the generate.py module, eager,
                    torch.no_grad, torch.set_num_threads(T), OPENBLAS_NUM_THREADS=T,
                    OMP_WAIT_POLICY=PASSIVE: see torch_bench.py)
     The peers run as one fresh process per engine and configuration that loads the
     model once and runs each round on request, idle (blocked on stdin) in between:
     Python + torch alone takes a second or more to start, too long to pay 140 times.
  4. Per-call floor of ONNX Runtime through Node: the ORT runner, right after each of
     its rounds, times a one-node model (Identity on a 1-element tensor); that round's
     latency and throughput are corrected by it. ORT is reported raw and minus the floor;
     the hepml/ORT ratios use the floor-corrected figures. hepml's floor on the same model (fresh processes,
     per thread count) is reported for comparison, not subtracted.
  5. Peak RSS added = the engine process's VmHWM (hepml: median over its rounds) minus
     the VmHWM of the same runner process loading nothing (median of 3 such processes
     per engine, measured in this run; PyTorch's per thread count):
     `ort_bench.mjs --baseline` (node + onnxruntime-node imported), `torch_bench.py
     --baseline` (python + torch + generate.py imported), and for hepml the binary
     started with `--version`, whose peak RSS is taken by /usr/bin/time (`%M`: the
     ru_maxrss of a fresh exec from time's own small fork, which equals its VmHWM;
     checked against hepml's own VmHWM on a real run, hepml_rss_check in the JSON).
     Without /usr/bin/time, hepml on the one-node model stands in (an upper bound).
  6. Writes the tables between <!-- hep-models:begin --> and <!-- hep-models:end --> in
     --out (other sections of the file are kept), and --json with all raw data.

Bounded: rounds are short and the peers stop a round after 3 x --round-seconds; the full
run (7 models x 2 batches x 2 thread counts, 5 rounds) takes about 5 minutes on an idle
2-core machine; --quick (batches 1 and 16, threads 1, 1 round, short rounds) about a
minute, and it writes to WORK/benchmarks.md unless --out is given. On a loaded machine
everything takes longer; the load average is recorded with the results.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "bench", "peers")
GENERATE = os.path.join(ROOT, "bench", "models", "generate.py")
PYTHON = "/usr/bin/python3"
ENGINES = ("hepml", "onnxruntime", "pytorch")
BEGIN = "<!-- hep-models:begin -->"
END = "<!-- hep-models:end -->"


# ---------------------------------------------------------------------------------------
# Statistics and aggregation (pure; covered by run_benchmarks_test.py)

def percentile(values, p):
    """Linear interpolation between closest ranks, as `hepml bench` computes it."""
    if not values:
        raise ValueError("percentile of no values")
    v = sorted(values)
    pos = p / 100.0 * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    frac = pos - lo
    if frac == 0 or v[hi] == v[lo]:
        return v[lo]  # also keeps infinities from turning into NaN
    return v[lo] + (v[hi] - v[lo]) * frac


def median(values):
    return percentile(values, 50)


def round_from_latencies(latencies_us, total_s, batch):
    """One round of a peer runner: p50 of its per-call latencies and its throughput."""
    n = len(latencies_us)
    if n == 0 or total_s <= 0:
        raise ValueError("a round needs latencies and a positive timed duration")
    return {"p50_us": percentile(latencies_us, 50), "mean_us": sum(latencies_us) / n,
            "throughput_per_s": batch * n / total_s, "iterations": n, "total_s": total_s}


def round_from_hepml(j):
    """One round of `hepml bench --json` (it reports p50 and throughput itself)."""
    return {"p50_us": j["latency_us"]["p50"], "mean_us": j["latency_us"]["mean"],
            "throughput_per_s": j["throughput_per_s"], "iterations": j["iterations"],
            "total_s": j["batch"] * j["iterations"] / j["throughput_per_s"] if j["throughput_per_s"] > 0 else 0.0}


def floor_corrected(rnd, floor_us, batch):
    """The round with `floor_us` taken off every call: p50 - floor, and the throughput
    of the remaining time (batch x iterations / (timed seconds - iterations x floor)).
    None where the floor is not below the figure (the work is lost in the floor)."""
    n = rnd["iterations"]
    rest_s = rnd["total_s"] - n * floor_us / 1e6
    p50 = rnd["p50_us"] - floor_us
    return {"p50_us": p50 if p50 > 0 else None,
            "throughput_per_s": batch * n / rest_s if rest_s > 0 else None}


def aggregate(rounds, key):
    """Median over rounds of rnd[key] and the half-range relative to it (noise)."""
    vals = [r[key] for r in rounds]
    m = median(vals)
    spread = (max(vals) - min(vals)) / 2 / m if m > 0 else 0.0
    return m, spread


def rss_added_mib(run_kib, baseline_kib):
    """Peak resident memory the model added: median VmHWM of the runs minus the median
    VmHWM of the same runner loading nothing, in MiB (may be slightly negative when the
    model adds nothing measurable)."""
    if not run_kib or not baseline_kib:
        return None
    return (median(run_kib) - median(baseline_kib)) / 1024.0


def ratio(a, b):
    if a is None or b is None or b == 0 or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def geomean(values):
    vals = [v for v in values if v is not None and v > 0]
    if not vals:
        return None
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def summarize_config(cfg, floor_us, baselines_kib):
    """Turns a configuration's raw rounds into the reported figures.

    cfg: {"model", "batch", "threads", "rounds": {engine: [round dicts]},
          "rss_kib": {engine: [VmHWM of the engine's processes]}, "errors": {engine: msg}}
    floor_us: ORT's per-call floor for this configuration; a round's own "floor_us"
        (measured right after it) takes precedence; None and no round floor: no correction
    baselines_kib: {engine: [VmHWM of the same runner loading nothing]}
    """
    b = cfg["batch"]
    row = {"model": cfg["model"], "batch": b, "threads": cfg["threads"], "engines": {}}
    for e in ENGINES:
        rounds = cfg["rounds"].get(e, [])
        if not rounds:
            row["engines"][e] = {"error": cfg.get("errors", {}).get(e, "no result")}
            continue
        p50, spread = aggregate(rounds, "p50_us")
        thr, _ = aggregate(rounds, "throughput_per_s")
        d = {"p50_us": p50, "spread": spread, "throughput_per_s": thr,
             "iterations": [r["iterations"] for r in rounds],
             "rss_added_mib": rss_added_mib(cfg["rss_kib"].get(e, []), baselines_kib.get(e, []))}
        floors = [r.get("floor_us", floor_us) for r in rounds] if e == "onnxruntime" else []
        if floors and all(f is not None for f in floors):
            corr = [floor_corrected(r, f, b) for r, f in zip(rounds, floors)]
            lat = [c["p50_us"] for c in corr]
            thr_c = [c["throughput_per_s"] for c in corr]
            d["floor_us"] = median(floors)
            # A round whose work vanished in the floor counts as 0 us / infinitely fast.
            d["p50_corrected_us"] = median([v or 0.0 for v in lat])
            d["throughput_corrected_per_s"] = median([v if v is not None else math.inf for v in thr_c])
            if d["p50_corrected_us"] <= 0:
                d["p50_corrected_us"] = None
            if math.isinf(d["throughput_corrected_per_s"]):
                d["throughput_corrected_per_s"] = None
        row["engines"][e] = d
    h, o, t = (row["engines"][e] for e in ENGINES)
    if "floor_us" in o:
        o_lat, o_thr = o["p50_corrected_us"], o["throughput_corrected_per_s"]
    else:
        o_lat, o_thr = o.get("p50_us"), o.get("throughput_per_s")

    def rss_ratio(x, y):
        return ratio(x, y) if (x or 0) > 0 and (y or 0) > 0 else None

    row["ratios"] = {
        "latency_hepml_over_ort": ratio(h.get("p50_us"), o_lat),
        "latency_hepml_over_ort_raw": ratio(h.get("p50_us"), o.get("p50_us")),
        "throughput_hepml_over_ort": ratio(h.get("throughput_per_s"), o_thr),
        "throughput_hepml_over_ort_raw": ratio(h.get("throughput_per_s"), o.get("throughput_per_s")),
        "throughput_at_p50_hepml_over_ort": ratio(o_lat, h.get("p50_us")),
        "latency_hepml_over_pytorch": ratio(h.get("p50_us"), t.get("p50_us")),
        "throughput_hepml_over_pytorch": ratio(h.get("throughput_per_s"), t.get("throughput_per_s")),
        "rss_hepml_over_ort": rss_ratio(h.get("rss_added_mib"), o.get("rss_added_mib")),
        "rss_hepml_over_pytorch": rss_ratio(h.get("rss_added_mib"), t.get("rss_added_mib")),
    }
    return row


def summary_by_setting(rows):
    """Geometric means of the hepml/ORT and hepml/PyTorch ratios per (batch, threads)."""
    out = []
    for b, t in sorted({(r["batch"], r["threads"]) for r in rows}):
        sel = [r for r in rows if r["batch"] == b and r["threads"] == t]
        lat = [r["ratios"]["latency_hepml_over_ort"] for r in sel]
        out.append({"batch": b, "threads": t, "models": len(sel),
                    "latency_hepml_over_ort": geomean(lat),
                    "throughput_hepml_over_ort": geomean([r["ratios"]["throughput_hepml_over_ort"] for r in sel]),
                    "latency_hepml_over_pytorch": geomean([r["ratios"]["latency_hepml_over_pytorch"] for r in sel]),
                    "rss_hepml_over_ort": geomean([r["ratios"]["rss_hepml_over_ort"] for r in sel]),
                    "hepml_faster_than_ort": sum(1 for v in lat if v is not None and v < 1)})
    return out


# ---------------------------------------------------------------------------------------
# Markdown

def fmt_us(v):
    if v is None:
        return "–"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_rate(v):
    if v is None or math.isinf(v):
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}"


def fmt_mib(v):
    return "–" if v is None else f"{v:.1f}"


def render_markdown(report):
    m = report["machine"]
    lines = [BEGIN, "", "## HEP models: hepml vs ONNX Runtime vs PyTorch", ""]
    lines += [f"- Date: {report['date']}",
              f"- Machine: {m['cpu_model']}, {m['cpus']} CPU(s) ({m['cores']} core(s)), {m['os']}; "
              f"load average {m['loadavg_start']} at the start, {m.get('loadavg_end', '?')} at the end",
              f"- Command: `{report['command']}`",
              f"- Engines: hepml {report['versions']['hepml']}, ONNX Runtime {report['versions']['onnxruntime']} "
              f"(onnxruntime-node, Node {report['versions']['node']}; default graph optimizations, intra-op "
              f"threads T, inter-op 1), PyTorch {report['versions']['pytorch']} (eager, torch.no_grad, "
              f"torch.set_num_threads(T), OPENBLAS_NUM_THREADS=T, OMP_WAIT_POLICY=PASSIVE)",
              f"- Inputs: the same .npy files for all three engines (generate.py's input makers at batch B"
              f"{report['settings'].get('graph_note', '')})",
              f"- Rounds: {report['settings']['rounds']} per configuration, engines interleaved (order rotated "
              f"each round, a {report['settings']['pause_s']} s pause after each engine); figures are medians "
              f"over rounds. Iterations per round calibrated on hepml to ~{report['settings']['round_seconds']} s "
              f"of work (ORT and PyTorch stop a round after 3x that). hepml runs as a fresh `hepml bench` "
              f"process per round; ORT (Node) and PyTorch as one fresh process per engine and configuration "
              f"that loads the model once and runs the rounds on request, idle in between.",
              f"- Wall time of the run: {report['elapsed_s']:.0f} s", ""]
    try:
        load = float(str(m["loadavg_start"]).split()[0])
    except (ValueError, IndexError):
        load = 0.0
    if load > (m.get("cpus") or 1):
        lines += [f"**Shared machine**: the load average ({m['loadavg_start']}) was above the CPU count while "
                  "this ran, so absolute figures are inflated and noisy (see *noise*); the ratios, from "
                  "interleaved rounds, hold better. Rerun on an idle machine for absolute numbers.", ""]
    if report["settings"].get("quick"):
        lines += ["**Quick smoke run** (`--quick`): batches 1 and 16, one round, short rounds; not for quoting.", ""]
    lines += ["Ratios are hepml / ONNX Runtime: latency below 1 and throughput above 1 mean hepml is "
              "faster. ONNX Runtime is reached through Node (onnxruntime-node), which adds a per-call "
              "binding floor; it is measured below on a one-node model and taken off ORT's latency and "
              "throughput before the ratios are formed (raw figures are in the latency table and JSON).", ""]

    lines += ["### Summary (geometric means over models)", "",
              "| batch | threads | latency hepml/ORT | sustained throughput hepml/ORT | latency hepml/PyTorch | "
              "RSS added hepml/ORT | hepml faster than ORT |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["summary"]:
        lines.append(f"| {s['batch']} | {s['threads']} | {fmt_ratio(s['latency_hepml_over_ort'])} | "
                     f"{fmt_ratio(s['throughput_hepml_over_ort'])} | {fmt_ratio(s['latency_hepml_over_pytorch'])} | "
                     f"{fmt_ratio(s['rss_hepml_over_ort'])} | {s['hepml_faster_than_ort']}/{s['models']} |")
    lines.append("")

    lines += ["### Latency (p50 per call, µs)", "",
              "| model | batch | threads | hepml | ORT raw | ORT − floor | PyTorch | hepml/ORT | hepml/PyTorch | noise |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        h, o, t = (r["engines"][e] for e in ENGINES)
        noise = max((r["engines"][e].get("spread", 0) for e in ENGINES), default=0)
        corr = "< floor" if "floor_us" in o and o.get("p50_corrected_us") is None else fmt_us(o.get("p50_corrected_us"))
        lines.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {fmt_us(h.get('p50_us'))} | "
                     f"{fmt_us(o.get('p50_us'))} | {corr} | {fmt_us(t.get('p50_us'))} | "
                     f"{fmt_ratio(r['ratios']['latency_hepml_over_ort'])} | "
                     f"{fmt_ratio(r['ratios']['latency_hepml_over_pytorch'])} | ±{100 * noise:.0f}% |")
    lines += ["", "*noise*: the largest half-range of the per-round p50s among the three engines, "
              "relative to their median.", ""]

    lines += ["### Throughput (samples/s; interaction_network: graphs/s)", "",
              "Sustained: batch x calls / timed seconds of a round (ORT: minus calls x floor), median over "
              "rounds. Being a mean, it shows preemption by other processes on a loaded machine far more "
              "than the p50 latencies do. *at p50* is the ratio of batch / p50 latency, i.e. 1 / the latency "
              "ratio, given for comparison.", "",
              "| model | batch | threads | hepml | ORT − floor | PyTorch | hepml/ORT | hepml/ORT at p50 | hepml/PyTorch |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        h, o, t = (r["engines"][e] for e in ENGINES)
        lines.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {fmt_rate(h.get('throughput_per_s'))} | "
                     f"{fmt_rate(o.get('throughput_corrected_per_s', o.get('throughput_per_s')))} | "
                     f"{fmt_rate(t.get('throughput_per_s'))} | {fmt_ratio(r['ratios']['throughput_hepml_over_ort'])} | "
                     f"{fmt_ratio(r['ratios'].get('throughput_at_p50_hepml_over_ort'))} | "
                     f"{fmt_ratio(r['ratios']['throughput_hepml_over_pytorch'])} |")
    lines.append("")

    base = report["baselines_mib"]
    lines += ["### Peak RSS added by loading and running the model (MiB)", "",
              "VmHWM of the run minus the VmHWM of the same runner loading nothing "
              f"(hepml {fmt_mib(base.get('hepml'))} MiB, ORT/Node {fmt_mib(base.get('onnxruntime'))} MiB, "
              f"PyTorch/Python {fmt_mib(base.get('pytorch'))} MiB at 1 thread; hepml's measured as "
              f"`{report.get('hepml_rss_check', {}).get('hepml_baseline', '?')}`). Inputs read from .npy count "
              f"as added; ORT and PyTorch: their one process per configuration, hepml: median over its rounds.", "",
              "| model | batch | threads | hepml | ORT | PyTorch | hepml/ORT | hepml/PyTorch |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        h, o, t = (r["engines"][e] for e in ENGINES)
        lines.append(f"| {r['model']} | {r['batch']} | {r['threads']} | {fmt_mib(h.get('rss_added_mib'))} | "
                     f"{fmt_mib(o.get('rss_added_mib'))} | {fmt_mib(t.get('rss_added_mib'))} | "
                     f"{fmt_ratio(r['ratios']['rss_hepml_over_ort'])} | {fmt_ratio(r['ratios']['rss_hepml_over_pytorch'])} |")
    lines.append("")

    lines += ["### Per-call floor (one Identity node on a 1-element tensor, p50 µs)", "",
              "ORT's floor is measured in each configuration's ORT process right after each round and "
              "subtracted from that round; the table gives the median over configurations. hepml's floor is "
              "measured the same way (fresh `hepml bench` processes) and not subtracted.", "",
              "| threads | ORT via Node (subtracted) | hepml (not subtracted) |", "|---:|---:|---:|"]
    for t, f in sorted(report["floors"].items(), key=lambda kv: int(kv[0])):
        lines.append(f"| {t} | {fmt_us(f.get('onnxruntime'))} | {fmt_us(f.get('hepml'))} |")
    lines.append("")

    errs = [(r["model"], r["batch"], r["threads"], e, r["engines"][e]["error"])
            for r in report["rows"] for e in ENGINES if "error" in r["engines"][e]]
    if errs:
        lines += ["### Failed runs", ""]
        lines += [f"- {mo} batch {b} threads {t}, {e}: {msg}" for mo, b, t, e, msg in errs]
        lines.append("")
    lines += ["Raw data (every round, every engine): the `--json` output of the command above.", "", END]
    return "\n".join(lines) + "\n"


def replace_block(existing, block):
    """`existing` with the hep-models block replaced by `block` (appended when absent);
    everything outside the markers is kept as it was."""
    if existing is None or not existing.strip():
        return "# Benchmarks\n\n" + block
    start = existing.find(BEGIN)
    end = existing.find(END, start + len(BEGIN)) if start >= 0 else -1
    if start >= 0 and end >= 0:
        tail = existing[end + len(END):]
        if tail.startswith("\n"):
            tail = tail[1:]
        return existing[:start] + block + tail
    sep = "" if existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    return existing + sep + block


# ---------------------------------------------------------------------------------------
# Environment

def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def machine_info():
    info = {"cpu_model": platform.processor() or "unknown", "cpus": os.cpu_count(), "cores": os.cpu_count(),
            "os": platform.platform(terse=True), "loadavg_start": " ".join(f"{x:.1f}" for x in os.getloadavg())}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        kv = dict((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in out.splitlines()) if v)
        info["cpu_model"] = kv.get("Model name", info["cpu_model"])
        info["cpus"] = int(kv.get("CPU(s)", info["cpus"]))
        info["cores"] = int(kv.get("Core(s) per socket", 0)) * int(kv.get("Socket(s)", 1)) or info["cpus"]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return info


def ensure_peers():
    """node, onnxruntime-node (installed here when missing), PyTorch. Returns the
    versions of the peers."""
    if shutil.which("node") is None:
        sys.exit("run_benchmarks: node is not installed (Debian: nodejs, npm): run scripts/install-deps.sh")
    if not os.path.isdir(os.path.join(PEERS, "node_modules", "onnxruntime-node")):
        log("onnxruntime-node missing: npm install --ignore-scripts in bench/peers/")
        r = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=PEERS)
        if r.returncode != 0:
            sys.exit("run_benchmarks: npm install --ignore-scripts failed in bench/peers/")
    try:  # the driver itself needs them too (inputs come from generate.py's makers)
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import torch
    except ImportError as e:
        sys.exit(f"run_benchmarks: {e} in {sys.executable}; PyTorch, numpy and onnx come from the Debian "
                 "packages python3-torch, python3-numpy, python3-onnx: run scripts/install-deps.sh "
                 "(and run this script with /usr/bin/python3)")
    try:
        ort = json.loads(subprocess.run(["node", os.path.join(PEERS, "ort_bench.mjs"), "--baseline"],
                                        capture_output=True, text=True, timeout=300).stdout)["version"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError):
        sys.exit("run_benchmarks: onnxruntime-node does not load: node bench/peers/ort_bench.mjs --baseline")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {"onnxruntime": ort, "node": node, "pytorch": torch.__version__}


def hepml_version(hepml):
    def out(cmd, cwd=None):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = out(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT) or "unknown commit"
    dirty = out(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT)
    ver = out([hepml, "--version"]).replace("hepml ", "") or "unknown"
    return f"{ver} ({commit}{'+dirty' if dirty else ''})"


# ---------------------------------------------------------------------------------------
# Models and inputs

def file_sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ensure_models(models_dir, names, regenerate):
    stamp = os.path.join(models_dir, ".generate.sha256")
    sha = file_sha(GENERATE)
    if not regenerate and os.path.exists(os.path.join(models_dir, "models.json")) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == sha:
                with open(os.path.join(models_dir, "models.json")) as m:
                    have = {e["name"] for e in json.load(m)["models"]}
                if set(names) <= have:
                    log(f"models: reusing {models_dir}")
                    return
    log(f"models: {GENERATE} --out {models_dir}")
    r = subprocess.run([PYTHON, GENERATE, "--out", models_dir], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit(f"run_benchmarks: generate.py failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    with open(stamp, "w") as f:
        f.write(sha + "\n")


def expected_shapes(entry, batch):
    """Input shapes for `batch`: "batch" -> batch; other symbolic axes take the size the
    default data set has; without a batch axis every symbolic axis is that size x batch
    (a batch of graphs laid side by side)."""
    default = entry["data_sets"][0]["inputs"]
    batched = any("batch" in i["shape"] for i in entry["inputs"])
    shapes = {}
    for inp in entry["inputs"]:
        ref = default[inp["name"]]["shape"]
        dims = []
        for i, d in enumerate(inp["shape"]):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif d == "batch":
                dims.append(batch)
            else:
                dims.append(ref[i] if batched else ref[i] * batch)
        shapes[inp["name"]] = dims
    return shapes


def make_inputs(entry, batch, seed):
    """Same-seeded inputs shaped like the real ones (generate.py's makers), checked
    against expected_shapes()."""
    import numpy as np
    sys.path.insert(0, os.path.dirname(GENERATE))
    import generate
    rng = np.random.default_rng(seed)
    name = entry["name"]
    shapes = expected_shapes(entry, batch)
    if name == "interaction_network":
        n0, e0 = entry["data_sets"][0]["inputs"]["x"]["shape"][0], entry["data_sets"][0]["inputs"]["edge_index"]["shape"][1]
        xs, idx = [], []
        for g in range(batch):
            one = generate.inputs_interaction(rng, n0, e0)
            xs.append(one["x"])
            idx.append(one["edge_index"] + g * n0)
        inputs = {"x": np.concatenate(xs), "edge_index": np.concatenate(idx, axis=1).astype(np.int64)}
        if inputs["edge_index"].min() < 0 or inputs["edge_index"].max() >= inputs["x"].shape[0]:
            raise AssertionError("edge_index out of range")
    elif name in generate.MODELS:
        inputs = generate.MODELS[name]["sets"][0][1](rng, batch=batch)
    else:  # a model this driver does not know: plain random data of the declared dtype
        inputs = {}
        for inp in entry["inputs"]:
            shape = shapes[inp["name"]]
            if inp["dtype"] == "bool":
                inputs[inp["name"]] = rng.random(shape) < 0.5
            elif inp["dtype"].startswith("int"):
                inputs[inp["name"]] = np.zeros(shape, inp["dtype"])
            else:
                inputs[inp["name"]] = rng.normal(0, 1, shape).astype(inp["dtype"])
    for inp in entry["inputs"]:
        a = inputs[inp["name"]]
        if list(a.shape) != shapes[inp["name"]] or a.dtype.name != inp["dtype"]:
            raise AssertionError(f"{name}: input {inp['name']} is {a.dtype}{list(a.shape)}, "
                                 f"expected {inp['dtype']}{shapes[inp['name']]}")
    return inputs


def graph_note(manifest, names):
    """', NAME: B graphs of 40 nodes / 120 edges side by side' for models without a batch axis."""
    out = ""
    for e in manifest["models"]:
        if e["name"] not in names or any("batch" in i["shape"] for i in e["inputs"]):
            continue
        sizes = {}
        for i in e["inputs"]:
            ref = e["data_sets"][0]["inputs"][i["name"]]["shape"]
            for d, n in zip(i["shape"], ref):
                if isinstance(d, str):
                    sizes.setdefault(d, n)
        out += f"; {e['name']}: B graphs of " + " / ".join(f"{n} {d}" for d, n in sizes.items()) + " side by side"
    return out


def write_inputs(work, manifest, names, batches):
    import numpy as np
    files = {}
    for i, entry in enumerate(m for m in manifest["models"] if m["name"] in names):
        for b in batches:
            folder = os.path.join(work, "inputs", entry["name"], f"b{b}")
            os.makedirs(folder, exist_ok=True)
            inputs = make_inputs(entry, b, seed=20240 + 17 * i + b)
            files[(entry["name"], b)] = {}
            for n, a in inputs.items():
                path = os.path.join(folder, f"{n}.npy")
                np.save(path, a)
                files[(entry["name"], b)][n] = path
    return files


def write_floor_model(work):
    import numpy as np
    from onnx import TensorProto, helper
    folder = os.path.join(work, "floor")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "identity.onnx")
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="identity")], "floor",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    x = os.path.join(folder, "x.npy")
    np.save(x, np.ones([1], np.float32))
    return path, {"x": x}


# ---------------------------------------------------------------------------------------
# Runners (each call is a fresh process)

class RunError(Exception):
    pass


def run_json(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"timed out after {timeout} s")
    if p.returncode != 0:
        raise RunError((p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:300])
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        raise RunError("no JSON on stdout: " + p.stdout[-200:])


def input_args(inputs):
    out = []
    for n, f in inputs.items():
        out += ["--input", f"{n}={f}"]
    return out


def run_hepml(hepml, model, inputs, threads, iterations, warmup, timeout, batch=1):
    """A fresh `hepml bench` process: (round, VmHWM KiB, raw JSON). `batch` only sets
    the samples per call in hepml's throughput (the inputs fix the shapes)."""
    cmd = [hepml, "bench", model, "--batch", str(batch), "--threads", str(threads), "--iterations", str(iterations),
           "--warmup", str(warmup), "--json"] + input_args(inputs)
    j = run_json(cmd, timeout)
    return round_from_hepml(j), int(round(j["peak_rss_mib"] * 1024)), j


class PeerServer:
    """A peer runner in --serve mode: one fresh process per engine and configuration,
    model loaded once, rounds on request (`run N W S`), idle (blocked on stdin) between
    them."""

    def __init__(self, engine, cmd, timeout):
        self.engine, self.timeout = engine, timeout
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.ready = None

    def _reply(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            self.kill()
            raise RunError(f"{self.engine}: no answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().strip().splitlines()
            self.proc.wait()
            raise RunError((err or [f"{self.engine} runner exited {self.proc.returncode}"])[-1][:300])
        return json.loads(line)

    def wait_ready(self):
        self.ready = self._reply(self.timeout)
        return self.ready

    def request(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reply read reports the exit
        return self._reply(self.timeout)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_ort(model, inputs, threads, floor_model, timeout):
    cmd = ["node", os.path.join(PEERS, "ort_bench.mjs"), "--serve", "--model", model, "--threads", str(threads),
           "--floor", floor_model] + input_args(inputs)
    return PeerServer("onnxruntime", cmd, timeout)


def start_torch(models_dir, name, inputs, threads, timeout):
    cmd = [PYTHON, os.path.join(PEERS, "torch_bench.py"), "--serve", "--models", models_dir, "--model", name,
           "--threads", str(threads)] + input_args(inputs)
    return PeerServer("pytorch", cmd, timeout)


def time_maxrss_kib(cmd):
    """Peak RSS (KiB) of `cmd` as /usr/bin/time reports it (ru_maxrss of a fresh exec
    from time's own small fork, so the caller's memory does not leak into it)."""
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M", *cmd], capture_output=True, text=True, timeout=300)
    m = re.search(r"maxrss_kib=(\d+)", p.stderr)
    if not m:
        raise RunError("/usr/bin/time gave no maxrss: " + p.stderr[-200:])
    return int(m.group(1)), p


def baseline_kib(engine, hepml, threads, floor=None):
    """VmHWM of the engine's runner process that loads nothing. hepml reports no VmHWM
    without a model: /usr/bin/time measures `hepml --version`; without /usr/bin/time
    hepml's own VmHWM on the one-node `floor` model (model, inputs) stands in."""
    if engine == "hepml":
        if os.access("/usr/bin/time", os.X_OK):
            return time_maxrss_kib([hepml, "--version"])[0]
        return run_hepml(hepml, floor[0], floor[1], threads, 1, 0, 300)[1]
    if engine == "onnxruntime":
        return run_json(["node", os.path.join(PEERS, "ort_bench.mjs"), "--baseline"], 300)["vmhwm_kib"]
    return run_json([PYTHON, os.path.join(PEERS, "torch_bench.py"), "--baseline", "--threads", str(threads)],
                    300)["vmhwm_kib"]


def rotated(seq, k):
    k %= len(seq)
    return list(seq[k:]) + list(seq[:k])


def iterations_for(latency_us, round_seconds, lo=3, hi=5000):
    n = int(round_seconds * 1e6 / max(latency_us, 1.0))
    return max(lo, min(hi, n))


def run_config(ctx, name, batch, threads):
    """All rounds of one model x batch x threads: raw data for summarize_config()."""
    models_dir, hepml, timeout = ctx["models_dir"], ctx["hepml"], ctx["timeout"]
    model_path = os.path.join(models_dir, f"{name}.onnx")
    inputs = ctx["inputs"][(name, batch)]
    cfg = {"model": name, "batch": batch, "threads": threads, "rounds": {e: [] for e in ENGINES},
           "rss_kib": {e: [] for e in ENGINES}, "errors": {}, "raw": {e: [] for e in ENGINES},
           "ort_floor_us": None}
    try:
        est = run_hepml(hepml, model_path, inputs, threads, 1, 1, timeout, batch)[0]["p50_us"]
    except RunError as err:
        est = 10000.0
        cfg["errors"]["hepml"] = f"calibration: {err}"
    n = iterations_for(est, ctx["round_s"])
    w = max(1, min(50, n // 5))
    max_s = 3 * ctx["round_s"]
    cfg["iterations"], cfg["warmup"] = n, w

    servers = {}
    for e, start in (("onnxruntime", lambda: start_ort(model_path, inputs, threads, ctx["floor_model"], timeout)),
                     ("pytorch", lambda: start_torch(models_dir, name, inputs, threads, timeout))):
        try:
            servers[e] = start()
        except OSError as err:
            cfg["errors"][e] = str(err)
    for e, srv in list(servers.items()):  # both load at once; nothing is timed yet
        try:
            cfg["load_ms_" + e] = srv.wait_ready()["load_ms"]
        except RunError as err:
            cfg["errors"][e] = str(err)
            del servers[e]
    try:
        for r in range(ctx["rounds"]):
            for e in rotated(ENGINES, r + ctx["rotation"]):
                try:
                    if e == "hepml":
                        rnd, rss, raw = run_hepml(hepml, model_path, inputs, threads, n, w, timeout, batch)
                        cfg["rss_kib"][e].append(rss)
                    elif e in servers:
                        raw = servers[e].request(f"run {n} {w} {max_s:.3f}")
                        rnd = round_from_latencies(raw["latencies_us"], raw["total_s"], batch)
                        if not cfg["rss_kib"][e]:
                            # The first round's high-water mark: later rounds repeat the same
                            # work, and ORT's floor session (created after it) stays out.
                            cfg["rss_kib"][e] = [raw["vmhwm_kib"]]
                        if e == "onnxruntime":  # the binding floor, right after the round
                            fl = servers[e].request(f"floor {ctx['floor_iterations']}")["floor_latencies_us"]
                            rnd["floor_us"] = percentile(fl, 50)
                            raw["floor_p50_us"] = rnd["floor_us"]
                    else:
                        continue
                except RunError as err:
                    cfg["errors"][e] = str(err)
                    servers.pop(e, None)
                    continue
                raw.pop("profile", None)
                cfg["rounds"][e].append(rnd)
                cfg["raw"][e].append(raw)
                # Let spinning worker threads (OpenBLAS, ORT, OpenMP) settle before the
                # next engine; the same pause after every engine.
                time.sleep(ctx["pause_s"])
        fl = [r["floor_us"] for r in cfg["rounds"]["onnxruntime"]]
        cfg["ort_floor_us"] = median(fl) if fl else None
    finally:
        for srv in servers.values():
            srv.close()
    return cfg


# ---------------------------------------------------------------------------------------
# Main

MODEL_SET = ["trigger_mlp", "deepjet", "particlenet", "particle_transformer", "interaction_network",
             "calo_gan", "calo_cnn"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hepml", default=os.path.join(ROOT, "build", "src", "cli", "hepml"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench-work"),
                    help="models, inputs and the quick run's report go here")
    ap.add_argument("--out", help="markdown file whose hep-models block is (re)written "
                                  "(default docs/benchmarks.md; with --quick WORK/benchmarks.md)")
    ap.add_argument("--json", dest="json_out", help="write all raw data here")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: batches 1,16, threads 1, 1 round, short rounds (~1 min)")
    ap.add_argument("--models", help="comma-separated subset of: " + ",".join(MODEL_SET))
    ap.add_argument("--batches", default=None, help="default 1,256 (1,16 with --quick)")
    ap.add_argument("--threads", default=None, help="default 1,2 (1 with --quick)")
    ap.add_argument("--rounds", type=int, default=None, help="default 5 (1 with --quick)")
    ap.add_argument("--round-seconds", type=float, default=None,
                    help="timed work per engine and round (default 0.2; 0.05 with --quick)")
    ap.add_argument("--regenerate", action="store_true", help="regenerate the models even if up to date")
    a = ap.parse_args()
    t_start = time.time()
    rounds = a.rounds or (1 if a.quick else 5)
    round_s = a.round_seconds or (0.05 if a.quick else 0.2)
    threads_list = [int(x) for x in (a.threads or ("1" if a.quick else "1,2")).split(",")]
    batches = [int(x) for x in (a.batches or ("1,16" if a.quick else "1,256")).split(",")]
    work = os.path.abspath(a.work)
    out_md = a.out or (os.path.join(work, "benchmarks.md") if a.quick else os.path.join(ROOT, "docs", "benchmarks.md"))
    if not os.access(a.hepml, os.X_OK):
        sys.exit(f"run_benchmarks: no hepml binary at {a.hepml} (build it: make build, or pass --hepml)")
    hepml = os.path.abspath(a.hepml)
    versions = ensure_peers()
    versions["hepml"] = hepml_version(hepml)
    machine = machine_info()
    log(f"{machine['cpu_model']}, {machine['cpus']} CPU(s); load average {machine['loadavg_start']}")

    models_dir = os.path.join(work, "models")
    os.makedirs(work, exist_ok=True)
    names = a.models.split(",") if a.models else MODEL_SET
    ensure_models(models_dir, names, a.regenerate)
    with open(os.path.join(models_dir, "models.json")) as f:
        manifest = json.load(f)
    known = [m["name"] for m in manifest["models"]]
    bad = [n for n in names if n not in known]
    if bad:
        sys.exit(f"run_benchmarks: unknown model(s) {bad}; the set has {known}")
    input_files = write_inputs(work, manifest, names, batches)
    floor_model, floor_inputs = write_floor_model(work)
    timeout = 600
    phases = {"setup_s": time.time() - t_start}

    # Baselines: the runners loading nothing, 3 of each, interleaved. Only PyTorch's
    # depends on the thread count (OpenBLAS sizes its pool at load).
    baselines = {e: {t: [] for t in threads_list} for e in ENGINES}
    for r in range(3):
        for e in rotated(ENGINES, r):
            for t in (threads_list if e == "pytorch" else threads_list[:1]):
                baselines[e][t].append(baseline_kib(e, hepml, t, (floor_model, floor_inputs)))
    for e in ("hepml", "onnxruntime"):
        for t in threads_list[1:]:
            baselines[e][t] = list(baselines[e][threads_list[0]])
    log("baselines (MiB): " + ", ".join(f"{e} T{t} {median(v) / 1024:.1f}" for e, d in baselines.items()
                                        for t, v in d.items()))

    # hepml's own VmHWM against /usr/bin/time's ru_maxrss on one real run: the two
    # measures must agree for the hepml baseline (taken by /usr/bin/time) to be comparable.
    rss_check = {"hepml_baseline": "/usr/bin/time -f %M hepml --version"}
    if os.access("/usr/bin/time", os.X_OK):
        first = names[0]
        cmd = [hepml, "bench", os.path.join(models_dir, f"{first}.onnx"), "--iterations", "5", "--warmup", "1",
               "--json"] + input_args(input_files[(first, batches[0])])
        tk, p = time_maxrss_kib(cmd)
        rss_check.update({"model": first, "time_maxrss_kib": tk, "hepml_vmhwm_kib":
                          int(round(json.loads(p.stdout)["peak_rss_mib"] * 1024)) if p.returncode == 0 else None})
        log(f"hepml RSS check: /usr/bin/time {tk} KiB, hepml's own VmHWM {rss_check['hepml_vmhwm_kib']} KiB")
    else:
        rss_check["hepml_baseline"] = "no /usr/bin/time: hepml bench on the one-node floor model (an upper bound)"
        log("no /usr/bin/time: hepml's baseline is its VmHWM on the one-node model")

    # hepml's per-call floor on the same one-node model (reported, not subtracted).
    floor_iters = 300 if a.quick else 1000
    hepml_floor = {t: [] for t in threads_list}
    for t in threads_list:
        for r in range(rounds):
            try:
                hepml_floor[t].append(run_hepml(hepml, floor_model, floor_inputs, t, floor_iters, 100, timeout)[0]["p50_us"])
            except RunError as err:
                log(f"hepml floor threads {t}: {err}")
    phases["baselines_s"] = time.time() - t_start - phases["setup_s"]

    ctx = {"models_dir": models_dir, "hepml": hepml, "timeout": timeout, "inputs": input_files,
           "floor_model": floor_model, "round_s": round_s, "rounds": rounds, "pause_s": 0.1,
           "floor_iterations": floor_iters, "rotation": 0}
    configs, rows = [], []
    for name in names:
        for b in batches:
            for t in threads_list:
                cfg = run_config(ctx, name, b, t)
                ctx["rotation"] += 1
                configs.append(cfg)
                row = summarize_config(cfg, cfg["ort_floor_us"], {e: baselines[e][t] for e in ENGINES})
                rows.append(row)
                eng = row["engines"]
                log(f"{name} b{b} t{t} (n={cfg['iterations']}): p50 us hepml {fmt_us(eng['hepml'].get('p50_us'))}, "
                    f"ORT {fmt_us(eng['onnxruntime'].get('p50_us'))} (floor {fmt_us(cfg['ort_floor_us'])}), "
                    f"PyTorch {fmt_us(eng['pytorch'].get('p50_us'))}; hepml/ORT "
                    f"{fmt_ratio(row['ratios']['latency_hepml_over_ort'])} [{time.time() - t_start:.0f} s]")
                for e, msg in cfg["errors"].items():
                    log(f"  {e}: {msg}")

    floors = {str(t): {"onnxruntime": median(v) if (v := [c["ort_floor_us"] for c in configs
                                                           if c["threads"] == t and c["ort_floor_us"] is not None])
                       else None,
                       "hepml": median(hepml_floor[t]) if hepml_floor[t] else None}
              for t in threads_list}
    machine["loadavg_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    argv = [os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)] + sys.argv[1:]
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(shlex.quote(x) for x in [PYTHON] + argv),
        "machine": machine, "versions": versions,
        "settings": {"graph_note": graph_note(manifest, names),
                     "rounds": rounds, "round_seconds": round_s, "threads": threads_list, "batches": batches,
                     "models": names, "quick": a.quick, "floor_iterations": floor_iters, "pause_s": ctx["pause_s"]},
        "baselines_kib": {e: {str(t): v for t, v in d.items()} for e, d in baselines.items()},
        "baselines_mib": {e: median(d[threads_list[0]]) / 1024 for e, d in baselines.items()},
        "hepml_rss_check": rss_check,
        "floors": floors, "hepml_floor_rounds_us": {str(t): v for t, v in hepml_floor.items()},
        "rows": rows, "summary": summary_by_setting(rows),
        "elapsed_s": time.time() - t_start, "phases": phases,
        "configs": configs,
    }
    existing = None
    if os.path.exists(out_md):
        with open(out_md) as f:
            existing = f.read()
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w") as f:
        f.write(replace_block(existing, render_markdown(report)))
    log(f"wrote {out_md}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
        log(f"wrote {a.json_out}")
    for s in report["summary"]:
        log(f"batch {s['batch']} threads {s['threads']}: geomean latency hepml/ORT "
            f"{fmt_ratio(s['latency_hepml_over_ort'])}, throughput hepml/ORT {fmt_ratio(s['throughput_hepml_over_ort'])}, "
            f"RSS hepml/ORT {fmt_ratio(s['rss_hepml_over_ort'])}")
    failed = sum(1 for r in rows for e in ENGINES if "error" in r["engines"][e])
    log(f"done in {time.time() - t_start:.0f} s; {len(rows)} configurations, {failed} engine(s) without results")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
