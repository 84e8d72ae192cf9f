import { test } from 'node:test';
import assert from 'node:assert/strict';
import { swrEndpoints } from '../../../src/swr/endpoints.ts';
import { defaultManifestFormat, swrLimits } from '../../../src/swr/limits.ts';
import { BridgeError } from '../../../src/errors.ts';

const base = { id: 't', domain: 'myhuaweicloud.com' } as const;

test('endpoints derive from the region with the default domain; project defaults to the region', () => {
  assert.deepEqual(swrEndpoints({ ...base, region: 'cn-north-4' }), {
    registryUrl: 'https://swr.cn-north-4.myhuaweicloud.com',
    apiUrl: 'https://swr-api.cn-north-4.myhuaweicloud.com',
    project: 'cn-north-4',
    region: 'cn-north-4',
  });
});

test('a European domain changes both hosts', () => {
  const ep = swrEndpoints({ ...base, region: 'eu-west-101', domain: 'myhuaweicloud.eu' });
  assert.equal(ep.registryUrl, 'https://swr.eu-west-101.myhuaweicloud.eu');
  assert.equal(ep.apiUrl, 'https://swr-api.eu-west-101.myhuaweicloud.eu');
});

test('explicit URLs and project win over derivation', () => {
  const ep = swrEndpoints({ ...base, region: 'ap-southeast-1', registryUrl: 'https://reg.example/', apiUrl: 'http://127.0.0.1:9000', project: 'ap-southeast-1_proj' });
  assert.deepEqual(ep, { registryUrl: 'https://reg.example', apiUrl: 'http://127.0.0.1:9000', project: 'ap-southeast-1_proj', region: 'ap-southeast-1' });
});

test('without a region, both URLs are needed', () => {
  assert.throws(() => swrEndpoints({ ...base, registryUrl: 'https://reg.example' }), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_CONFIG');
  const ep = swrEndpoints({ ...base, registryUrl: 'https://reg.example', apiUrl: 'https://api.example' });
  assert.equal(ep.project, undefined);
});

test('a domain that is not a DNS name is rejected', () => {
  assert.throws(() => swrEndpoints({ ...base, region: 'cn-north-4', domain: 'evil.com/x' }), (e: unknown) => e instanceof BridgeError && e.code === 'HSB_SWR_CONFIG');
});

test('SWR limits default to 15 req/s and concurrency 16, configured values kept', () => {
  assert.deepEqual(swrLimits({ concurrency: 8 }), { concurrency: 8, requestsPerSecond: 15 });
  assert.deepEqual(swrLimits({ concurrency: 4, requestsPerSecond: 5, speedKbps: 100 }), { concurrency: 4, requestsPerSecond: 5, speedKbps: 100 });
  assert.deepEqual(swrLimits(), { concurrency: 16, requestsPerSecond: 15 });
});

test('manifest format follows the edition', () => {
  assert.equal(defaultManifestFormat('basic'), 'docker');
  assert.equal(defaultManifestFormat('enterprise'), 'preserve');
});
