// Every error code the code can raise is listed in docs/errors.md, which users match codes against.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

it('docs/errors.md lists every HSB_ code in src/', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const codes = new Set(sources(join(ROOT, 'src')).flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/'(HSB_[A-Z0-9_]+)'/g)].map((m) => m[1]!)));
  assert.ok(codes.size > 20, `found ${codes.size} codes`);
  const missing = [...codes].filter((c) => !doc.includes(`\`${c}\``)).sort();
  assert.deepEqual(missing, [], 'codes raised in src/ but not described in docs/errors.md');
});
