// ONNX Runtime (onnxruntime-node, CPU) as a peer: shared by the `hepml run`-compatible
// CLI (ort_cli.mjs) and the differential-test runner (tests/differential/run_ort.mjs).
//
// Sessions use one intra-op and one inter-op thread and no graph optimizations, so the
// reference is ORT's plain kernels: no fusions, no constant folding, no cast-chain
// elimination that could hide what a single operator computes.

import * as ort from 'onnxruntime-node';
import { readNpy, writeNpy, NPY_DTYPES } from './npy.mjs';

export { ort };
// ORT's default logger prints every failed session to stderr; errors are reported by
// the callers, so keep the logger for fatal messages only.
ort.env.logLevel = 'fatal';

export const ORT_VERSION = ort.env.versions?.node ?? 'unknown';

export function sessionOptions(threads = 1) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'disabled',
    logSeverityLevel: 4,
  };
}

export function tensorFromNpy(file) {
  const a = readNpy(file);
  return new ort.Tensor(a.dtype, a.data, a.shape);
}

// Same rule as `hepml run --output-dir`: characters outside [A-Za-z0-9._-] become '_'.
export function sanitizeOutputName(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function writeTensor(file, tensor) {
  if (!NPY_DTYPES.includes(tensor.type)) {
    throw new Error(`output type ${tensor.type} has no .npy representation`);
  }
  writeNpy(file, tensor.type, tensor.dims, tensor.data);
}

// feeds: {inputName: npyPath}. Returns {outputName: ort.Tensor} in session order.
export async function runModel(modelPath, feeds, threads = 1) {
  const session = await ort.InferenceSession.create(modelPath, sessionOptions(threads));
  try {
    const inputs = {};
    for (const name of session.inputNames) {
      if (!(name in feeds)) throw new Error(`no input given for graph input '${name}'`);
      inputs[name] = tensorFromNpy(feeds[name]);
    }
    for (const name of Object.keys(feeds)) {
      if (!session.inputNames.includes(name)) throw new Error(`model has no input named '${name}'`);
    }
    const results = await session.run(inputs);
    const ordered = {};
    for (const name of session.outputNames) ordered[name] = results[name];
    return ordered;
  } finally {
    await session.release?.();
  }
}
