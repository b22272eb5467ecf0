#!/usr/bin/env node
// Runs every differential case under CASES with ONNX Runtime (onnxruntime-node, CPU, one
// thread, graph optimizations off) and writes CASES/<case>/expected_<K>.npy per output.
//
//   node tests/differential/run_ort.mjs --cases DIR [--filter REGEX]
//
// Needs `npm install --ignore-scripts` in bench/peers/ (onnxruntime-node lives there).
//
// Cases ORT cannot run are never dropped silently:
//  - with no reference in the case: the case is skipped; CASES/ort_skips.json and
//    CASES/ort_skips.txt give ORT's message for each;
//  - with reference_<K>.npy written by gen_cases.py (an answer known exactly, e.g. the
//    pixels of a generated PNG): the reference becomes expected_<K>.npy and the case is
//    listed as "reference" in the results.
// Where ORT runs a case that has references, they must agree (a mismatch is a warning),
// except in a case marked `ort_deviation` in case.json (a documented place where ORT
// departs from the ONNX spec): there the reference, the spec's answer, is expected.
// CASES/ort_results.json records, per case, status ("ort" | "reference" | "skipped"),
// reason and ORT version. Exit status 0 unless the run itself failed (bad folder: 2,
// other errors: 1); 77 when onnxruntime-node is not installed in bench/peers/.

import fs from 'node:fs';
import path from 'node:path';
import { readNpy } from '../../bench/peers/npy.mjs';

// Exit status when onnxruntime-node is not installed (CTest's SKIP_RETURN_CODE).
const EXIT_NO_ORT = 77;
let runModel; let writeTensor; let ORT_VERSION;

function parseArgs(argv) {
  const args = { cases: null, filter: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cases') args.cases = argv[++i];
    else if (argv[i] === '--filter') args.filter = new RegExp(argv[++i]);
    else { console.error(`run_ort: unknown argument ${argv[i]}`); process.exit(2); }
  }
  if (!args.cases) { console.error('usage: run_ort.mjs --cases DIR [--filter REGEX]'); process.exit(2); }
  return args;
}

// ORT's messages carry the model path and a source location; keep the part that says why.
function shortReason(e) {
  let msg = String(e?.message ?? e).replace(/\s+/g, ' ').trim();
  msg = msg.replace(/^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : /, '');
  // Drop ORT's source locations and C++ signatures ("/onnxruntime_src/...h:233 void
  // onnxruntime::Foo<...>::Bar(...) [with ...]"), leaving the message.
  msg = msg.replace(/\/onnxruntime_src\/\S+:\d+ /g, '').replace(/ ?\[with [^\]]*\]/g, '');
  msg = msg.replace(/(?:[\w:]+ )?onnxruntime::[^(\s]*\([^)]*\)(?: const)? ?/g, '');
  return msg.length > 400 ? `${msg.slice(0, 400)}...` : msg;
}

// Exact comparison of two .npy files (NaN equals NaN); returns null or what differs.
function sameNpy(fileA, fileB) {
  const a = readNpy(fileA); const b = readNpy(fileB);
  if (a.dtype !== b.dtype) return `dtype ${a.dtype} vs ${b.dtype}`;
  if (a.shape.join(',') !== b.shape.join(',')) return `shape [${a.shape}] vs [${b.shape}]`;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i]; const y = b.data[i];
    if (x !== y && !(Number.isNaN(x) && Number.isNaN(y))) return `element ${i}: ${x} vs ${y}`;
  }
  return null;
}

async function runCase(dir, meta) {
  const feeds = {};
  for (const inp of meta.inputs) feeds[inp.name] = path.join(dir, inp.file);
  const outputs = await runModel(path.join(dir, 'model.onnx'), feeds, 1);
  const names = Object.keys(outputs);
  const declared = meta.outputs.map((o) => o.name);
  if (names.join('\n') !== declared.join('\n')) {
    throw new Error(`ORT outputs [${names}] differ from the case's [${declared}]`);
  }
  meta.outputs.forEach((o) => writeTensor(path.join(dir, o.file), outputs[o.name]));
}

async function loadOrt() {
  try {
    ({ runModel, writeTensor, ORT_VERSION } = await import('../../bench/peers/ort.mjs'));
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.error(`run_ort: onnxruntime-node is not installed (${e.message}); `
      + 'run `npm install --ignore-scripts` in bench/peers/');
    process.exit(EXIT_NO_ORT);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  await loadOrt();
  const root = args.cases;
  const names = fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, 'case.json'))).sort();
  if (names.length === 0) { console.error(`run_ort: no cases under ${root}`); process.exit(2); }
  const results = {};
  let nOrt = 0; let nRef = 0; const skips = []; const refMismatches = [];
  const deviations = []; const fixed = [];
  for (const name of names) {
    if (args.filter && !args.filter.test(name)) continue;
    const dir = path.join(root, name);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
    for (const o of meta.outputs) fs.rmSync(path.join(dir, o.file), { force: true });
    try {
      await runCase(dir, meta);
      results[name] = { status: 'ort', op: `${meta.op}-${meta.since}` };
      nOrt++;
      // Where the generator also knows the exact answer, ORT must agree with it.
      const diffs = [];
      for (const o of meta.outputs.filter((x) => x.reference)) {
        const diff = sameNpy(path.join(dir, o.file), path.join(dir, o.reference));
        if (diff) diffs.push(`${o.name}: ${diff}`);
      }
      if (diffs.length && meta.ort_deviation) {
        // A documented place where ORT departs from the ONNX spec: the spec's answer,
        // computed by gen_cases.py, is expected instead of ORT's.
        for (const o of meta.outputs) fs.copyFileSync(path.join(dir, o.reference), path.join(dir, o.file));
        results[name] = { status: 'reference', op: `${meta.op}-${meta.since}`,
          reason: `ORT deviates from the ONNX spec (${meta.ort_deviation}); ORT vs spec: ${diffs.join('; ')}` };
        nOrt--; nRef++; deviations.push(`${name}: ${diffs.join('; ')}`);
      } else if (diffs.length) {
        results[name].reference_mismatch = diffs.join('; ');
        for (const d of diffs) refMismatches.push(`${name} ${d.replace(': ', ': ORT vs reference: ')}`);
      } else if (meta.outputs.some((x) => x.reference)) {
        results[name].reference_checked = true;
        if (meta.ort_deviation) fixed.push(name);
      }
    } catch (e) {
      const reason = shortReason(e);
      for (const o of meta.outputs) fs.rmSync(path.join(dir, o.file), { force: true });
      if (meta.outputs.every((o) => o.reference)) {
        for (const o of meta.outputs) fs.copyFileSync(path.join(dir, o.reference), path.join(dir, o.file));
        results[name] = { status: 'reference', op: `${meta.op}-${meta.since}`, reason: `ORT: ${reason}` };
        nRef++;
      } else {
        results[name] = { status: 'skipped', op: `${meta.op}-${meta.since}`, reason: `ORT: ${reason}` };
        skips.push({ case: name, op: `${meta.op}-${meta.since}`, reason: `ORT: ${reason}` });
      }
    }
  }
  fs.writeFileSync(path.join(root, 'ort_results.json'),
    JSON.stringify({ ort_version: ORT_VERSION, cases: results }, null, 1));
  fs.writeFileSync(path.join(root, 'ort_skips.json'), JSON.stringify(skips, null, 1));
  const lines = [`# Cases ONNX Runtime ${ORT_VERSION} (onnxruntime-node CPU) could not run; no expected outputs.`];
  for (const s of skips) lines.push(`${s.case}\t${s.reason}`);
  fs.writeFileSync(path.join(root, 'ort_skips.txt'), `${lines.join('\n')}\n`);
  for (const s of skips) console.log(`skip ${s.case}: ${s.reason}`);
  for (const [n, r] of Object.entries(results)) {
    if (r.status === 'reference') console.log(`reference ${n}: ${r.reason}`);
  }
  for (const d of deviations) console.log(`ORT deviates from the spec (reference expected) ${d}`);
  for (const n of fixed) console.log(`NOTE ${n}: ORT now agrees with the spec; drop the case's ort_deviation`);
  for (const m of refMismatches) console.log(`WARNING reference mismatch ${m}`);
  const nChecked = Object.values(results).filter((r) => r.reference_checked).length;
  console.log(`run_ort: ORT ${ORT_VERSION}: ${nOrt} cases run (${nChecked} also matched exact references, `
    + `${refMismatches.length} did not), ${nRef} from exact references (${deviations.length} where ORT `
    + `deviates from the spec), ${skips.length} skipped`);
}

main().catch((e) => { console.error(`run_ort: ${e.stack ?? e}`); process.exit(1); });
