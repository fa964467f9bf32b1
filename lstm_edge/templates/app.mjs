import { checkAll, refusal, typedArray } from './parity.mjs';

const ort = globalThis.ort;
// Single-threaded WASM: a plain static server sends no cross-origin-isolation headers, so no SharedArrayBuffer.
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = new URL('./', location.href).href;

async function main() {
  const manifest = await (await fetch('manifest.json')).json();
  const index = await (await fetch('golden/index.json')).json();
  const session = await ort.InferenceSession.create(manifest.embed.model, { executionProviders: ['wasm'] });
  const readBin = async (file, dtype) => typedArray(new Uint8Array(await (await fetch(`golden/${file}`)).arrayBuffer()), dtype);
  const result = await checkAll(ort, session, index, readBin);
  const body = document.querySelector('#results tbody');
  for (const r of result.rows) {
    const tr = document.createElement('tr');
    const err = (k) => (k in r.errors ? r.errors[k].toExponential(2) : '—');  // a GRU has no cn
    const cells = [r.case, r.mode, err('y'), err('hn'), err('cn'), r.y.map((v) => v.toFixed(4)).join(', ')];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    body.appendChild(tr);
  }
  document.getElementById('max-error').textContent = result.maxError.toExponential(3);
  const w = result.worst;
  const where = (c) => `${c.output} in ${c.case}, ${c.mode}: ${c.error.toExponential(3)}`;
  const at = (c) => `${where(c)}, bound ${c.bound.toExponential(2)}`;
  document.getElementById('bound').textContent = w ? w.bound.toExponential(2) : '—';
  document.getElementById('worst').textContent = w ? where(w) : '—';
  document.getElementById('failing').textContent = result.failing.length ? result.failing.map(at).join('; ') : 'none';
  document.getElementById('bound-why').textContent = index.bound ? index.bound.reason : '';
  const verdict = manifest.embed.verdict || 'deployable';
  document.getElementById('quantize-verdict').textContent = verdict === 'deployable' ? 'deployable'
    : `${verdict} — quantize measured this variant over its budget (or could not measure it): the page checks its `
      + 'parity only; see quantization.md in the bundle';
  document.body.dataset.verdict = verdict;
  document.getElementById('verdict').textContent = result.pass ? 'PASS' : 'FAIL';
  const version = (ort.env.versions && (ort.env.versions.web || ort.env.versions.common)) || '';
  const why = refusal(result, `onnxruntime-web ${version} (wasm)`, manifest.embed.variant, manifest.name);
  if (why) document.getElementById('log').textContent = `error: ${why} — do not use its answers; a bundle altered since export fails every runtime, a runtime fault this one alone: re-copy the folder, or try another variant (lstm-edge bundle --variant)`;
  document.body.dataset.parity = result.pass ? 'pass' : 'fail';
}

main().catch((e) => {
  document.getElementById('log').textContent = String(e && e.stack || e);
  document.getElementById('verdict').textContent = 'FAIL (error)';
  document.body.dataset.parity = 'fail';
});
