// npm test: run the model with onnxruntime-node against the golden vectors; exit 1 on any mismatch.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { checkAll, refusal, typedArray } from './parity.mjs';

const here = new URL('.', import.meta.url);
const manifest = JSON.parse(await readFile(new URL('manifest.json', here), 'utf8'));
const index = JSON.parse(await readFile(new URL('golden/index.json', here), 'utf8'));
const session = await ort.InferenceSession.create(new URL(manifest.embed.model, here).pathname);
const readBin = async (file, dtype) => typedArray(await readFile(new URL(`golden/${file}`, here)), dtype);
const result = await checkAll(ort, session, index, readBin);
for (const r of result.rows) {
  const errors = Object.entries(r.errors).map(([k, e]) => `${k} ${e.toExponential(2)}`).join('  ');
  console.log(`${r.case.padEnd(16)} ${r.mode.padEnd(26)} ${errors}`);
}
console.log(`max error ${result.maxError.toExponential(3)} (${manifest.embed.variant}) — ${result.pass ? 'PASS' : 'FAIL'}`);
const version = (ort.env.versions && (ort.env.versions.node || ort.env.versions.common)) || '';
const why = refusal(result, `onnxruntime-node ${version} (cpu)`, manifest.embed.variant, manifest.name);
if (why) console.error(`error: ${why} — do not use its answers; a bundle altered since export fails every runtime, a runtime fault this one alone: re-copy the folder, or try another variant (lstm-edge bundle --variant)`);
process.exit(result.pass ? 0 : 1);
