// ONNX Runtime (onnxruntime-node, CPU) benchmark runner for bench/run_benchmarks.py.
//
//   node ort_bench.mjs --model M.onnx --input NAME=FILE.npy ... --threads T
//                      --iterations N --warmup W [--max-seconds S] [--floor F.onnx]
//   node ort_bench.mjs --model M.onnx --input ... --threads T [--floor F.onnx] --serve
//   node ort_bench.mjs --baseline
//
// One-shot mode prints one JSON object on stdout:
//   {"engine": "onnxruntime", "version", "threads", "load_ms",
//    "iterations": calls timed, "latencies_us": [per-call wall time of
//    `await session.run(feeds)`], "total_s": wall time of the timed calls,
//    "vmhwm_kib": this process's VmHWM after them,
//    "floor_latencies_us": [...] (with --floor)}
//
// --serve: loads the model, prints {"ready": true, "load_ms", "version"} and then
// answers one JSON line per command line on stdin:
//   run N W S  -> a round: W warm-up calls, N timed calls (the fields above but the
//                 floor); VmHWM is read after the round
//   floor N    -> {"floor_latencies_us": [...]} (needs --floor)
//   quit       -> exits
// so that a driver can interleave rounds of several engines with the model loaded once.
//
// --floor F.onnx: a one-node model whose single float input is fed a 1-element
// tensor; its per-call latency is the binding floor of ORT reached through Node. The
// floor session is created only when first measured, after the model's rounds, so its
// memory is not in the VmHWM reported with them.
//
// --baseline: imports onnxruntime-node, loads no model and prints only
// {"engine", "version", "vmhwm_kib"}, the floor that run_benchmarks.py subtracts.
//
// With S (--max-seconds) the warm-up stops once it took S seconds (after at least one
// call) and the timed loop once it took S seconds (after at least 3 calls), so slow
// configurations stay bounded; "iterations" is the count actually timed.
//
// Unlike ort.mjs (the conformance reference: graph optimizations off, one thread),
// sessions here use ORT's defaults (all graph optimizations) with
// intraOpNumThreads = T and interOpNumThreads = 1, as a user would deploy it.
// Exit status 1 with a message on stderr on any error.

import fs from 'node:fs';
import readline from 'node:readline';
import * as ort from 'onnxruntime-node';
import { readNpy } from './npy.mjs';

ort.env.logLevel = 'fatal';
const VERSION = ort.env.versions?.common ?? ort.env.versions?.node ?? 'unknown';

function vmHwmKib() {
  const m = /VmHWM:\s*(\d+)\s*kB/.exec(fs.readFileSync('/proc/self/status', 'latin1'));
  return m ? Number(m[1]) : 0;
}

function positiveInt(flag, text) {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag} must be a positive integer, got '${text}'`);
  return v;
}

function parseArgs(argv) {
  const a = {
    inputs: {}, threads: 1, iterations: 10, warmup: 2, maxSeconds: Infinity,
    baseline: false, serve: false, model: null, floor: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--baseline') a.baseline = true;
    else if (k === '--serve') a.serve = true;
    else if (k === '--model') a.model = next();
    else if (k === '--floor') a.floor = next();
    else if (k === '--threads') a.threads = positiveInt(k, next());
    else if (k === '--iterations') a.iterations = positiveInt(k, next());
    else if (k === '--warmup') {
      a.warmup = Number(next());
      if (!Number.isInteger(a.warmup) || a.warmup < 0) throw new Error('--warmup must be >= 0');
    } else if (k === '--max-seconds') {
      a.maxSeconds = Number(next());
      if (!(a.maxSeconds > 0)) throw new Error('--max-seconds must be > 0');
    } else if (k === '--input') {
      const spec = next();
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new Error(`--input '${spec}': expected NAME=FILE.npy`);
      a.inputs[spec.slice(0, eq)] = spec.slice(eq + 1);
    } else throw new Error(`unknown argument '${k}'`);
  }
  if (!a.baseline && !a.model) throw new Error('--model is required (or --baseline)');
  return a;
}

function sessionOptions(threads) {
  return { intraOpNumThreads: threads, interOpNumThreads: 1 };
}

async function timedRound(session, feeds, iterations, warmup, maxSeconds) {
  const limitNs = BigInt(Math.round(Math.min(maxSeconds, 1e6) * 1e9));
  const warmStart = process.hrtime.bigint();
  for (let i = 0; i < warmup; i++) {
    await session.run(feeds);
    if (process.hrtime.bigint() - warmStart > limitNs) break;
  }
  const latencies = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    const e = process.hrtime.bigint();
    latencies.push(Number(e - s) / 1e3);
    if (latencies.length >= 3 && e - start > limitNs) break;
  }
  const totalS = Number(process.hrtime.bigint() - start) / 1e9;
  return { iterations: latencies.length, latencies_us: latencies, total_s: totalS, vmhwm_kib: vmHwmKib() };
}

class Floor {
  constructor(path, threads) { this.path = path; this.threads = threads; this.session = null; }

  async measure(iterations) {
    if (!this.path) throw new Error('no --floor model given');
    if (!this.session) {
      this.session = await ort.InferenceSession.create(this.path, sessionOptions(this.threads));
      const name = this.session.inputNames[0];
      this.feeds = { [name]: new ort.Tensor('float32', Float32Array.from([1]), [1]) };
    }
    const r = await timedRound(this.session, this.feeds, iterations, Math.min(100, iterations), Infinity);
    return r.latencies_us;
  }
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.baseline) {
    process.stdout.write(JSON.stringify({ engine: 'onnxruntime', version: VERSION, vmhwm_kib: vmHwmKib() }) + '\n');
    return;
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(a.model, sessionOptions(a.threads));
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = {};
  for (const name of session.inputNames) {
    if (!(name in a.inputs)) throw new Error(`no --input given for graph input '${name}'`);
    const t = readNpy(a.inputs[name]);
    feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
  }
  for (const name of Object.keys(a.inputs)) {
    if (!session.inputNames.includes(name)) throw new Error(`model has no input named '${name}'`);
  }
  const floor = new Floor(a.floor, a.threads);
  const base = { engine: 'onnxruntime', version: VERSION, threads: a.threads, load_ms: loadMs };

  if (!a.serve) {
    const r = await timedRound(session, feeds, a.iterations, a.warmup, a.maxSeconds);
    const out = { ...base, ...r };
    if (a.floor) out.floor_latencies_us = await floor.measure(1000);
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }

  process.stdout.write(JSON.stringify({ ready: true, ...base }) + '\n');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    const [cmd, ...rest] = line.trim().split(/\s+/);
    if (cmd === '' || cmd === undefined) continue;
    if (cmd === 'quit') break;
    if (cmd === 'run') {
      const n = positiveInt('run N', rest[0]);
      const w = Number(rest[1] ?? 0);
      const s = rest[2] !== undefined ? Number(rest[2]) : Infinity;
      const r = await timedRound(session, feeds, n, w, s);
      process.stdout.write(JSON.stringify({ ...base, ...r }) + '\n');
    } else if (cmd === 'floor') {
      const lat = await floor.measure(positiveInt('floor N', rest[0]));
      process.stdout.write(JSON.stringify({ floor_latencies_us: lat }) + '\n');
    } else {
      throw new Error(`unknown command '${line.trim()}'`);
    }
  }
  rl.close();
}

main().then(() => process.exit(0)).catch((e) => {
  process.stderr.write(`ort_bench: ${e.message ?? e}\n`);
  process.exit(1);
});
