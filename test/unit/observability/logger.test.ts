// Objects logged whole (a config section, a request's headers) must not print a credential.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/observability/logger.ts';
import { registerSecrets } from '../../../src/observability/scrub.ts';

it('redacts credential fields up to four levels deep, whatever object carries them', () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
  const log = createLogger('info', sink);
  log.info({
    config: {
      server: { apiTokens: ['API-TOKEN-LOG-1'] },
      sources: { h: { credentials: { username: 'robot', password: 'HARBOR-PW-LOG' }, webhookSecrets: ['WH-SECRET-LOG'] } },
      swr: { accessKey: 'AK-LOG-0001', secretKey: 'SK-LOG-0001', iamToken: 'IAM-TOKEN-LOG' },
    },
    req: { headers: { authorization: 'Basic QUJDOkRFRg==', 'x-auth-token': 'X-AUTH-LOG' } },
    token: 'TOKEN-LOG',
    repository: 'library/nginx',
  }, 'logged whole');
  const out = lines.join('');
  for (const s of ['API-TOKEN-LOG-1', 'HARBOR-PW-LOG', 'WH-SECRET-LOG', 'AK-LOG-0001', 'SK-LOG-0001', 'IAM-TOKEN-LOG', 'QUJDOkRFRg', 'X-AUTH-LOG', 'TOKEN-LOG']) {
    assert.ok(!out.includes(s), `${s} in ${out}`);
  }
  assert.match(out, /"repository":"library\/nginx"/);
  assert.match(out, /\[redacted\]/);
});

it('scrubs an err, as a string or an error with its causes, of registered and credential-shaped values', () => {
  registerSecrets(['Log-Err-Secret-99']);
  const lines: string[] = [];
  const log = createLogger('info', new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } }));
  log.error({ err: new Error('outer failed with Log-Err-Secret-99', { cause: new Error('inner: Authorization: Bearer abcDEF123456789') }) }, 'an error object');
  log.warn({ err: 'string err with Log-Err-Secret-99' }, 'an error message');
  const out = lines.join('');
  assert.doesNotMatch(out, /Log-Err-Secret-99|abcDEF123456789/);
  assert.match(out, /outer failed with \[redacted\]/);
  assert.match(out, /inner: Authorization: Bearer \[redacted\]/, 'the cause is printed, scrubbed');
  assert.match(out, /"err":"string err with \[redacted\]"/);
});
