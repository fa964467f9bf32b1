// Golden-vector check shared by the Node.js program and the browser page: the full sequence of every case, and
// the streaming case step by step carrying h and c, each against the PyTorch outputs shipped in golden/.
// Error = max |got - want| / max(1, |want|), the same scaled error lstm-edge verify uses.

function scaledMax(got, want) {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

export async function checkAll(ort, session, index, readBin) {
  const rows = [];
  const tensor = (data, shape) => new ort.Tensor('float32', data, shape);
  for (const c of index.cases) {
    const a = {};
    for (const [name, meta] of Object.entries(c.arrays)) a[name] = await readBin(meta.file);
    const shape = (name) => c.arrays[name].shape;
    const out = await session.run({ x: tensor(a.x, shape('x')), h0: tensor(a.h0, shape('h0')), c0: tensor(a.c0, shape('c0')) });
    const full = { y: scaledMax(out.y.data, a.y), hn: scaledMax(out.hn.data, a.hn), cn: scaledMax(out.cn.data, a.cn) };
    rows.push({ case: c.name, mode: 'full', errors: full, tolerance: c.tolerance, y: Array.from(out.y.data.slice(0, 4)) });
    if (!c.streaming) continue;
    const [B, T, F] = shape('x');
    const perStep = index.head === 'sequence' || index.head === 'none';  // y at every step (none: the raw LSTM output)
    let h = a.h0, cs = a.c0, y = null;
    const ySeq = [];
    for (let t = 0; t < T; t++) {
      const xt = new Float32Array(B * F);
      for (let b = 0; b < B; b++) xt.set(a.x.subarray((b * T + t) * F, (b * T + t + 1) * F), b * F);
      const o = await session.run({ x: tensor(xt, [B, 1, F]), h0: tensor(h, shape('h0')), c0: tensor(cs, shape('c0')) });
      h = o.hn.data; cs = o.cn.data; y = o.y.data;
      if (perStep) ySeq.push(y);
    }
    let yStream = y;
    if (perStep) {  // reassemble [B, T, O] from the per-step [B, 1, O]
      const O = y.length / B;
      yStream = new Float32Array(B * T * O);
      ySeq.forEach((yt, t) => { for (let b = 0; b < B; b++) yStream.set(yt.subarray(b * O, (b + 1) * O), (b * T + t) * O); });
    }
    const stream = { y: scaledMax(yStream, a.y), hn: scaledMax(h, a.hn), cn: scaledMax(cs, a.cn) };
    rows.push({ case: c.name, mode: 'stream (1 step per call)', errors: stream, tolerance: c.tolerance, y: Array.from(yStream.slice(0, 4)) });
  }
  let maxError = 0, pass = true;
  for (const r of rows) {
    for (const k of ['y', 'hn', 'cn']) {
      maxError = Math.max(maxError, r.errors[k]);
      if (!(r.errors[k] <= r.tolerance[k])) pass = false;
    }
  }
  return { rows, maxError, pass };
}
