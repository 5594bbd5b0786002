#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime on TensorProto (.pb) inputs and writes
// output_<i>.pb files (raw_data), like ONNX's test data sets. The independent
// runtime for slimtrain's import/export parity checks.
// Usage: node scripts/ort_run.js MODEL.onnx OUT_DIR INPUT_0.pb [INPUT_1.pb ...]
// Inputs bind to the model inputs by TensorProto name when all names match,
// otherwise by position.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const local = path.join(__dirname, '..', 'node_modules', 'onnxruntime-node');
  try { return require(local); } catch (e) { return require('onnxruntime-node'); }
}

// ONNX TensorProto.DataType <-> ORT type names and typed arrays.
const TYPES = {
  1: ['float32', Float32Array], 2: ['uint8', Uint8Array], 3: ['int8', Int8Array],
  6: ['int32', Int32Array], 7: ['int64', BigInt64Array], 9: ['bool', Uint8Array],
  11: ['float64', Float64Array],
};

// Minimal protobuf reader: varints, length-delimited and fixed fields.
function readVarint(buf, pos) {
  let result = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos.i++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return result;
    shift += 7n;
  }
}

function parseTensor(buf) {
  const t = { dims: [], dataType: 0, name: '', raw: null, floats: [], ints32: [], ints64: [], doubles: [] };
  const pos = { i: 0 };
  const packedOr = (wire, fn, single) => {
    if (wire === 2) {
      const len = Number(readVarint(buf, pos)), end = pos.i + len;
      while (pos.i < end) fn();
    } else single();
  };
  while (pos.i < buf.length) {
    const key = Number(readVarint(buf, pos)), field = key >> 3, wire = key & 7;
    if (field === 1) packedOr(wire, () => t.dims.push(Number(BigInt.asIntN(64, readVarint(buf, pos)))),
                              () => t.dims.push(Number(BigInt.asIntN(64, readVarint(buf, pos)))));
    else if (field === 2) t.dataType = Number(readVarint(buf, pos));
    else if (field === 4) packedOr(wire, () => { t.floats.push(buf.readFloatLE(pos.i)); pos.i += 4; },
                                   () => { t.floats.push(buf.readFloatLE(pos.i)); pos.i += 4; });
    else if (field === 5) packedOr(wire, () => t.ints32.push(Number(BigInt.asIntN(32, readVarint(buf, pos)))),
                                   () => t.ints32.push(Number(BigInt.asIntN(32, readVarint(buf, pos)))));
    else if (field === 7) packedOr(wire, () => t.ints64.push(BigInt.asIntN(64, readVarint(buf, pos))),
                                   () => t.ints64.push(BigInt.asIntN(64, readVarint(buf, pos))));
    else if (field === 10) packedOr(wire, () => { t.doubles.push(buf.readDoubleLE(pos.i)); pos.i += 8; },
                                    () => { t.doubles.push(buf.readDoubleLE(pos.i)); pos.i += 8; });
    else if (field === 8 || field === 9) {
      const len = Number(readVarint(buf, pos));
      const bytes = buf.subarray(pos.i, pos.i + len);
      pos.i += len;
      if (field === 8) t.name = bytes.toString('utf8'); else t.raw = Buffer.from(bytes);
    } else if (wire === 0) readVarint(buf, pos);
    else if (wire === 1) pos.i += 8;
    else if (wire === 5) pos.i += 4;
    else if (wire === 2) pos.i += Number(readVarint(buf, pos));
    else throw new Error('unsupported protobuf wire type ' + wire);
  }
  return t;
}

function toOrtTensor(ort, t) {
  const ty = TYPES[t.dataType];
  if (!ty) throw new Error('unsupported TensorProto data_type ' + t.dataType);
  const [name, Arr] = ty;
  let data;
  if (t.raw) {
    data = new Arr(t.raw.buffer.slice(t.raw.byteOffset, t.raw.byteOffset + t.raw.length));
  } else {
    const src = { 1: t.floats, 7: t.ints64, 11: t.doubles }[t.dataType] || t.ints32;
    data = Arr.from(src);
  }
  if (name === 'bool') data = Uint8Array.from(data, (v) => (v ? 1 : 0));
  return new ort.Tensor(name, name === 'bool' ? Array.from(data, Boolean) : data, t.dims);
}

function varint(n) {
  let v = BigInt.asUintN(64, BigInt(n));
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function encodeTensor(name, tensor) {
  const code = Number(Object.keys(TYPES).find((k) => TYPES[k][0] === tensor.type));
  if (!code) throw new Error('cannot write ORT output of type ' + tensor.type);
  let raw;
  if (tensor.type === 'bool') raw = Buffer.from(Uint8Array.from(tensor.data, (v) => (v ? 1 : 0)));
  else raw = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const parts = [];
  for (const d of tensor.dims) parts.push(Buffer.from([0x08]), varint(d));
  parts.push(Buffer.from([0x10]), varint(code));
  const nm = Buffer.from(name, 'utf8');
  parts.push(Buffer.from([0x42]), varint(nm.length), nm);
  parts.push(Buffer.from([0x4a]), varint(raw.length), raw);
  return Buffer.concat(parts);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) {
    console.error('usage: ort_run.js MODEL.onnx OUT_DIR [INPUT.pb ...]');
    process.exit(2);
  }
  const [model, outDir, ...inputs] = args;
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(model);
  const parsed = inputs.map((p) => parseTensor(fs.readFileSync(p)));
  const byName = parsed.every((t) => session.inputNames.includes(t.name));
  const feeds = {};
  parsed.forEach((t, i) => { feeds[byName ? t.name : session.inputNames[i]] = toOrtTensor(ort, t); });
  const out = await session.run(feeds);
  session.outputNames.forEach((n, i) => {
    fs.writeFileSync(path.join(outDir, `output_${i}.pb`), encodeTensor(n, out[n]));
  });
}

main().catch((e) => { console.error('ort_run.js: ' + (e && e.message ? e.message : e)); process.exit(1); });
