#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime on batches slimtrain streams to it, so
// the independent runtime sees exactly the tensors slimtrain evaluated,
// whatever the data format (IDX, HDF5, decoded and transformed images).
//
// Usage: node scripts/ort_stream.js MODEL.onnx [--threads N]
// Protocol (little-endian), repeated on stdin:
//   int32 ndim, int32 dims[|ndim|], data[prod(dims)]: float32 when ndim > 0,
//   int64 (token ids) when ndim < 0;
// a frame with ndim 0 ends the stream. For every frame one line goes to
// stdout: the argmax of each row of the model's first output, or of each
// pixel over dim 1 for an (N, classes, H, W) output, comma separated. The first line written, before any frame is read, is
// "ready <input name> <output name>". Errors go to stderr, exit status 1.
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const local = path.join(__dirname, '..', 'node_modules', 'onnxruntime-node');
  try { return require(local); } catch (e) { return require('onnxruntime-node'); }
}

// Reads exactly n bytes from stdin (blocking); null at a clean end of input.
function readExact(n) {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    let k;
    try {
      k = fs.readSync(0, buf, got, n - got, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (k === 0) {
      if (got === 0) return null;
      throw new Error(`input ended inside a frame (${got} of ${n} bytes)`);
    }
    got += k;
  }
  return buf;
}

function writeLine(s) {
  const b = Buffer.from(s + '\n');
  let off = 0;
  while (off < b.length) off += fs.writeSync(1, b, off, b.length - off);
}

async function main() {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--threads');
  const threads = ti >= 0 ? parseInt(args.splice(ti, 2)[1], 10) : 0;
  if (args.length !== 1) {
    console.error('usage: ort_stream.js MODEL.onnx [--threads N]');
    process.exit(2);
  }
  const ort = loadOrt();
  const so = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
  const session = await ort.InferenceSession.create(args[0], so);
  const input = session.inputNames[0], output = session.outputNames[0];
  writeLine(`ready ${input} ${output}`);
  for (;;) {
    const head = readExact(4);
    if (head === null) break;
    const field = head.readInt32LE(0);
    if (field === 0) break;
    const int64 = field < 0, ndim = Math.abs(field);
    if (ndim > 8) throw new Error(`bad frame: ${ndim} dimensions`);
    const dimsBuf = readExact(4 * ndim);
    const dims = [];
    for (let i = 0; i < ndim; i++) dims.push(dimsBuf.readInt32LE(4 * i));
    const count = dims.reduce((a, b) => a * b, 1);
    const data = readExact((int64 ? 8 : 4) * count);
    // A copy: BigInt64Array needs 8-byte alignment, which a Buffer slice lacks.
    const x = int64 ? new BigInt64Array(data.buffer.slice(data.byteOffset, data.byteOffset + 8 * count))
                    : new Float32Array(data.buffer, data.byteOffset, count);
    const out = await session.run({ [input]: new ort.Tensor(int64 ? 'int64' : 'float32', x, dims) });
    const y = out[output];
    const rows = y.dims[0];
    // (N, classes, H, W): a segmentation output, one argmax over the classes
    // per pixel, in (n, h, w) order; otherwise one argmax per row.
    const seg = y.dims.length === 4;
    const c = seg ? y.dims[1] : y.data.length / rows;
    const hw = seg ? y.dims[2] * y.dims[3] : 1;
    const pred = new Array(rows * hw);
    for (let i = 0; i < rows; i++) {
      const base = i * c * hw;
      for (let p = 0; p < hw; p++) {
        let best = 0;
        for (let k = 1; k < c; k++)
          if (y.data[base + k * hw + p] > y.data[base + best * hw + p]) best = k;
        pred[i * hw + p] = best;
      }
    }
    writeLine(pred.join(','));
  }
}

main().catch((e) => { console.error('ort_stream: ' + (e && e.message ? e.message : e)); process.exit(1); });
