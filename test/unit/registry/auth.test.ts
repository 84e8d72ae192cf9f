import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Authenticator, basicAuthorization } from '../../../src/registry/auth.ts';
import { parseWwwAuthenticate } from '../../../src/registry/www-authenticate.ts';
import type { BridgeError } from '../../../src/errors.ts';

const challenge = (scope?: string) => parseWwwAuthenticate(`Bearer realm="https://auth.example/token",service="reg"${scope ? `,scope="${scope}"` : ''}`);

function fakeTokens(ttl = 300) {
  const calls: URL[] = [];
  const headers: Record<string, string>[] = [];
  let n = 0;
  return {
    calls, headers,
    fetchToken: async (url: URL, h: Record<string, string>) => {
      calls.push(url); headers.push(h);
      return { status: 200, body: JSON.stringify({ token: `t${++n}`, expires_in: ttl }) };
    },
  };
}

test('starts anonymous; a bearer challenge fetches a token for the merged scopes, with robot names encoded', async () => {
  const f = fakeTokens();
  const a = new Authenticator({ credentials: { username: 'robot$bridge', password: 's3:cret' }, fetchToken: f.fetchToken });
  assert.equal(await a.authorization(['repository:a:pull']), undefined);
  const scopes = ['repository:dst:pull,push', 'repository:src:pull'];
  assert.equal(await a.challenged(challenge('repository:dst:pull,push'), scopes, undefined), true);
  assert.equal(await a.authorization(scopes), 'Bearer t1');
  const url = f.calls[0]!;
  assert.equal(url.searchParams.get('service'), 'reg');
  assert.deepEqual(url.searchParams.getAll('scope'), ['repository:dst:pull,push', 'repository:src:pull']);
  assert.equal(url.searchParams.get('account'), 'robot$bridge');
  assert.match(url.href, /account=robot%24bridge/);
  assert.equal(f.headers[0]!.authorization, basicAuthorization({ username: 'robot$bridge', password: 's3:cret' }));
  assert.equal(Buffer.from(f.headers[0]!.authorization!.slice(6), 'base64').toString(), 'robot$bridge:s3:cret');
});

test('tokens are cached per scope set until shortly before expiry; concurrent callers share one fetch', async () => {
  let now = 1_000_000;
  const f = fakeTokens(60);
  const a = new Authenticator({ fetchToken: f.fetchToken, now: () => now });
  await a.challenged(challenge(), ['repository:a:pull'], undefined);
  assert.equal(f.calls.length, 1);
  const same = await Promise.all([1, 2, 3].map(() => a.authorization(['repository:a:pull'])));
  assert.deepEqual(same, ['Bearer t1', 'Bearer t1', 'Bearer t1']);
  const other = await Promise.all([1, 2].map(() => a.authorization(['repository:b:pull'])));
  assert.deepEqual(other, ['Bearer t2', 'Bearer t2']);
  assert.equal(f.calls.length, 2);
  now += 53_000; // 60 s token, refreshed 6 s early
  assert.equal(await a.authorization(['repository:a:pull']), 'Bearer t1');
  now += 2_000;
  assert.equal(await a.authorization(['repository:a:pull']), 'Bearer t3');
});

test('a refused token is replaced once: the next challenge fetches a fresh one', async () => {
  const f = fakeTokens();
  const a = new Authenticator({ fetchToken: f.fetchToken });
  await a.challenged(challenge(), ['repository:a:pull'], undefined);
  const sent = await a.authorization(['repository:a:pull']);
  assert.equal(await a.challenged(challenge(), ['repository:a:pull'], sent), true);
  assert.equal(await a.authorization(['repository:a:pull']), 'Bearer t2');
});

test('basic: credentials after the first challenge; a second challenge means they are wrong', async () => {
  const a = new Authenticator({ credentials: { username: 'u', password: 'p' }, fetchToken: async () => { throw new Error('unused'); } });
  const basic = parseWwwAuthenticate('Basic realm="r"');
  assert.equal(await a.challenged(basic, [], undefined), true);
  const sent = await a.authorization([]);
  assert.equal(sent, 'Basic dTpw');
  assert.equal(await a.challenged(basic, [], sent), false);
  const anon = new Authenticator({ fetchToken: async () => { throw new Error('unused'); } });
  assert.equal(await anon.challenged(basic, [], undefined), false);
});

test('token server refusal is HSB_REGISTRY_UNAUTHORIZED; garbage is HSB_REGISTRY_PROTOCOL', async () => {
  const refusing = new Authenticator({ credentials: { username: 'u', password: 'bad' }, fetchToken: async () => ({ status: 401, body: '{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}' }) });
  await assert.rejects(refusing.challenged(challenge(), ['repository:a:pull'], undefined), (e: BridgeError) => e.code === 'HSB_REGISTRY_UNAUTHORIZED' && !e.message.includes('bad'));
  const garbage = new Authenticator({ fetchToken: async () => ({ status: 200, body: '<html>' }) });
  await assert.rejects(garbage.challenged(challenge(), ['repository:a:pull'], undefined), (e: BridgeError) => e.code === 'HSB_REGISTRY_PROTOCOL');
});

test('a caller that gives up does not fail the others sharing its token fetch', async () => {
  let hold: Promise<void> | undefined;
  let fetches = 0;
  const a = new Authenticator({
    credentials: { username: 'u', password: 'p' },
    // Like undici: a fetch given a signal fails when that signal aborts.
    fetchToken: async (_url, _h, signal?: AbortSignal) => {
      fetches++;
      if (hold) {
        await new Promise<void>((resolve, reject) => {
          hold!.then(resolve);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      return { status: 200, body: JSON.stringify({ token: `t${fetches}`, expires_in: 300 }) };
    },
  });
  assert.equal(await a.challenged(challenge(), ['repository:x:pull'], undefined), true);
  let release!: () => void;
  hold = new Promise<void>((r) => { release = r; });
  const stalled = new AbortController();
  const first = a.authorization(['repository:z:pull'], stalled.signal); // starts the fetch
  const second = a.authorization(['repository:z:pull'], new AbortController().signal); // shares it
  stalled.abort(new Error('task A stalled'));
  await assert.rejects(first, /task A stalled/);
  release();
  assert.equal(await second, 'Bearer t2');
  assert.equal(fetches, 2);
});

test('an HTTPS registry naming a plain-HTTP token realm does not get the credentials', async () => {
  const f = fakeTokens();
  const a = new Authenticator({ credentials: { username: 'u', password: 'p' }, fetchToken: f.fetchToken, secureRegistry: true });
  await assert.rejects(a.challenged(parseWwwAuthenticate('Bearer realm="http://auth.example/token",service="reg"'), ['repository:x:pull'], undefined),
    (e: BridgeError) => e.code === 'HSB_REGISTRY_PROTOCOL' && /not HTTPS/.test(e.message) && !e.message.includes('p@'));
  assert.equal(f.calls.length, 0, 'nothing was sent to the realm');
  // Anonymous pulls may still use a plain-HTTP realm: there is no secret to protect.
  const anon = new Authenticator({ fetchToken: f.fetchToken, secureRegistry: true });
  assert.equal(await anon.challenged(parseWwwAuthenticate('Bearer realm="http://auth.example/token"'), ['repository:x:pull'], undefined), true);
});
