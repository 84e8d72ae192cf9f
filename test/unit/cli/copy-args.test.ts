// The copy sub-command's pure parts: references, credentials, list files, defaulting of the
// destination tag, argv parsing and the largest-first order of a corpus.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost } from '../../../src/cli/loopback.ts';
import {
  parseImageRef, formatRef, parseCreds, parseCopyList, resolvePair, parseCopyArgv, manifestBytes, largestFirst, planJobs,
} from '../../../src/cli/copy.ts';

const D = `sha256:${'ab'.repeat(32)}`;

test('parseImageRef: host, port, nested repository, tag and digest', () => {
  assert.deepEqual(parseImageRef('127.0.0.1:5000/team/app:v1'), { registry: '127.0.0.1:5000', url: 'http://127.0.0.1:5000', repo: 'team/app', tag: 'v1' });
  assert.deepEqual(parseImageRef(`swr.cn-north-4.myhuaweicloud.com/org/app@${D}`), { registry: 'swr.cn-north-4.myhuaweicloud.com', url: 'https://swr.cn-north-4.myhuaweicloud.com', repo: 'org/app', digest: D });
  assert.deepEqual(parseImageRef(`harbor.example.com:8443/a/b/c:1.0@${D}`), { registry: 'harbor.example.com:8443', url: 'https://harbor.example.com:8443', repo: 'a/b/c', tag: '1.0', digest: D });
  assert.deepEqual(parseImageRef('registry.example.org/app'), { registry: 'registry.example.org', url: 'https://registry.example.org', repo: 'app' });
});

test('parseImageRef: scheme from loopback, --plain-http or an explicit prefix', () => {
  assert.equal(parseImageRef('localhost:5000/app:v1').url, 'http://localhost:5000');
  assert.equal(parseImageRef('[::1]:5000/app').url, 'http://[::1]:5000');
  assert.equal(parseImageRef('registry.lan:5000/app', { plainHttp: true }).url, 'http://registry.lan:5000');
  assert.equal(parseImageRef('https://127.0.0.1:5000/app').url, 'https://127.0.0.1:5000');
  assert.equal(parseImageRef('http://registry.lan/app').url, 'http://registry.lan');
  assert.equal(parseImageRef('docker://registry.lan/app:v2').url, 'https://registry.lan');
  assert.equal(parseImageRef('docker://registry.lan/app:v2').tag, 'v2');
});

test('isLoopbackHost', () => {
  for (const h of ['127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', 'localhost', 'localhost:1', '[::1]', '[::1]:5000']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['10.0.0.1:5000', 'example.com', '127.0.0.1.example.com', 'localhost.example.com:5000', '[::2]:5000']) assert.equal(isLoopbackHost(h), false, h);
});

test('parseImageRef: refuses what a registry would refuse, naming the input', () => {
  for (const bad of ['app:v1', '/app', 'host:5000/App', 'host/app:', 'host/app:-x', `host/app@sha256:${'z'.repeat(64)}`, 'host/app@sha256:abc', 'ho st/app', 'host//app', 'host/app/']) {
    assert.throws(() => parseImageRef(bad), (e: Error & { code?: string }) => e.code === 'HSB_CLI_USAGE' && e.message.includes('invalid image reference'), bad);
  }
});

test('parseImageRef: credentials written into a reference are not repeated in the error', () => {
  for (const input of ['https://alice:Sup3rS3cret@harbor.example.com/library/a:1', 'alice:Sup3rS3cret@harbor.example.com/library/a:1']) {
    assert.throws(() => parseImageRef(input), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'HSB_CLI_USAGE');
      assert.doesNotMatch(e.message, /Sup3rS3cret|alice/);
      assert.match(e.message, /\[redacted\]@harbor\.example\.com\/library\/a:1.*credentials go in --src-creds \/ --dest-creds/);
      return true;
    }, input);
  }
});

test('parseImageRef: a reference without a host names its repository in the error', () => {
  assert.throws(() => parseImageRef(`busybox@${D}`), (e: Error) => e.message.includes(`"busybox@${D}"`) && !e.message.includes('[redacted]'));
});

test('formatRef round-trips', () => {
  for (const s of ['127.0.0.1:5000/team/app:v1', `h.example/app@${D}`, `h.example:1/a/b:t@${D}`, 'h.example/app']) assert.equal(formatRef(parseImageRef(s)), s);
});

test('parseCreds splits at the first colon; robot names keep their $', () => {
  assert.deepEqual(parseCreds('robot$bridge:p4ss:w0rd$', 'src'), { username: 'robot$bridge', password: 'p4ss:w0rd$' });
  assert.deepEqual(parseCreds('u:', 'dest'), { username: 'u', password: '' });
  assert.throws(() => parseCreds('nopassword', 'src'), /--src-creds expects USER:PASSWORD/);
  assert.throws(() => parseCreds(':secret', 'dest'), (e: Error) => e.message.includes('--dest-creds') && !e.message.includes('secret'));
});

test('parseCopyList: pairs, comments, blank lines, and the failing line number', () => {
  const text = '# corpus\n\na.example/x:1 b.example/x:1\n  a.example/y:2\tb.example/y:2   # trailing\r\n';
  assert.deepEqual(parseCopyList(text), [{ src: 'a.example/x:1', dst: 'b.example/x:1' }, { src: 'a.example/y:2', dst: 'b.example/y:2' }]);
  assert.deepEqual(parseCopyList('# nothing\n\n'), []);
  assert.throws(() => parseCopyList('a/x:1 b/x:1\na/y:2\n'), /line 2: expected "src-ref dst-ref", got 1/);
  assert.throws(() => parseCopyList('a/x b/x c/x'), /line 1: .* got 3/);
});

test('resolvePair: the destination tag, else the source tag, else by digest only', () => {
  const r = (s: string) => parseImageRef(s);
  assert.deepEqual(resolvePair(r('a.example/x:v1'), r('b.example/y:v2')), { srcRef: 'v1', dstTag: 'v2' });
  assert.deepEqual(resolvePair(r('a.example/x:v1'), r('b.example/y')), { srcRef: 'v1', dstTag: 'v1' });
  assert.deepEqual(resolvePair(r('a.example/x'), r('b.example/y')), { srcRef: 'latest', dstTag: 'latest' });
  assert.deepEqual(resolvePair(r(`a.example/x@${D}`), r('b.example/y')), { srcRef: D, dstTag: undefined });
  assert.deepEqual(resolvePair(r(`a.example/x:v1@${D}`), r('b.example/y:keep')), { srcRef: D, dstTag: 'keep' });
  assert.deepEqual(resolvePair(r('a.example/x:v1'), r(`b.example/y@${D}`)), { srcRef: 'v1', dstTag: undefined, expectDigest: D });
  assert.throws(() => resolvePair(r('a.example/x:v1'), r(`b.example/y:v1@${D}`)), /a tag or a digest, not both/);
});

test('parseCopyArgv: flags, repeated platforms, env credentials, strictness', () => {
  const p = parseCopyArgv(['--src-creds', 'robot$a:pw', '--format', 'docker', '--platform', 'linux/amd64', '--platform', 'linux/arm64/v8,linux/arm/v7', '--jobs', '4', '--plain-http', 'a/x:1', 'b/x:1']);
  assert.deepEqual(p.positionals, ['a/x:1', 'b/x:1']);
  assert.deepEqual(p.opts.srcCreds, { username: 'robot$a', password: 'pw' });
  assert.equal(p.opts.destCreds, undefined);
  assert.equal(p.opts.format, 'docker');
  assert.deepEqual(p.opts.platforms, ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
  assert.equal(p.opts.jobs, 4);
  assert.deepEqual(p.plain, { src: true, dst: true });

  const q = parseCopyArgv(['--src-insecure-http', '--from-file', 'l.txt'], {}, { HSB_DEST_CREDS: 'u:p', HSB_SRC_CREDS: 'x:y' });
  assert.equal(q.fromFile, 'l.txt');
  assert.deepEqual(q.plain, { src: true, dst: false });
  assert.deepEqual(q.opts.destCreds, { username: 'u', password: 'p' });
  assert.deepEqual(q.opts.srcCreds, { username: 'x', password: 'y' });
  assert.equal(q.opts.jobs, 8);
  assert.equal(q.opts.retries, 2);
  assert.equal(parseCopyArgv(['--retries', '0', 'a/x', 'b/x']).opts.retries, 0);
  assert.equal(q.opts.format, 'preserve');

  // A flag given by the caller (already parsed) counts; argv wins over it.
  assert.equal(parseCopyArgv(['a/x', 'b/x'], { format: 'docker', jobs: '2' }).opts.format, 'docker');
  assert.equal(parseCopyArgv(['--jobs', '3', 'a/x', 'b/x'], { jobs: '2' }).opts.jobs, 3);

  for (const bad of [['--formt', 'docker'], ['--format', 'oci'], ['--jobs', '0'], ['--jobs', 'x'], ['--retries', '-1'], ['--platform', 'amd64'], ['--src-creds', 'nocolon']]) {
    assert.throws(() => parseCopyArgv(bad), (e: Error & { code?: string }) => e.code === 'HSB_CLI_USAGE', bad.join(' '));
  }
});

test('manifestBytes sums config and layers, ignoring junk', () => {
  assert.equal(manifestBytes({ config: { size: 10 }, layers: [{ size: 100 }, { size: 1000 }] }), 1110);
  assert.equal(manifestBytes({ manifests: [{ size: 5 }] }), 0);
  assert.equal(manifestBytes({ config: { size: '9' }, layers: [{ size: -1 }, null, { size: 7 }] }), 7);
  assert.equal(manifestBytes(null), 0);
});

test('largestFirst: descending sizes, input order kept for ties', () => {
  assert.deepEqual(largestFirst(['a', 'b', 'c', 'd', 'e'], [5, 50, 5, 500, 0]), ['d', 'b', 'a', 'c', 'e']);
  assert.deepEqual(largestFirst(['a', 'b'], []), ['a', 'b']);
});

test('planJobs: tags of one artifact into one repository share a job; jobs largest first', () => {
  const it = (name: string, dstKey: string, digest: string | undefined, bytes: number) => ({ name, dstKey, ...(digest ? { digest } : {}), bytes });
  const jobs = planJobs([
    it('web:v1', 'dst/web', 'sha256:a', 100),
    it('web:latest', 'dst/web', 'sha256:b', 300),
    it('web:v2', 'dst/web', 'sha256:b', 300),
    it('mirror-web:v2', 'dst/mirror-web', 'sha256:b', 300),
    it('ml:v1', 'dst/ml', 'sha256:c', 2000),
    it('broken:1', 'dst/broken', undefined, 0),
    it('broken:2', 'dst/broken', undefined, 0),
  ]);
  assert.deepEqual(jobs.map((j) => j.map((x) => x.name)), [
    ['ml:v1'], ['web:latest', 'web:v2'], ['mirror-web:v2'], ['web:v1'], ['broken:1'], ['broken:2'],
  ]);
});
