// Minimal NumPy .npy (format 1.0/2.0/3.0) reader and writer for the peer runners.
//
// Contract: little-endian, C order only; every numeric dtype onnxruntime-node has a
// typed array for, bool, and fixed-width unicode strings ('<U<n>', as numpy writes
// np.array([...], dtype=str)) or byte strings ('|S<n>', read only). Object arrays
// (pickles) are rejected. The in-memory form is {dtype, shape, data} where dtype is the
// ONNX Runtime tensor type name ('float32', 'int64', 'bool', 'string', ...) and data is
// the typed array onnxruntime-node expects (Uint8Array for bool, Uint16Array holding
// IEEE binary16 bits for float16, a JS array of strings for string).

import fs from 'node:fs';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // "\x93NUMPY"

// npy descr (without byte-order char) -> [ort type, typed array constructor]
const NUMERIC = {
  f2: ['float16', Uint16Array],
  f4: ['float32', Float32Array],
  f8: ['float64', Float64Array],
  i1: ['int8', Int8Array],
  i2: ['int16', Int16Array],
  i4: ['int32', Int32Array],
  i8: ['int64', BigInt64Array],
  u1: ['uint8', Uint8Array],
  u2: ['uint16', Uint16Array],
  u4: ['uint32', Uint32Array],
  u8: ['uint64', BigUint64Array],
  b1: ['bool', Uint8Array],
};
const DESCR_OF = Object.fromEntries(
  Object.entries(NUMERIC).map(([k, [t]]) => [t, (k.endsWith('1') ? '|' : '<') + k]));

function parseHeader(text) {
  // The header is a Python dict literal; it only ever holds these three keys.
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !order || !shape) throw new Error(`malformed npy header: ${text}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0)
    .map((s) => Number.parseInt(s, 10));
  return { descr: descr[1], fortran: order[1] === 'True', shape: dims };
}

export function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new Error(`${file}: not an npy file`);
  const major = buf[6];
  let headerLen; let offset;
  if (major === 1) { headerLen = buf.readUInt16LE(8); offset = 10; } else { headerLen = buf.readUInt32LE(8); offset = 12; }
  const header = parseHeader(buf.subarray(offset, offset + headerLen).toString('latin1'));
  offset += headerLen;
  if (header.fortran) throw new Error(`${file}: fortran_order arrays are not supported`);
  const count = header.shape.reduce((a, b) => a * b, 1);
  const body = buf.subarray(offset);
  const order = header.descr[0];
  const code = header.descr.slice(1);
  if (code === 'O') throw new Error(`${file}: object (pickled) arrays are not supported`);
  if (code[0] === 'U' || code[0] === 'S') {
    const width = Number.parseInt(code.slice(1), 10);
    const isUnicode = code[0] === 'U';
    const itemBytes = isUnicode ? 4 * width : width;
    const data = new Array(count);
    for (let i = 0; i < count; i++) {
      const item = body.subarray(i * itemBytes, (i + 1) * itemBytes);
      let s = '';
      if (isUnicode) {
        for (let j = 0; j < width; j++) {
          const cp = item.readUInt32LE(4 * j);
          if (cp === 0) break; // numpy strips trailing NULs
          s += String.fromCodePoint(cp);
        }
      } else {
        let end = item.indexOf(0); if (end < 0) end = item.length;
        s = item.subarray(0, end).toString('utf8');
      }
      data[i] = s;
    }
    return { dtype: 'string', shape: header.shape, data };
  }
  if (order === '>') throw new Error(`${file}: big-endian arrays are not supported`);
  const entry = NUMERIC[code];
  if (!entry) throw new Error(`${file}: unsupported dtype ${header.descr}`);
  const [dtype, Ctor] = entry;
  const bytes = count * Ctor.BYTES_PER_ELEMENT;
  if (body.length < bytes) throw new Error(`${file}: truncated data`);
  // Copy so the typed array is aligned regardless of the header length.
  const copy = new Uint8Array(bytes); copy.set(body.subarray(0, bytes));
  return { dtype, shape: header.shape, data: new Ctor(copy.buffer) };
}

function headerBytes(descr, shape) {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let text = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + text.length + 1; // magic+version+len, text, newline
  text += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + text.length);
  MAGIC.copy(out, 0); out[6] = 1; out[7] = 0; out.writeUInt16LE(text.length, 8);
  out.write(text, 10, 'latin1');
  return out;
}

// Writes {dtype, shape, data} (the form readNpy returns, or an onnxruntime Tensor's
// type/dims/data) to `file`.
export function writeNpy(file, dtype, shape, data) {
  shape = Array.from(shape, Number);
  if (dtype === 'string') {
    const strings = Array.from(data, String);
    const width = Math.max(1, ...strings.map((s) => Array.from(s).length));
    const body = Buffer.alloc(strings.length * width * 4);
    strings.forEach((s, i) => {
      Array.from(s).forEach((ch, j) => body.writeUInt32LE(ch.codePointAt(0), (i * width + j) * 4));
    });
    fs.writeFileSync(file, Buffer.concat([headerBytes(`<U${width}`, shape), body]));
    return;
  }
  const descr = DESCR_OF[dtype];
  if (!descr) throw new Error(`dtype ${dtype} cannot be written as .npy`);
  let bytes;
  if (dtype === 'bool') {
    bytes = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  } else if (ArrayBuffer.isView(data)) {
    bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  } else {
    throw new Error(`data for ${dtype} must be a typed array`);
  }
  fs.writeFileSync(file, Buffer.concat([headerBytes(descr, shape), bytes]));
}

export const NPY_DTYPES = Object.freeze([...Object.keys(DESCR_OF), 'string']);
