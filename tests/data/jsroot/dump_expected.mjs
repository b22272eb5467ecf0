// Reads every TTree of the given ROOT files with JSROOT (an independent
// reader) and prints, per tree and per leaf branch, every entry's value as
// JSON. tests/data/root_expected.json is this script's output:
//   node dump_expected.mjs /path/to/data/root/*.root > ../root_expected.json
// JSROOT reads a fixed array of Char_t (TLeafB, signed) as a C string: the
// bytes up to the first NUL. Those values stay strings here and the test
// compares them with C-string semantics.
// Options: --bench COLUMN-LIST FILE: time reading the listed branches instead.
import { openFile } from 'jsroot/io';
import { treeProcess, TSelector } from 'jsroot/tree';
import { readHeaderFooter, rntupleProcess } from 'jsroot/rntuple';
import path from 'node:path';

function plain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (v === Infinity) return 'inf';
    if (v === -Infinity) return '-inf';
    return v;
  }
  if (typeof v === 'string') return v;
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return Array.from(v, plain);
  if (typeof v === 'object' && 'fString' in v) return v.fString;
  return String(v);
}

function leafBranches(branches, out) {
  for (const br of branches.arr) {
    if (br.fBranches && br.fBranches.arr.length) leafBranches(br.fBranches, out);
    else out.push(br);
  }
}

async function trees(dir, prefix, out) {
  for (const key of dir.fKeys) {
    const name = prefix + key.fName;
    if (out.some(t => t.name === name)) continue;  // older cycles
    if (key.fClassName === 'TTree') out.push({ name, tree: await dir.readObject(`${key.fName};${key.fCycle}`) });
    else if (key.fClassName === 'ROOT::RNTuple') out.push({ name, rntuple: await dir.readObject(`${key.fName};${key.fCycle}`) });
    else if (key.fClassName === 'TDirectoryFile' || key.fClassName === 'TDirectory') {
      const sub = await dir.readObject(key.fName);
      await trees(sub, name + '/', out);
    }
  }
}

// The top-level fields of an RNTuple that are not projections, and the
// members of records inside untyped collections. JSROOT reads such a
// member as a scalar per entry (entry i gets item i of the flat values) and
// an untyped collection as its end offsets; the test knows this.
async function readRNTuple(rntuple) {
  const b = await readHeaderFooter(rntuple);
  const names = [];
  b.fieldDescriptors.forEach((f, i) => {
    if (f.parentFieldId !== i || (f.flags & 2)) return;
    names.push(f.fieldName);
    if (f.structRole === 1) {
      const child = b.fieldDescriptors.findIndex((c, j) => c.parentFieldId === i && j !== i);
      if (child >= 0 && b.fieldDescriptors[child].structRole === 2) {
        b.fieldDescriptors.forEach((m, k) => { if (m.parentFieldId === child && k !== child) names.push(m.fieldName); });
      }
    }
  });
  const cols = {};
  let entries = 0;
  for (const name of names) {
    const sel = new TSelector();
    sel.addBranch(name, 'v');
    const values = [];
    sel.Process = function() { values.push(plain(this.tgtobj.v)); };
    await rntupleProcess(rntuple, sel);
    cols[name] = values;
    entries = values.length;
  }
  return { entries, rntuple: true, columns: cols };
}

async function readBranch(tree, br) {
  const sel = new TSelector();
  sel.addBranch(br, 'v');
  const values = [];
  sel.Process = function() { values.push(plain(this.tgtobj.v)); };
  await treeProcess(tree, sel);
  return values;
}

const args = process.argv.slice(2);
if (args[0] === '--bench') {
  // --bench FILE TREE COLUMNS REPEATS: decode the columns REPEATS times.
  const [, file, treeName, cols, repeats] = args;
  const f = await openFile(file);
  const tree = await f.readObject(treeName);
  const t0 = process.hrtime.bigint();
  let entries = 0;
  for (let r = 0; r < Number(repeats); ++r) {
    const sel = new TSelector();
    for (const c of cols.split(',')) sel.addBranch(c);
    let n = 0;
    sel.Process = function() { ++n; };
    if (tree._typename === 'ROOT::RNTuple' || tree.$kind === 'ROOT::RNTuple') await rntupleProcess(tree, sel);
    else await treeProcess(tree, sel);
    entries += n;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ seconds: s, entries }));
} else {
  const result = {};
  const texts = {};
  for (const file of args) {
    const f = await openFile(file);
    const found = [];
    await trees(f, '', found);
    const fileOut = {};
    for (const { name, tree, rntuple } of found) {
      if (rntuple) {
        fileOut[name] = await readRNTuple(rntuple);
        continue;
      }
      const leaves = [];
      leafBranches(tree.fBranches, leaves);
      const cols = {};
      for (const br of leaves) {
        try {
          cols[br.fName] = await readBranch(tree, br);
        } catch (e) {
          cols[br.fName] = { error: String(e) };
        }
      }
      fileOut[name] = { entries: Number(tree.fEntries), columns: cols };
    }
    // Files holding the same trees under other compressions point at the
    // first such file instead of repeating its values.
    const text = JSON.stringify(fileOut);
    const same = Object.keys(result).find(k => texts[k] === text);
    result[path.basename(file)] = same ? { same_as: same } : fileOut;
    texts[path.basename(file)] = text;
  }
  process.stdout.write(JSON.stringify(result));
}
