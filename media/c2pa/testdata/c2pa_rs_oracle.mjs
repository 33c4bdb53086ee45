// Test oracle: validates files with c2pa-rs (npm @contentauth/c2pa-wasm)
// and prints, per file, one JSON line: the validation state, the failure
// codes of the active manifest and of its ingredients.
// Usage: node c2pa_rs_oracle.mjs ANCHORS.pem FILE...
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initSync, WasmReader } from '@contentauth/c2pa-wasm';

const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve('@contentauth/c2pa-wasm/c2pa.wasm')) });
const [anchorsPath, ...files] = process.argv.slice(2);
const context = JSON.stringify({
  trust: { trust_anchors: readFileSync(anchorsPath, 'utf8') },
  verify: { verify_trust: true },
});
for (const file of files) {
  const out = { file };
  try {
    const reader = await WasmReader.fromBytes('image/jpeg', readFileSync(file), context);
    const store = JSON.parse(reader.json());
    const results = store.validation_results || {};
    out.state = store.validation_state;
    out.failures = (results.activeManifest?.failure || []).map((s) => s.code);
    out.ingredientFailures = (results.ingredientDeltas || [])
      .flatMap((d) => d.validationDeltas?.failure || []).map((s) => s.code);
    reader.free();
  } catch (e) {
    out.error = String(e);
  }
  console.log(JSON.stringify(out));
}
