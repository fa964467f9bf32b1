// Golden-vector check shared by the Node.js program and the browser page: the full sequence of every case, and
// the streaming case step by step carrying the state (hn → h0, cn → c0), each against the PyTorch outputs shipped
// in golden/. Error = max |got - want| / max(1, |want|), the same scaled error lstm-edge verify uses.
// index.inputs / index.outputs name the model's I/O in order (x[, lengths], h0[, c0] → y, hn[, cn]); x holds
// float32 features or int64 token ids; index.layout says whether x is [batch, seq, …] or [seq, batch, …].

function scaledMax(got, want) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

const STATE_OF = { hn: 'h0', cn: 'c0' };

export async function checkAll(ort, session, index, readBin) {
  const rows = [];
  index.inputs = index.inputs || ['x', 'h0', 'c0'];  // golden indexes older than the ModelSpec forms
  index.outputs = index.outputs || ['y', 'hn', 'cn'];
  const timeMajor = index.layout === 'time_major';
  const perStep = index.head === 'sequence' || index.head === 'none';
  const tensor = (data, shape) => new ort.Tensor(data instanceof BigInt64Array ? 'int64' : 'float32', data, shape);
  for (const c of index.cases) {
    const a = {};
    for (const [name, meta] of Object.entries(c.arrays)) a[name] = await readBin(meta.file, meta.dtype || 'float32');
    const shape = (name) => c.arrays[name].shape;
    const feeds = {};
    for (const name of index.inputs) feeds[name] = tensor(a[name], shape(name));
    const out = await session.run(feeds);
    const full = {};
    for (const name of index.outputs) full[name] = scaledMax(out[name].data, a[name]);
    rows.push({ case: c.name, mode: 'full', errors: full, tolerance: c.tolerance, y: Array.from(out.y.data.slice(0, 4)) });
    if (!c.streaming) continue;
    const xs = shape('x');
    const [B, T] = timeMajor ? [xs[1], xs[0]] : [xs[0], xs[1]];
    const F = xs.length === 3 ? xs[2] : 1;  // token ids: one id per step
    const state = {};
    for (const name of index.outputs) if (STATE_OF[name]) state[STATE_OF[name]] = a[STATE_OF[name]];
    let last = null;
    const ySeq = [];
    for (let t = 0; t < T; t++) {
      const xt = new a.x.constructor(B * F);
      for (let b = 0; b < B; b++) {
        const at = timeMajor ? (t * B + b) * F : (b * T + t) * F;
        xt.set(a.x.subarray(at, at + F), b * F);
      }
      const stepShape = xs.length === 3 ? (timeMajor ? [1, B, F] : [B, 1, F]) : (timeMajor ? [1, B] : [B, 1]);
      const f = { x: tensor(xt, stepShape) };
      if (index.inputs.includes('lengths')) f.lengths = tensor(new BigInt64Array(B).fill(1n), [B]);
      for (const [name, data] of Object.entries(state)) f[name] = tensor(data, shape(name));
      const o = await session.run(f);
      for (const name of index.outputs) if (STATE_OF[name]) state[STATE_OF[name]] = o[name].data;
      last = o.y.data;
      if (perStep) ySeq.push(last);
    }
    let yStream = last;
    if (perStep) {  // reassemble [B, T, O] (or [T, B, O]) from the per-step [B, 1, O] / [1, B, O]
      const O = last.length / B;
      yStream = new Float32Array(B * T * O);
      ySeq.forEach((yt, t) => {
        for (let b = 0; b < B; b++) yStream.set(yt.subarray(b * O, (b + 1) * O), timeMajor ? (t * B + b) * O : (b * T + t) * O);
      });
    }
    const stream = { y: scaledMax(yStream, a.y) };
    for (const name of index.outputs) if (STATE_OF[name]) stream[name] = scaledMax(state[STATE_OF[name]], a[name]);
    rows.push({ case: c.name, mode: 'stream (1 step per call)', errors: stream, tolerance: c.tolerance, y: Array.from(yStream.slice(0, 4)) });
  }
  // worst: the output closest to (or furthest over) its bound; failing: every output over its bound.
  let maxError = 0, pass = true, worst = null;
  const failing = [];
  for (const r of rows) {
    for (const [k, e] of Object.entries(r.errors)) {
      maxError = Math.max(maxError, e);
      const at = { case: r.case, mode: r.mode, output: k, error: e, bound: r.tolerance[k] };
      if (!worst || !(e / r.tolerance[k] <= worst.error / worst.bound)) worst = at;
      if (!(e <= r.tolerance[k])) { pass = false; failing.push(at); }
    }
  }
  return { rows, maxError, pass, worst, failing };
}

// Python's '%.2e' (1.23e-02), so a failure reads the same here as in lstm-edge.
const exp2 = (v) => (Number.isFinite(v) ? v.toExponential(2).replace(/e([+-])(\d)$/, 'e$10$2') : Number.isNaN(v) ? 'nan' : 'inf');

// The one line a failed check prints, in lstm-edge's own words (runtimes/self_check.py, refusal): the runtime, the
// variant, the bundle, and the worst case/mode/output by error over its bound, with both; null when every row passed.
export function refusal(result, runtime, variant, name) {
  let w = null;
  for (const r of result.rows) {
    for (const [k, e] of Object.entries(r.errors)) {
      const ratio = Number.isNaN(e) ? Infinity : e / r.tolerance[k];
      if (w === null || ratio > w.ratio) w = { ratio, r, k, e };
    }
  }
  if (w === null || w.e <= w.r.tolerance[w.k]) return null;
  return `self-check failed: ${runtime}'s answers for the ${variant} variant of ${name} disagree with its golden case ` +
    `${w.r.case} (${w.r.mode}) ${w.k} max scaled error ${exp2(w.e)} > bound ${exp2(w.r.tolerance[w.k])}`;
}

// A golden .bin as the typed array its dtype names (little-endian, as every platform ORT runs on).
export function typedArray(bytes, dtype) {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return dtype === 'int64' ? new BigInt64Array(buf) : new Float32Array(buf);
}
