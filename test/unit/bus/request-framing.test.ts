// kafkajs' request framing, replaced by a one-buffer version: the same bytes for every request, and
// installed when client.ts loads kafkajs (this file imports it before anything else touches kafkajs).
import '../../../src/bus/kafka/client.ts';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { frameRequest, kafkajsFraming, singleCopyFraming } from '../../../src/bus/kafka/request-framing.ts';
import { replaceBeforeLoad } from '../../../src/bus/kafka/module-patch.ts';

const require = createRequire(import.meta.url);
const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => { writeBuffer(b: Buffer): unknown; buffer: Buffer };

describe('request framing', () => {
  it('is what kafkajs connections load once client.ts has loaded kafkajs', () => {
    assert.equal(singleCopyFraming, true);
    assert.equal(require('kafkajs/src/protocol/request.js'), frameRequest);
    assert.equal(typeof kafkajsFraming, 'function');
  });

  it('writes the bytes kafkajs writes, for any client id, body size and header values', async () => {
    const rnd = (n: number) => Math.floor(Math.random() * n);
    const ids = [null, undefined, '', 'harbor-swr-bridge', 'ключ-客户端', 'x'.repeat(300)];
    for (let i = 0; i < 300; i++) {
      const body = Buffer.from(Array.from({ length: [0, 1, 511, 512, 4096, 20000][i % 6]! + rnd(3) }, () => rnd(256)));
      const input = {
        correlationId: rnd(2 ** 31), clientId: ids[i % ids.length],
        request: { apiKey: rnd(70), apiVersion: rnd(12), encode: async () => new Encoder().writeBuffer(body) as { buffer: Buffer } },
      };
      const ours = await frameRequest(input);
      const theirs = await kafkajsFraming!(input);
      assert.deepEqual(ours.buffer, theirs.buffer);
      assert.equal((ours as unknown as { size(): number }).size(), (theirs as unknown as { size(): number }).size());
    }
  });

  it('replaces nothing once the module that binds the target has loaded', () => {
    const before = require('kafkajs/src/protocol/request.js') as unknown;
    const got = replaceBeforeLoad('kafkajs/src/protocol/request.js', 'kafkajs/src/network/connection.js', 1, () => () => 'replaced');
    assert.equal(got, undefined);
    assert.equal(require('kafkajs/src/protocol/request.js'), before);
  });
});
