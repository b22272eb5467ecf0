#!/usr/bin/env node
// ONNX Runtime behind the `hepml run` command-line contract, so the model and
// differential checkers can be pointed at ORT (to check the checkers and the
// reference data) exactly as they are pointed at hepml:
//
//   node bench/peers/ort_cli.mjs run MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR
//                                 [--threads N]
//
// Writes DIR/<output name>.npy per graph output (name sanitized to [A-Za-z0-9._-]).
// Exit status 0 on success, 1 on any error (message on stderr).

import fs from 'node:fs';
import path from 'node:path';
import { runModel, sanitizeOutputName, writeTensor } from './ort.mjs';

function usage(msg) {
  if (msg) console.error(`ort_cli: ${msg}`);
  console.error('usage: ort_cli.mjs run MODEL.onnx --input NAME=FILE.npy ... --output-dir DIR [--threads N]');
  process.exit(2);
}

async function main(argv) {
  if (argv[0] !== 'run') usage(`unknown command '${argv[0] ?? ''}'`);
  let model; let outDir; let threads = 1; const feeds = {};
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const value = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--input') {
      const v = value(); const eq = v.indexOf('=');
      if (eq <= 0) usage(`--input expects NAME=FILE, got '${v}'`);
      feeds[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (a === '--output-dir') outDir = value();
    else if (a === '--threads') threads = Number.parseInt(value(), 10);
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (!model) model = a;
    else usage(`unexpected argument '${a}'`);
  }
  if (!model || !outDir) usage('MODEL and --output-dir are required');
  const outputs = await runModel(model, feeds, threads);
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, tensor] of Object.entries(outputs)) {
    writeTensor(path.join(outDir, `${sanitizeOutputName(name)}.npy`), tensor);
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`ort_cli: ${e.message ?? e}`);
  process.exit(1);
});
