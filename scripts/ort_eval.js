#!/usr/bin/env node
// Evaluates an image classifier in ONNX Runtime on an IDX data set (the
// MNIST family, .gz allowed) and prints one JSON line: top-1, sample count and
// optionally the logits file. The independent runtime for parity checks.
// Usage: node scripts/ort_eval.js MODEL.onnx IMAGES LABELS MEAN STD
//            [--batch N] [--logits OUT.f32] [--threads N]
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const path = require('path');

function loadOrt() {
  const local = path.join(__dirname, '..', 'node_modules', 'onnxruntime-node');
  try { return require(local); } catch (e) { return require('onnxruntime-node'); }
}

function readIdx(file) {
  let buf = fs.readFileSync(file);
  if (file.endsWith('.gz')) buf = zlib.gunzipSync(buf);
  const magic = buf.readUInt32BE(0);
  const ndim = magic & 0xff;
  const dims = [];
  for (let i = 0; i < ndim; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  return { dims, data: buf.subarray(4 + 4 * ndim) };
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const batch = parseInt(opt('--batch', '100'), 10);
  const logitsOut = opt('--logits', null);
  const threads = parseInt(opt('--threads', '0'), 10);
  if (args.length < 5) {
    console.error('usage: ort_eval.js MODEL IMAGES LABELS MEAN STD [--batch N] [--logits F] [--threads N]');
    process.exit(2);
  }
  const [model, imagesPath, labelsPath, meanS, stdS] = args;
  const mean = parseFloat(meanS), std = parseFloat(stdS);
  const ort = loadOrt();
  const so = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
  const session = await ort.InferenceSession.create(model, so);
  const images = readIdx(imagesPath), labels = readIdx(labelsPath);
  const n = images.dims[0], h = images.dims[1], w = images.dims[2];
  const classes = [];
  let correct = 0;
  const logitChunks = [];
  for (let start = 0; start < n; start += batch) {
    const b = Math.min(batch, n - start);
    const x = new Float32Array(b * h * w);
    for (let i = 0; i < b * h * w; i++) x[i] = (images.data[start * h * w + i] / 255 - mean) / std;
    const feeds = {};
    feeds[session.inputNames[0]] = new ort.Tensor('float32', x, [b, 1, h, w]);
    const out = await session.run(feeds);
    const y = out[session.outputNames[0]];
    const c = y.dims[1];
    classes[0] = c;
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let k = 1; k < c; k++) if (y.data[i * c + k] > y.data[i * c + best]) best = k;
      if (best === labels.data[start + i]) correct++;
    }
    if (logitsOut) logitChunks.push(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  }
  if (logitsOut) fs.writeFileSync(logitsOut, Buffer.concat(logitChunks));
  console.log(JSON.stringify({ top1: correct / n, samples: n, runtime: 'onnxruntime-node' }));
}

main().catch((e) => { console.error('ort_eval: ' + (e && e.message ? e.message : e)); process.exit(1); });
