// `hepml registry serve` driven by a real, third-party MLflow REST client: the
// npm package `mlflow` (2.0.7, github.com/Yuhsak/mlflow, installed into
// tests/registry/mlflow_client by scripts/install-deps.sh).
//
// Starts the real server on a free loopback port over a temporary registry,
// then logs a training run the way the client's README documents (experiment,
// runs, params, metrics with steps and timestamps, metric history, batch,
// tags, status and end time, get, search with MLflow filter strings, artifact
// listing, tag removal, experiment rename) and registers a model from the run. Every value read back is
// compared with what was logged.
//
// The npm client covers MLflow's tracking API only. The model registry calls
// (registered models, versions, aliases) go through small subclasses of the
// client's own MLflowBase, exactly as its Runs and Experiments classes are
// written (same transport, headers and error handling). The client has no
// artifact upload, so the model file is PUT to MLflow's artifact proxy with
// fetch, as MLflow's Python client does.
//
// Usage: node check_mlflow_client.mjs --hepml PATH/TO/hepml
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const CLIENT_DIR = path.join(HERE, 'mlflow_client');

function loadClient() {
  const require = createRequire(path.join(CLIENT_DIR, 'package.json'));
  try {
    return { MLflow: require('mlflow'), enums: require('mlflow/enum'), MLflowBase: require('mlflow/lib/mlflow').MLflowBase };
  } catch (e) {
    if (e?.code !== 'MODULE_NOT_FOUND') throw e;
    console.error(`check_mlflow_client: the npm package mlflow is not installed (${e.message.split('\n')[0]});\n`
      + '  run `bash scripts/install-deps.sh` (or `npm install --ignore-scripts` in tests/registry/mlflow_client)');
    process.exit(1);
  }
}

const { MLflow, enums, MLflowBase } = loadClient();
const { ViewType, RunStatus } = enums;

// The client prints every JSON body it posts (console.log in MLflowBase.req);
// progress goes to stderr instead.
console.log = () => {};
const say = (...a) => console.error(...a);

let failures = 0;
function check(cond, what, detail) {
  if (!cond) {
    failures++;
    say(`FAIL ${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}
function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  check(g === w, what, `got ${g}, wanted ${w}`);
}

// What the client throws for a non-200 answer: Error("Error: {status, statusText, data}").
async function expectError(promise, status, errorCode, needle, what) {
  try {
    await promise;
    check(false, what, 'the call succeeded');
  } catch (e) {
    const m = /\{.*\}/s.exec(String(e.message));
    const parsed = m ? JSON.parse(m[0]) : null;
    check(parsed && parsed.status === status, `${what}: HTTP status`, parsed ?? String(e));
    if (!parsed) return;
    check(parsed.data?.error_code === errorCode, `${what}: error_code`, parsed.data);
    check(typeof parsed.data?.message === 'string' && parsed.data.message.includes(needle), `${what}: message names '${needle}'`, parsed.data);
  }
}

// The model registry part of MLflow's REST API, written the way the client
// writes its own endpoint classes.
class RegisteredModels extends MLflowBase {
  constructor(args) { super(args); this.path = '/registered-models'; }
  create({ name, description, tags }) { return this.req('post', '/create', { name, description, tags }); }
  get({ name }) { return this.req('get', '/get', { name }); }
  search({ filter, max_results, order_by, page_token } = {}) {
    return this.req('get', '/search', { filter, max_results, order_by, page_token });
  }
  setAlias({ name, alias, version }) { return this.req('post', '/alias', { name, alias, version }); }
  getByAlias({ name, alias }) { return this.req('get', '/alias', { name, alias }); }
}
class ModelVersions extends MLflowBase {
  constructor(args) { super(args); this.path = '/model-versions'; }
  create({ name, source, run_id, tags, description }) {
    return this.req('post', '/create', { name, source, run_id, tags, description });
  }
  get({ name, version }) { return this.req('get', '/get', { name, version }); }
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--hepml') out.hepml = argv[++i];
  }
  if (!out.hepml) {
    console.error('usage: check_mlflow_client.mjs --hepml PATH');
    process.exit(2);
  }
  return out;
}

// `hepml registry serve --port 0` prints its address on the first line.
async function startServer(hepml, registry, sourceRoot) {
  const env = { ...process.env };
  delete env.HEPML_REGISTRY;
  execFileSync(hepml, ['registry', '--registry', registry, 'init'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const proc = spawn(hepml, ['registry', '--registry', registry, 'serve', '--port', '0', '--source-root', sourceRoot],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const line = await new Promise((resolve) => {
    const rl = readline.createInterface({ input: proc.stdout });
    const timer = setTimeout(() => resolve(''), 60000);
    rl.once('line', (l) => { clearTimeout(timer); resolve(l); });
    proc.once('exit', () => { clearTimeout(timer); resolve(''); });
  });
  const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
  if (!m) {
    proc.kill('SIGKILL');
    throw new Error(`hepml registry serve did not start: ${JSON.stringify(line)} ${stderr}`);
  }
  return { proc, endpoint: `http://127.0.0.1:${m[1]}`, stderr: () => stderr };
}

async function stopServer(server) {
  if (server.proc.exitCode !== null) return server.proc.exitCode;
  const done = new Promise((resolve) => server.proc.once('exit', (code) => resolve(code)));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 30000);
  const code = await done;
  clearTimeout(timer);
  return code;
}

const byKey = (list) => Object.fromEntries((list ?? []).map((kv) => [kv.key, kv.value]));
const latest = (run, key) => run.data.metrics.find((m) => m.key === key);

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hepml-mlflow-'));
  const sourceRoot = path.join(tmp, 'sources');
  fs.mkdirSync(sourceRoot);
  const server = await startServer(args.hepml, path.join(tmp, 'registry'), sourceRoot);
  try {
    await scenario(server.endpoint);
  } finally {
    const code = await stopServer(server);
    check(code === 0, 'the server exits 0 on SIGTERM', `exit ${code}; ${server.stderr()}`);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failures) {
    say(`check_mlflow_client: ${failures} failure(s)`);
    process.exit(1);
  }
  say('check_mlflow_client: ok');
}

async function scenario(endpoint) {
  const client = new MLflow({ endpoint });
  const { Experiments, Runs, Metrics, Artifacts } = client;
  const models = new RegisteredModels({ endpoint });
  const versions = new ModelVersions({ endpoint });

  // Experiments.
  say('experiments');
  const { experiment_id: exp } = await Experiments.create({ name: 'jet-tagging' });
  check(typeof exp === 'string' && /^[1-9][0-9]*$/.test(exp), 'experiments/create returns a decimal string id', exp);
  const { experiment } = await Experiments.get({ experiment_id: exp });
  eq([experiment.experiment_id, experiment.name, experiment.lifecycle_stage], [exp, 'jet-tagging', 'active'],
    'experiments/get');
  const { experiments } = await Experiments.list({ view_type: ViewType.ACTIVE_ONLY });
  eq(experiments.map((e) => e.name).sort(), ['Default', 'jet-tagging'], 'experiments/list names');
  const { experiment_id: scratch } = await Experiments.create({ name: 'scratch' });
  await Experiments.update({ experiment_id: scratch, new_name: 'scratch-renamed' });
  eq((await Experiments.get({ experiment_id: scratch })).experiment.name, 'scratch-renamed', 'experiments/update renames');
  eq((await Experiments.list()).experiments.map((e) => e.name).sort(), ['Default', 'jet-tagging', 'scratch-renamed'],
    'experiments/list after a rename');
  await expectError(Experiments.update({ experiment_id: scratch, new_name: 'jet-tagging' }), 409,
    'RESOURCE_ALREADY_EXISTS', 'jet-tagging', 'experiments/update to a taken name');
  await expectError(Experiments.create({ name: 'jet-tagging' }), 409, 'RESOURCE_ALREADY_EXISTS', 'jet-tagging',
    'experiments/create of an existing name');
  await expectError(Experiments.get({ experiment_id: '9999' }), 404, 'RESOURCE_DOES_NOT_EXIST', '9999',
    'experiments/get of an unknown id');

  // A run, as the client creates one: no run_name field, the name as the
  // mlflow.runName tag, the client's own start time.
  say('runs');
  const t0 = Date.now() - 3600 * 1000;
  const { run: created } = await Runs.create({
    experiment_id: exp, start_time: t0,
    tags: [{ key: 'mlflow.runName', value: 'btag-train' }, { key: 'team', value: 'btag' }],
  });
  const runId = created.info.run_id;
  check(typeof runId === 'string' && runId.length > 0, 'runs/create returns run_id', created.info);
  eq(created.info.run_uuid, runId, 'run_uuid equals run_id');
  eq([created.info.experiment_id, created.info.status, created.info.start_time, created.info.run_name,
    created.info.lifecycle_stage], [exp, 'RUNNING', t0, 'btag-train', 'active'], 'runs/create info');
  eq(byKey(created.data.tags), { 'mlflow.runName': 'btag-train', team: 'btag' }, 'runs/create tags');

  await Runs.logParameter({ run_id: runId, key: 'lr', value: '0.001' });
  await Runs.logParameter({ run_id: runId, key: 'epochs', value: '30' });
  // Logging the same value again is accepted (MLflow's rule); another value is not.
  await Runs.logParameter({ run_id: runId, key: 'lr', value: '0.001' });
  await expectError(Runs.logParameter({ run_id: runId, key: 'lr', value: '0.1' }), 400, 'INVALID_PARAMETER_VALUE',
    "'lr'", 'runs/log-parameter changing a value');

  const losses = [0.9, 0.5, 0.3125];
  for (let step = 0; step < losses.length; step++) {
    await Runs.logMetric({ run_id: runId, key: 'loss', value: losses[step], timestamp: t0 + 1000 * (step + 1), step });
  }
  const { metrics: history } = await Metrics.getHistory({ run_id: runId, metric_key: 'loss' });
  eq(history.map((m) => [m.key, m.value, m.step, m.timestamp]),
    losses.map((v, step) => ['loss', v, step, t0 + 1000 * (step + 1)]), 'metrics/get-history of loss');
  const { metrics: none } = await Metrics.getHistory({ run_id: runId, metric_key: 'no-such-metric' });
  eq(none ?? [], [], 'metrics/get-history of a metric never logged');

  await Runs.logBatch({
    run_id: runId,
    metrics: [{ key: 'auc', value: 0.931, timestamp: t0 + 5000, step: 0 },
      { key: 'auc', value: 0.947, timestamp: t0 + 6000, step: 1 }],
    params: [{ key: 'batch_size', value: '256' }],
    tags: [{ key: 'stage', value: 'train' }],
  });
  await Runs.setTag({ run_id: runId, key: 'note', value: 'first try' });
  await Runs.setTag({ run_id: runId, key: 'stage', value: 'validated' });  // replaced
  await Runs.setTag({ run_id: runId, key: 'scratch', value: 'x' });
  await Runs.deleteTag({ run_id: runId, key: 'scratch' });
  await expectError(Runs.deleteTag({ run_id: runId, key: 'scratch' }), 404, 'RESOURCE_DOES_NOT_EXIST', "'scratch'",
    'runs/delete-tag of a tag the run no longer has');

  // An artifact through MLflow's artifact proxy (the run's artifact_uri),
  // listed by the client.
  say('artifacts');
  const model = fs.readFileSync(path.join(ROOT, 'examples', 'models', 'trigger_mlp.onnx'));
  const proxyPath = created.info.artifact_uri.replace(/^mlflow-artifacts:/, '');
  const put = await fetch(`${endpoint}/api/2.0/mlflow-artifacts/artifacts${proxyPath}/model/model.onnx`,
    { method: 'PUT', body: model });
  check(put.status === 200, 'artifact upload through the proxy', `${put.status} ${await put.text()}`);
  const top = await Artifacts.list({ run_id: runId });
  eq(top.files, [{ path: 'model', is_dir: true }], 'artifacts/list of the root');
  eq(top.root_uri, created.info.artifact_uri, 'artifacts/list root_uri');
  const inner = await Artifacts.list({ run_id: runId, path: 'model' });
  eq(inner.files, [{ path: 'model/model.onnx', is_dir: false, file_size: model.length }], 'artifacts/list of model/');

  const { run } = await Runs.get({ run_id: runId });
  eq(byKey(run.data.params), { batch_size: '256', epochs: '30', lr: '0.001' }, 'runs/get params');
  eq(byKey(run.data.tags), { 'mlflow.runName': 'btag-train', note: 'first try', stage: 'validated', team: 'btag' },
    'runs/get tags');
  const loss = latest(run, 'loss');
  const auc = latest(run, 'auc');
  eq([loss?.value, loss?.step, loss?.timestamp], [0.3125, 2, t0 + 3000], 'runs/get latest loss');
  eq([auc?.value, auc?.step, auc?.timestamp], [0.947, 1, t0 + 6000], 'runs/get latest auc');
  eq(run.data.metrics.length, 2, 'runs/get: one latest value per metric');

  // The run ends with the client's end time.
  const tEnd = t0 + 60000;
  const { run_info: ended } = await Runs.update({ run_id: runId, status: RunStatus.FINISHED, end_time: tEnd });
  eq([ended.run_id, ended.status, ended.end_time], [runId, 'FINISHED', tEnd], 'runs/update');
  const { run: after } = await Runs.get({ run_id: runId });
  eq([after.info.status, after.info.start_time, after.info.end_time], ['FINISHED', t0, tEnd], 'runs/get after update');
  await expectError(Runs.logMetric({ run_id: runId, key: 'loss', value: 0.1, timestamp: tEnd, step: 3 }), 409,
    'INVALID_STATE', 'ended', 'runs/log-metric on an ended run');
  await Runs.setTag({ run_id: runId, key: 'reviewed', value: 'yes' });  // tags stay settable

  // A second run, left running, for search.
  const { run: second } = await Runs.create({ experiment_id: exp, start_time: t0 + 1,
    tags: [{ key: 'mlflow.runName', value: 'btag-lr-scan' }, { key: 'team', value: 'btag' }] });
  const run2 = second.info.run_id;
  await Runs.logBatch({ run_id: run2, params: [{ key: 'lr', value: '0.01' }],
    metrics: [{ key: 'auc', value: 0.88, timestamp: t0 + 7000, step: 0 }] });

  say('search');
  const search = async (filter) => {
    const { runs } = await Runs.search({ experiment_ids: [exp], filter, run_view_type: ViewType.ACTIVE_ONLY });
    return (runs ?? []).map((r) => r.info.run_id);
  };
  eq(await search(undefined), [run2, runId], 'runs/search: the experiment, newest first');
  eq(await search("params.lr = '0.001'"), [runId], 'runs/search params.lr = 0.001');
  eq(await search("params.lr != '0.001'"), [run2], 'runs/search params.lr != 0.001');
  eq(await search('metrics.auc > 0.9'), [runId], 'runs/search metrics.auc > 0.9');
  eq(await search('metrics.auc <= 0.9'), [run2], 'runs/search metrics.auc <= 0.9');
  eq(await search("metrics.auc >= 0.5 AND params.lr = '0.01'"), [run2], 'runs/search with AND');
  eq(await search("attributes.status = 'FINISHED'"), [runId], 'runs/search attributes.status');
  eq(await search("tags.team = 'btag' and tags.stage = 'validated'"), [runId], 'runs/search tags');
  eq(await search("tags.`mlflow.runName` LIKE 'btag-%'"), [run2, runId], 'runs/search LIKE on a backquoted tag');
  eq(await search("attributes.run_name = 'btag-lr-scan'"), [run2], 'runs/search run_name');
  eq(await search("params.missing = 'x'"), [], 'runs/search on a param no run has');
  const { runs: deleted } = await Runs.search({ experiment_ids: [exp], run_view_type: ViewType.DELETED_ONLY });
  eq(deleted ?? [], [], 'runs/search DELETED_ONLY: no run is deleted');
  eq(((await Runs.search({ experiment_ids: [exp], run_view_type: ViewType.ALL })).runs ?? []).length, 2,
    'runs/search ALL');
  eq((await Experiments.list({ view_type: ViewType.DELETED_ONLY })).experiments ?? [], [],
    'experiments/list DELETED_ONLY');
  const { runs: page } = await Runs.search({ experiment_ids: [exp], max_results: 1 });
  eq(page.map((r) => r.info.run_id), [run2], 'runs/search max_results');
  await expectError(Runs.search({ experiment_ids: [exp], filter: 'metrics.auc >> 1' }), 400,
    'INVALID_PARAMETER_VALUE', 'metrics.auc >> 1', 'runs/search with a malformed filter');
  await expectError(Runs.get({ run_id: '987654' }), 404, 'RESOURCE_DOES_NOT_EXIST', '987654', 'runs/get of an unknown run');

  // The model registry: a model, a version from the run's artifacts, an alias.
  say('registered models');
  const { registered_model: rm } = await models.create({ name: 'btag', description: 'jet flavour tagger' });
  eq([rm.name, rm.description, rm.latest_versions], ['btag', 'jet flavour tagger', []], 'registered-models/create');
  const { model_version: mv } = await versions.create({ name: 'btag', source: `runs:/${runId}/model`, run_id: runId });
  eq([mv.name, mv.version, mv.run_id, mv.status, mv.current_stage], ['btag', '1', runId, 'READY', 'None'],
    'model-versions/create');
  const { model_version: got } = await versions.get({ name: 'btag', version: '1' });
  eq([got.name, got.version, got.run_id, got.creation_timestamp], ['btag', '1', runId, mv.creation_timestamp],
    'model-versions/get');
  // The version's files are the run's artifact, byte for byte.
  const file = await fetch(`${endpoint}${got.source}`);
  check(file.status === 200 && Buffer.from(await file.arrayBuffer()).equals(model),
    'the version source downloads the logged model file', got.source);

  await models.setAlias({ name: 'btag', alias: 'champion', version: '1' });
  const { model_version: champion } = await models.getByAlias({ name: 'btag', alias: 'champion' });
  eq([champion.version, champion.aliases], ['1', ['champion']], 'registered-models/alias get');
  const { registered_model: rm2 } = await models.get({ name: 'btag' });
  eq(rm2.aliases, [{ alias: 'champion', version: '1' }], 'registered-models/get aliases');
  eq(rm2.latest_versions.map((v) => [v.version, v.run_id]), [['1', runId]], 'registered-models/get latest_versions');

  await models.create({ name: 'trigger-mlp' });
  const names = async (filter) => ((await models.search({ filter })).registered_models ?? []).map((m) => m.name);
  eq(await names(undefined), ['btag', 'trigger-mlp'], 'registered-models/search');
  eq(await names("name = 'btag'"), ['btag'], "registered-models/search name = 'btag'");
  eq(await names("name LIKE 'trig%'"), ['trigger-mlp'], 'registered-models/search LIKE');
  eq(await names("name LIKE 'zz%'"), [], 'registered-models/search with no match');
  await expectError(versions.get({ name: 'btag', version: '7' }), 404, 'RESOURCE_DOES_NOT_EXIST', 'btag',
    'model-versions/get of an unknown version');
}

main().catch((e) => {
  console.error(`check_mlflow_client: ${e.stack ?? e}`);
  process.exit(1);
});
