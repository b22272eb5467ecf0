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
  update({ name, description }) { return this.req('PATCH', '/update', { name, description }); }
  rename({ name, new_name }) { return this.req('post', '/rename', { name, new_name }); }
  delete({ name }) { return this.req('delete', '/delete', { name }); }
  getLatestVersions({ name, stages }) { return this.req('post', '/get-latest-versions', { name, stages }); }
}
class ModelVersions extends MLflowBase {
  constructor(args) { super(args); this.path = '/model-versions'; }
  create({ name, source, run_id, tags, description }) {
    return this.req('post', '/create', { name, source, run_id, tags, description });
  }
  get({ name, version }) { return this.req('get', '/get', { name, version }); }
  search({ filter, max_results, order_by, page_token } = {}) {
    return this.req('get', '/search', { filter, max_results, order_by, page_token });
  }
  update({ name, version, description }) { return this.req('PATCH', '/update', { name, version, description }); }
  transitionStage({ name, version, stage, archive_existing_versions }) {
    return this.req('post', '/transition-stage', { name, version, stage, archive_existing_versions });
  }
  delete({ name, version }) { return this.req('delete', '/delete', { name, version }); }
  setTag({ name, version, key, value }) { return this.req('post', '/set-tag', { name, version, key, value }); }
  deleteTag({ name, version, key }) { return this.req('delete', '/delete-tag', { name, version, key }); }
}
// Experiment calls the client lacks (search, get-by-name) or sends to a
// wrong path (its setExperimentTag omits the '/' before set-experiment-tag).
class ExperimentsMore extends MLflowBase {
  constructor(args) { super(args); this.path = '/experiments'; }
  search({ filter, view_type, max_results, order_by, page_token } = {}) {
    return this.req('post', '/search', { filter, view_type, max_results, order_by, page_token });
  }
  getByName({ experiment_name }) { return this.req('get', '/get-by-name', { experiment_name }); }
  setTag({ experiment_id, key, value }) { return this.req('post', '/set-experiment-tag', { experiment_id, key, value }); }
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

  await lifecycle(endpoint, { exp, scratch, runId, run2, t0 });
}

const runIds = (answer) => (answer.runs ?? []).map((r) => r.info.run_id);

// Follows next_page_token from the first page to the last; returns every
// page's items (by `key`) and the number of pages.
async function allPages(call, key) {
  const items = [];
  let token;
  let pages = 0;
  do {
    const answer = await call(token);
    pages++;
    items.push(...(answer[key] ?? []));
    token = answer.next_page_token;
    if (pages > 100) throw new Error(`${key}: more than 100 pages`);
  } while (token);
  return { items, pages };
}

// Deletion and restore of runs and experiments, experiment tags, order_by
// and page tokens, model-version stages, descriptions, tags and the
// registered-model updates.
async function lifecycle(endpoint, { exp, scratch, runId, run2, t0 }) {
  const client = new MLflow({ endpoint });
  const { Experiments, Runs } = client;
  const experiments = new ExperimentsMore({ endpoint });
  const models = new RegisteredModels({ endpoint });
  const versions = new ModelVersions({ endpoint });

  say('run delete and restore');
  const active = async () => runIds(await Runs.search({ experiment_ids: [exp] }));
  await Runs.delete({ run_id: run2 });
  const { run: gone } = await Runs.get({ run_id: run2 });
  eq([gone.info.run_id, gone.info.lifecycle_stage], [run2, 'deleted'], 'runs/get of a deleted run');
  eq(await active(), [runId], 'runs/search ACTIVE_ONLY leaves the deleted run out');
  eq(runIds(await Runs.search({ experiment_ids: [exp], run_view_type: ViewType.DELETED_ONLY })), [run2],
    'runs/search DELETED_ONLY');
  eq(runIds(await Runs.search({ experiment_ids: [exp], run_view_type: ViewType.ALL })), [run2, runId],
    'runs/search ALL');
  await expectError(Runs.logBatch({ run_id: run2, params: [{ key: 'epochs', value: '5' }] }), 409, 'INVALID_STATE',
    'deleted', 'runs/log-batch on a deleted run');
  await expectError(Runs.delete({ run_id: run2 }), 409, 'INVALID_STATE', 'already deleted', 'runs/delete twice');
  await Runs.restore({ run_id: run2 });
  eq((await Runs.get({ run_id: run2 })).run.info.lifecycle_stage, 'active', 'runs/get after runs/restore');
  eq(await active(), [run2, runId], 'runs/search after runs/restore');
  await expectError(Runs.restore({ run_id: run2 }), 409, 'INVALID_STATE', 'not deleted', 'runs/restore of an active run');
  await expectError(Runs.delete({ run_id: '987654' }), 404, 'RESOURCE_DOES_NOT_EXIST', '987654',
    'runs/delete of an unknown run');
  await expectError(Runs.restore({ run_id: '987654' }), 404, 'RESOURCE_DOES_NOT_EXIST', '987654',
    'runs/restore of an unknown run');

  // order_by and page tokens over runs whose values are known here.
  say('runs order_by and pages');
  const { experiment_id: scan } = await Experiments.create({ name: 'lr-scan' });
  const logged = [
    { lr: '0.1', loss: 0.7 }, { lr: '0.03', loss: 0.4 }, { lr: '0.01', loss: 0.2 },
    { lr: '0.003', loss: 0.5 }, { lr: '0.001', loss: 0.9 }, { lr: '0.3' },  // the last logs no loss
  ];
  for (let i = 0; i < logged.length; i++) {
    const { run } = await Runs.create({ experiment_id: scan, start_time: t0 + 100 * (i + 1),
      tags: [{ key: 'mlflow.runName', value: `scan-${i}` }] });
    logged[i].id = run.info.run_id;
    logged[i].start = t0 + 100 * (i + 1);
    await Runs.logBatch({ run_id: run.info.run_id, params: [{ key: 'lr', value: logged[i].lr }],
      metrics: logged[i].loss === undefined ? [] : [{ key: 'loss', value: logged[i].loss, timestamp: t0, step: 0 }] });
  }
  const withLoss = logged.filter((r) => r.loss !== undefined);
  const noLoss = logged.filter((r) => r.loss === undefined).map((r) => r.id);
  const order = async (order_by) => runIds(await Runs.search({ experiment_ids: [scan], order_by }));
  eq(await order(undefined), [...logged].sort((a, b) => b.start - a.start).map((r) => r.id),
    'runs/search default order: start_time DESC');
  eq(await order(['metrics.loss ASC']), [...[...withLoss].sort((a, b) => a.loss - b.loss).map((r) => r.id), ...noLoss],
    'runs/search order_by metrics.loss ASC (a run without it last)');
  eq(await order(['metrics.loss DESC']), [...[...withLoss].sort((a, b) => b.loss - a.loss).map((r) => r.id), ...noLoss],
    'runs/search order_by metrics.loss DESC (a run without it last)');
  eq(await order(['params.lr DESC']), [...logged].sort((a, b) => (a.lr < b.lr ? 1 : -1)).map((r) => r.id),
    'runs/search order_by params.lr DESC (strings)');
  eq(await order(['attributes.start_time ASC']), [...logged].sort((a, b) => a.start - b.start).map((r) => r.id),
    'runs/search order_by attributes.start_time ASC');
  eq(await order(['attributes.start_time DESC']), [...logged].sort((a, b) => b.start - a.start).map((r) => r.id),
    'runs/search order_by attributes.start_time DESC');
  eq(await order(['tags.`mlflow.runName` DESC']), logged.map((r) => r.id).reverse(),
    'runs/search order_by a backquoted tag (scan-5 first)');
  eq(await order(['params.lr ASC', 'attributes.start_time DESC']),
    [...logged].sort((a, b) => (a.lr < b.lr ? -1 : 1)).map((r) => r.id), 'runs/search with two order_by clauses');
  await expectError(Runs.search({ experiment_ids: [scan], page_token: Buffer.from('{"offset": 99999999999}').toString('base64') }),
    400, 'INVALID_PARAMETER_VALUE', 'page_token', 'runs/search with an offset no page has');
  const paged = await allPages((page_token) => Runs.search({ experiment_ids: [scan], order_by: ['metrics.loss ASC'],
    max_results: 4, page_token }), 'runs');
  eq([paged.pages, paged.items.map((r) => r.info.run_id)], [2, await order(['metrics.loss ASC'])],
    'runs/search pages of 4 follow next_page_token to the same order');
  const byTwo = await allPages((page_token) => Runs.search({ experiment_ids: [scan], filter: 'metrics.loss < 0.8',
    order_by: ['metrics.loss DESC'], max_results: 2, page_token }), 'runs');
  eq([byTwo.pages, byTwo.items.map((r) => r.info.run_id)],
    [2, withLoss.filter((r) => r.loss < 0.8).sort((a, b) => b.loss - a.loss).map((r) => r.id)],
    'runs/search pages with a filter');
  await expectError(Runs.search({ experiment_ids: [scan], page_token: 'not-a-token' }), 400,
    'INVALID_PARAMETER_VALUE', 'page_token', 'runs/search with a malformed page token');
  await expectError(Runs.search({ experiment_ids: [scan], page_token: Buffer.from('{"offset": -3}').toString('base64') }),
    400, 'INVALID_PARAMETER_VALUE', 'page_token', 'runs/search with a negative offset in the token');
  await expectError(Runs.search({ experiment_ids: [scan], order_by: ['metrics.loss SIDEWAYS'] }), 400,
    'INVALID_PARAMETER_VALUE', 'SIDEWAYS', 'runs/search order_by with a bad direction');
  await expectError(Runs.search({ experiment_ids: [scan], order_by: ['datasets.size ASC'] }), 400,
    'INVALID_PARAMETER_VALUE', "'datasets'", 'runs/search order_by with an unknown prefix');

  say('experiment tags, delete and restore');
  await experiments.setTag({ experiment_id: exp, key: 'team', value: 'btag' });
  await experiments.setTag({ experiment_id: exp, key: 'physics', value: 'b-jets' });
  await experiments.setTag({ experiment_id: exp, key: 'team', value: 'flavour' });  // replaced
  const wantTags = { physics: 'b-jets', team: 'flavour' };
  eq(byKey((await Experiments.get({ experiment_id: exp })).experiment.tags), wantTags, 'experiments/get tags');
  eq(byKey((await experiments.getByName({ experiment_name: 'jet-tagging' })).experiment.tags), wantTags,
    'experiments/get-by-name tags');
  const found = (await experiments.search()).experiments.find((e) => e.experiment_id === exp);
  eq(byKey(found?.tags), wantTags, 'experiments/search tags');
  await expectError(experiments.setTag({ experiment_id: '9999', key: 'a', value: 'b' }), 404,
    'RESOURCE_DOES_NOT_EXIST', '9999', 'experiments/set-experiment-tag of an unknown experiment');

  const { run: scratchRun } = await Runs.create({ experiment_id: scratch, start_time: t0 });
  await Experiments.delete({ experiment_id: scratch });
  const { experiment: deletedExp } = await Experiments.get({ experiment_id: scratch });
  eq([deletedExp.name, deletedExp.lifecycle_stage], ['scratch-renamed', 'deleted'], 'experiments/get of a deleted experiment');
  eq((await Runs.get({ run_id: scratchRun.info.run_id })).run.info.lifecycle_stage, 'deleted',
    'experiments/delete marks its runs deleted');
  const names = async (view_type) => (await experiments.search({ view_type })).experiments.map((e) => e.name).sort();
  eq(await names(undefined), ['Default', 'jet-tagging', 'lr-scan'], 'experiments/search ACTIVE_ONLY');
  eq(await names(ViewType.DELETED_ONLY), ['scratch-renamed'], 'experiments/search DELETED_ONLY');
  eq(await names(ViewType.ALL), ['Default', 'jet-tagging', 'lr-scan', 'scratch-renamed'], 'experiments/search ALL');
  eq((await Experiments.list({ view_type: ViewType.DELETED_ONLY })).experiments.map((e) => e.experiment_id), [scratch],
    'experiments/list DELETED_ONLY');
  await expectError(Experiments.create({ name: 'scratch-renamed' }), 409, 'RESOURCE_ALREADY_EXISTS', 'scratch-renamed',
    "experiments/create with a deleted experiment's name");
  await expectError(Runs.create({ experiment_id: scratch, start_time: t0 }), 409, 'INVALID_STATE', 'deleted',
    'runs/create in a deleted experiment');
  await expectError(Experiments.delete({ experiment_id: scratch }), 409, 'INVALID_STATE', 'already deleted',
    'experiments/delete twice');
  await expectError(Experiments.delete({ experiment_id: '0' }), 400, 'INVALID_PARAMETER_VALUE', 'Default',
    'experiments/delete of the Default experiment');
  await expectError(Experiments.delete({ experiment_id: '9999' }), 404, 'RESOURCE_DOES_NOT_EXIST', '9999',
    'experiments/delete of an unknown experiment');
  await Experiments.restore({ experiment_id: scratch });
  eq((await Experiments.get({ experiment_id: scratch })).experiment.lifecycle_stage, 'active', 'experiments/restore');
  eq((await Runs.get({ run_id: scratchRun.info.run_id })).run.info.lifecycle_stage, 'active',
    'experiments/restore restores its runs');
  await Runs.create({ experiment_id: scratch, start_time: t0 });  // runs can start again
  await expectError(Experiments.restore({ experiment_id: scratch }), 409, 'INVALID_STATE', 'not deleted',
    'experiments/restore of an active experiment');

  const allNames = ['Default', 'jet-tagging', 'lr-scan', 'scratch-renamed'];
  eq((await experiments.search({ order_by: ['name DESC'] })).experiments.map((e) => e.name), [...allNames].reverse(),
    'experiments/search order_by name DESC');
  const expPages = await allPages((page_token) => experiments.search({ order_by: ['attributes.name ASC'], max_results: 1,
    page_token }), 'experiments');
  eq([expPages.pages, expPages.items.map((e) => e.name)], [4, allNames], 'experiments/search one per page');
  await expectError(experiments.search({ page_token: 'bm90IGpzb24=' }), 400, 'INVALID_PARAMETER_VALUE', 'page_token',
    'experiments/search with a malformed page token');
  await expectError(experiments.search({ order_by: ['metrics.loss'] }), 400, 'INVALID_PARAMETER_VALUE', 'metrics.loss',
    'experiments/search order_by of a run key');

  say('model version stages');
  const { model_version: v2 } = await versions.create({ name: 'btag', source: `runs:/${runId}/model`, run_id: runId });
  eq(v2.version, '2', 'a second version');
  const { model_version: prod1 } = await versions.transitionStage({ name: 'btag', version: '1', stage: 'Production',
    archive_existing_versions: false });
  eq([prod1.version, prod1.current_stage], ['1', 'Production'], 'model-versions/transition-stage to Production');
  eq((await versions.get({ name: 'btag', version: '1' })).model_version.current_stage, 'Production',
    'model-versions/get current_stage');
  const latest = async (stages) => ((await models.getLatestVersions({ name: 'btag', stages })).model_versions ?? [])
    .map((v) => [v.version, v.current_stage]);
  eq(await latest(['Production']), [['1', 'Production']], 'registered-models/get-latest-versions Production');
  eq(await latest(undefined), [['1', 'Production'], ['2', 'None']], 'registered-models/get-latest-versions, all stages');
  // Stages are matched case-insensitively; archive_existing_versions moves the old Production version.
  const { model_version: prod2 } = await versions.transitionStage({ name: 'btag', version: '2', stage: 'production',
    archive_existing_versions: true });
  eq(prod2.current_stage, 'Production', 'transition-stage with a lower-case stage');
  eq((await versions.get({ name: 'btag', version: '1' })).model_version.current_stage, 'Archived',
    'archive_existing_versions archives the previous Production version');
  eq(await latest(['Production', 'Staging']), [['2', 'Production']], 'get-latest-versions after the archive');
  eq((await models.get({ name: 'btag' })).registered_model.latest_versions.map((v) => [v.version, v.current_stage]),
    [['1', 'Archived'], ['2', 'Production']], 'registered-models/get latest_versions per stage');
  await expectError(versions.transitionStage({ name: 'btag', version: '2', stage: 'Live' }), 400,
    'INVALID_PARAMETER_VALUE', "'Live'", 'transition-stage to an invalid stage');
  await expectError(versions.transitionStage({ name: 'btag', version: '2', stage: 'Archived',
    archive_existing_versions: true }), 400, 'INVALID_PARAMETER_VALUE', 'archive_existing_versions',
    'archive_existing_versions with stage Archived');
  await expectError(versions.transitionStage({ name: 'btag', version: '9', stage: 'Staging' }), 404,
    'RESOURCE_DOES_NOT_EXIST', 'version 9', 'transition-stage of an unknown version');
  await expectError(models.getLatestVersions({ name: 'btag', stages: ['Live'] }), 400, 'INVALID_PARAMETER_VALUE',
    "'Live'", 'get-latest-versions with an invalid stage');

  say('model version updates and tags');
  const { model_version: described } = await versions.update({ name: 'btag', version: '2', description: 'retrained on 2026 data' });
  eq(described.description, 'retrained on 2026 data', 'model-versions/update description');
  eq((await versions.get({ name: 'btag', version: '2' })).model_version.description, 'retrained on 2026 data',
    'model-versions/get description');
  check(described.last_updated_timestamp >= described.creation_timestamp, 'last_updated_timestamp moves', described);
  await versions.setTag({ name: 'btag', version: '2', key: 'validated_by', value: 'alice' });
  await versions.setTag({ name: 'btag', version: '2', key: 'scratch', value: 'x' });
  await versions.deleteTag({ name: 'btag', version: '2', key: 'scratch' });
  eq(byKey((await versions.get({ name: 'btag', version: '2' })).model_version.tags), { validated_by: 'alice' },
    'model-versions/set-tag and delete-tag');
  await expectError(versions.deleteTag({ name: 'btag', version: '2', key: 'scratch' }), 404, 'RESOURCE_DOES_NOT_EXIST',
    "'scratch'", 'model-versions/delete-tag of a missing tag');
  await expectError(versions.setTag({ name: 'btag', version: '8', key: 'a', value: 'b' }), 404,
    'RESOURCE_DOES_NOT_EXIST', 'version 8', 'model-versions/set-tag of an unknown version');
  // hepml keeps published versions: deletion is refused, the version stays.
  await expectError(versions.delete({ name: 'btag', version: '1' }), 409, 'INVALID_STATE', 'Archived',
    'model-versions/delete of a published version');
  eq((await versions.get({ name: 'btag', version: '1' })).model_version.version, '1', 'the version is still there');
  await expectError(versions.delete({ name: 'btag', version: '9' }), 404, 'RESOURCE_DOES_NOT_EXIST', 'version 9',
    'model-versions/delete of an unknown version');

  say('model version search');
  const vs = async (args) => ((await versions.search(args)).model_versions ?? []).map((v) => `${v.name}@${v.version}`);
  eq(await vs({ filter: "name = 'btag'" }), ['btag@2', 'btag@1'], 'model-versions/search by name');
  eq(await vs({ filter: `run_id = '${runId}'`, order_by: ['version_number ASC'] }), ['btag@1', 'btag@2'],
    'model-versions/search by run_id, version_number ASC');
  const vPages = await allPages((page_token) => versions.search({ filter: "name='btag'", max_results: 1, page_token }),
    'model_versions');
  eq([vPages.pages, vPages.items.map((v) => v.version)], [2, ['2', '1']], 'model-versions/search one per page');
  await expectError(versions.search({ page_token: '%%%' }), 400, 'INVALID_PARAMETER_VALUE', 'page_token',
    'model-versions/search with a malformed page token');

  say('registered model updates');
  const { registered_model: updated } = await models.update({ name: 'btag', description: 'b-jet tagger, 2026' });
  eq(updated.description, 'b-jet tagger, 2026', 'registered-models/update');
  eq((await models.get({ name: 'btag' })).registered_model.description, 'b-jet tagger, 2026',
    'registered-models/get after update');
  const { registered_model: renamed } = await models.rename({ name: 'trigger-mlp', new_name: 'trigger-mlp-v2' });
  eq(renamed.name, 'trigger-mlp-v2', 'registered-models/rename');
  await expectError(models.get({ name: 'trigger-mlp' }), 404, 'RESOURCE_DOES_NOT_EXIST', 'trigger-mlp',
    'registered-models/get of the old name');
  await expectError(models.rename({ name: 'trigger-mlp-v2', new_name: 'btag' }), 409, 'RESOURCE_ALREADY_EXISTS',
    'btag', 'registered-models/rename to a taken name');
  const modelNames = async (args) => ((await models.search(args)).registered_models ?? []).map((m) => m.name);
  eq(await modelNames({ order_by: ['name DESC'] }), ['trigger-mlp-v2', 'btag'], 'registered-models/search name DESC');
  const mPages = await allPages((page_token) => models.search({ max_results: 1, page_token }), 'registered_models');
  eq([mPages.pages, mPages.items.map((m) => m.name)], [2, ['btag', 'trigger-mlp-v2']],
    'registered-models/search one per page');
  await expectError(models.search({ page_token: 'xyz' }), 400, 'INVALID_PARAMETER_VALUE', 'page_token',
    'registered-models/search with a malformed page token');
  await models.delete({ name: 'trigger-mlp-v2' });  // no versions: removed
  eq(await modelNames({}), ['btag'], 'registered-models/delete of a model without versions');
  await expectError(models.delete({ name: 'btag' }), 409, 'INVALID_STATE', 'published',
    'registered-models/delete of a model with published versions');
  await expectError(models.delete({ name: 'no-such-model' }), 404, 'RESOURCE_DOES_NOT_EXIST', 'no-such-model',
    'registered-models/delete of an unknown model');
}

main().catch((e) => {
  console.error(`check_mlflow_client: ${e.stack ?? e}`);
  process.exit(1);
});
