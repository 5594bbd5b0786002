#!/usr/bin/env node
// Evaluates an image classifier in ONNX Runtime on an IDX data set (the
// MNIST family, .gz allowed) and prints one JSON line: top-1, sample count and
// optionally the logits file. The independent runtime for parity checks.
// Usage: node scripts/ort_eval.js MODEL.onnx IMAGES LABELS MEAN STD
//            [--batch N] [--logits OUT.f32] [--threads N] [--limit N]
//            [--compare REF.f32 [--tol T]]
// --logits writes float32 row-major [samples, classes] logits. --compare reads
// such a file (e.g. slimtrain's fake-quant eval logits) and adds to the JSON:
// top-1 of the reference, argmax agreement, max / mean |logit difference| and
// the number of samples whose max |difference| exceeds T (default 0.05);
// exit status 3 when any sample does.
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

// Per-sample comparison of two [n, c] float32 logit buffers.
function compareLogits(gotBuf, refBuf, n, c, labels, tol) {
  if (refBuf.length < n * c * 4)
    throw new Error(`reference logits hold ${refBuf.length / 4} floats, need ${n} x ${c}`);
  const got = new Float32Array(gotBuf.buffer, gotBuf.byteOffset, n * c);
  const ref = new Float32Array(refBuf.buffer.slice(refBuf.byteOffset, refBuf.byteOffset + n * c * 4));
  const argmax = (a, i) => { let b = 0; for (let k = 1; k < c; k++) if (a[i * c + k] > a[i * c + b]) b = k; return b; };
  let agree = 0, refCorrect = 0, maxDiff = 0, sumDiff = 0, over = 0, worst = -1;
  for (let i = 0; i < n; i++) {
    const rg = argmax(ref, i);
    if (argmax(got, i) === rg) agree++;
    if (rg === labels[i]) refCorrect++;
    let m = 0;
    for (let k = 0; k < c; k++) {
      const d = Math.abs(got[i * c + k] - ref[i * c + k]);
      sumDiff += d;
      if (d > m) m = d;
    }
    if (m > tol) over++;
    if (m > maxDiff) { maxDiff = m; worst = i; }
  }
  return { ref_top1: refCorrect / n, argmax_agreement: agree / n, max_abs_diff: maxDiff,
           mean_abs_diff: sumDiff / (n * c), worst_sample: worst, tol, over_tol: over };
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
  const limit = parseInt(opt('--limit', '0'), 10);
  const comparePath = opt('--compare', null);
  const tol = parseFloat(opt('--tol', '0.05'));
  if (args.length < 5) {
    console.error('usage: ort_eval.js MODEL IMAGES LABELS MEAN STD [--batch N] [--logits F] [--threads N] [--limit N] [--compare REF.f32 [--tol T]]');
    process.exit(2);
  }
  const [model, imagesPath, labelsPath, meanS, stdS] = args;
  const mean = parseFloat(meanS), std = parseFloat(stdS);
  const ort = loadOrt();
  const so = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};
  const session = await ort.InferenceSession.create(model, so);
  const images = readIdx(imagesPath), labels = readIdx(labelsPath);
  const h = images.dims[1], w = images.dims[2];
  const n = limit > 0 ? Math.min(limit, images.dims[0]) : images.dims[0];
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
    if (logitsOut || comparePath) logitChunks.push(Buffer.from(Float32Array.from(y.data).buffer));
  }
  const logits = Buffer.concat(logitChunks);
  if (logitsOut) fs.writeFileSync(logitsOut, logits);
  const result = { top1: correct / n, samples: n, runtime: 'onnxruntime-node' };
  let exitCode = 0;
  if (comparePath) {
    const cmp = compareLogits(logits, fs.readFileSync(comparePath), n, classes[0], labels.data, tol);
    Object.assign(result, cmp);
    if (cmp.over_tol > 0) exitCode = 3;
  }
  console.log(JSON.stringify(result));
  process.exitCode = exitCode;
}

main().catch((e) => { console.error('ort_eval: ' + (e && e.message ? e.message : e)); process.exit(1); });
