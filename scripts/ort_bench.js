#!/usr/bin/env node
// Latency and throughput of an ONNX model in ONNX Runtime (CPU) on random
// input, for scripts/bench: prints one JSON line
//   {"model", "batch", "threads", "ms_per_batch" (median), "ms_min", "images_per_s", "bytes"}.
// The input shape comes from the model's first input (its batch dimension is
// set to --batch; other symbolic dimensions need --shape).
// Usage: node scripts/ort_bench.js MODEL.onnx [--batch N] [--threads N]
//            [--iters N] [--warmup N] [--shape C,H,W] [--optimized OUT.onnx]
// --optimized writes the graph ONNX Runtime actually runs (after its QDQ
// fusions), to see which ops became integer kernels (QLinearConv, ...).
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  const local = path.join(__dirname, '..', 'node_modules', 'onnxruntime-node');
  try { return require(local); } catch (e) { return require('onnxruntime-node'); }
}

// Dimensions of the first graph input from the ModelProto bytes is more than
// this script needs: ORT reports input names only, so the per-sample shape is
// given (--shape) or read from onnx's metadata by the caller.
async function main() {
  const args = process.argv.slice(2);
  const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
  const model = args[0];
  if (!model || model.startsWith('--')) {
    console.error('usage: ort_bench.js MODEL.onnx [--batch N] [--threads N] [--iters N] [--warmup N] --shape C,H,W [--optimized OUT.onnx]');
    process.exit(2);
  }
  const batch = parseInt(opt('--batch', '1'), 10);
  const threads = parseInt(opt('--threads', '2'), 10);
  const iters = parseInt(opt('--iters', '20'), 10);
  const warmup = parseInt(opt('--warmup', '3'), 10);
  const shape = opt('--shape', '').split(',').filter(s => s).map(s => parseInt(s, 10));
  if (shape.length === 0 || shape.some(d => !(d > 0))) {
    console.error(`ort_bench.js: --shape C,H,W (per-sample input shape) is required, got '${opt('--shape', '')}'`);
    process.exit(2);
  }
  const ort = loadOrt();
  const so = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  const optimized = opt('--optimized', '');
  if (optimized) so.optimizedModelFilePath = optimized;
  const session = await ort.InferenceSession.create(model, so);
  const dims = [batch, ...shape];
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let seed = 12345;
  for (let i = 0; i < n; i++) {  // deterministic values in [-2, 2)
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = (seed / 4294967296) * 4 - 2;
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < warmup; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(JSON.stringify({
    model: path.resolve(model), batch, threads, iters,
    ms_per_batch: +median.toFixed(3), ms_min: +times[0].toFixed(3),
    images_per_s: +(1000 * batch / median).toFixed(1),
    bytes: fs.statSync(model).size,
  }));
}

main().catch(e => { console.error(`ort_bench.js: ${e.message || e}`); process.exit(1); });
