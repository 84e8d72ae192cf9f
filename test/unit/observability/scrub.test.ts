// Error messages leave the process (logs, dead letters, the API, the CLI): what a server quoted
// back must not carry a credential, whether the config gave it or it only has a credential's shape.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDACTED, basicSecretOf, quoteUpstream, registerSecrets, scrubSecrets } from '../../../src/observability/scrub.ts';
import { BridgeError } from '../../../src/errors.ts';
import { loadConfig } from '../../../src/config/load.ts';

it('redacts credentials by their shape in headers and JSON', () => {
  const cases: [string, string][] = [
    ['bad credentials in "Basic cm9ib3QkYnJpZGdlOlIwYm90LVNlY3JldA=="', `bad credentials in "Basic ${REDACTED}"`],
    ['got Authorization: Bearer eyJhbGciOi.JzdWIiOi.sig-nature', `got Authorization: Bearer ${REDACTED}`],
    ['header:SDK-HMAC-SHA256 Access=HPUAEXAMPLEAK0000001, SignedHeaders=content-type;host;x-sdk-date, Signature=9f2c4e',
      `header:SDK-HMAC-SHA256 Access=${REDACTED}, SignedHeaders=content-type;host;x-sdk-date, Signature=${REDACTED}`],
    ['X-Auth-Token: MIIXsQYJKoZIhvcNAQcCoIIXojCCF', `X-Auth-Token: ${REDACTED}`],
    ['authorization=abc123def', `authorization=${REDACTED}`],
    ['{"username":"u","password":"hunter2-pw","token" : "t0k"}', `{"username":"u","password":"${REDACTED}","token" : "${REDACTED}"}`],
    // Schemes in any case (RFC 9110), a user and password in a URL, form fields.
    ['Authorization: bearer eyJhbGciOi.JzdWIiOi.sig', `Authorization: bearer ${REDACTED}`],
    ['authorization: basic dXNlcjpwYXNzd29yZA==', `authorization: basic ${REDACTED}`],
    ['redirected to https://user:hunter2secret@host.example.com/path', `redirected to https://${REDACTED}@host.example.com/path`],
    ['body grant_type=password&username=bridge&password=hunter2secret&scope=x', `body grant_type=password&username=bridge&password=${REDACTED}&scope=x`],
  ];
  for (const [text, want] of cases) assert.equal(scrubSecrets(text), want, text);
});

it('leaves what operators need: digests, repositories, registry codes and ordinary words', () => {
  const text = 'manifest sha256:0f3c9c1e7b6d4a5f2e8b9c0d1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b of team-a/platform/services/payment-gateway:1.2.3 '
    + 'at registry.example.com: HTTP 401 UNAUTHORIZED authentication required (request 5f1c9a2e-7d3b-4c8e-9a1f-2b3c4d5e6f70); Basic auth is required';
  for (const plain of [text, 'no credentials here', 'bearer token needed but no realm known', 'Bearer realm="https://auth.example.com/token",service="registry"', 'SWR Basic converts OCI indexes']) {
    assert.equal(scrubSecrets(plain), plain);
  }
});

it('redacts registered values, the longest first, and ignores values too short to be credentials', () => {
  registerSecrets(['scrub-test-Secret-1', 'scrub-test-Secret-1-longer', 'abc']);
  assert.equal(scrubSecrets('a scrub-test-Secret-1-longer and a scrub-test-Secret-1.'), `a ${REDACTED} and a ${REDACTED}.`);
  assert.equal(scrubSecrets('abc stays'), 'abc stays');
});

it('leaves weak registered values alone: they would rewrite the message and show where they stand', () => {
  registerSecrets(['registry', 'harbor', 'library', '12345678']);
  const text = 'registry refused the credentials (GET library/app:1.0) at registry.lab:5000: cannot reach Harbor at https://harbor.example.com, request 12345678';
  assert.equal(scrubSecrets(text), text);
});

it('quotes upstream text on one line, scrubbed and capped', () => {
  assert.equal(quoteUpstream('  two\nlines\t here  '), 'two lines here');
  const long = quoteUpstream(`Bearer abc.DEF-123 ${'x'.repeat(500)}`);
  assert.ok(long.startsWith(`Bearer ${REDACTED} `));
  assert.equal(long.length, 201);
  assert.ok(long.endsWith('…'));
});

it('every BridgeError message is scrubbed of the credentials a loaded config resolved, in every form', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hsb-scrub-'));
  const file = join(dir, 'bridge.yaml');
  writeFileSync(join(dir, 'sk'), 'Sk-From-A-File-0001\n');
  writeFileSync(file, `
server: { apiTokens: ["\${SCRUB_API_TOKEN}"] }
sources:
  - id: h
    url: https://harbor.example.com
    credentials: { username: "robot$scrub", password: "\${SCRUB_HARBOR_PW}" }
    webhookSecrets: ["Bearer scrub-webhook-secret"]
targets:
  - { id: s, kind: swr, region: cn-north-4, credentials: { accessKey: "AK-SCRUB-0001", secretKey: "file:${join(dir, 'sk')}" } }
`);
  loadConfig(file, { SCRUB_API_TOKEN: 'api-token-scrub-0001', SCRUB_HARBOR_PW: 'Harbor-Pw-Scrub-1' });
  const secrets = ['api-token-scrub-0001', 'Harbor-Pw-Scrub-1', basicSecretOf('robot$scrub', 'Harbor-Pw-Scrub-1'), 'scrub-webhook-secret', 'AK-SCRUB-0001', 'Sk-From-A-File-0001'];
  const e = new BridgeError('HSB_TEST', `upstream said: ${secrets.join(' | ')}`);
  for (const s of secrets) assert.ok(!e.message.includes(s), `${s} in ${e.message}`);
  assert.equal(e.message, `upstream said: ${secrets.map(() => REDACTED).join(' | ')}`);
  assert.equal(JSON.stringify(e.toJSON()).includes('Harbor-Pw-Scrub-1'), false);
});
