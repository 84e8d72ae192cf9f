// The one-pass Produce encoder against kafkajs' own: for generated requests (unicode and binary
// keys and values, tombstones, headers, several topics and partitions, explicit timestamps, large
// producer ids) both must write the same bytes, and inputs outside the plain case are left to kafkajs.
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { crc32c, encodeProduceRequest, encodings, fastProduceEncoding, kafkajsProduceV3, type ProduceRequestInput } from '../../../src/bus/kafka/produce-encoding.ts';

const require = createRequire(import.meta.url);
type Factory = (input: ProduceRequestInput) => { encode: () => Promise<{ buffer: Buffer }> };
// kafkajs' own v3 request: the module now holds ours (installed on import).
const kafkajsV3 = kafkajsProduceV3 as unknown as Factory;
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): unknown };
const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;

const NOW = 1_763_900_000_123;

async function kafkajsBytes(input: ProduceRequestInput): Promise<Buffer> {
  const now = mock.method(Date, 'now', () => NOW);
  try {
    return (await kafkajsV3(input).encode()).buffer;
  } finally {
    now.mock.restore();
  }
}

const bytes = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constant(null),
);
const message = fc.record({
  key: bytes,
  value: fc.oneof(bytes, fc.string({ minLength: 200, maxLength: 3000 })),
  headers: fc.option(fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 3 })), { maxKeys: 3 }), { nil: undefined }),
  timestamp: fc.option(fc.oneof(fc.integer({ min: 1, max: 4_000_000_000_000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })), { nil: undefined }),
}, { requiredKeys: ['key', 'value'] });
const request = fc.record({
  acks: fc.constantFrom(-1, 0, 1),
  timeout: fc.integer({ min: 0, max: 60000 }),
  producerId: fc.bigInt({ min: -1n, max: 2n ** 62n }),
  producerEpoch: fc.integer({ min: 0, max: 32767 }),
  topicData: fc.array(fc.record({
    topic: fc.string({ minLength: 1, maxLength: 40 }),
    partitions: fc.array(fc.record({
      partition: fc.integer({ min: 0, max: 200 }),
      firstSequence: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      messages: fc.array(message, { minLength: 1, maxLength: 12 }),
    }), { minLength: 1, maxLength: 4 }),
  }), { minLength: 1, maxLength: 3 }),
});

/** A partition whose timestamp deltas (against kafkajs' string-sorted first timestamp) pass ±2^52. */
function farDeltas(input: ProduceRequestInput): boolean {
  return input.topicData.some((t) => t.partitions.some((p) => {
    const stamps = p.messages.map((m) => m.timestamp as number | undefined).filter((x) => x != null).sort();
    const first = stamps[0] ?? NOW;
    return p.messages.some((m) => Math.abs(((m.timestamp as number | undefined) || NOW) - first) > 2 ** 52);
  }));
}

describe('Produce request encoding', () => {
  it('writes the bytes kafkajs writes, for generated requests', async () => {
    await fc.assert(fc.asyncProperty(request, async (r) => {
      // kafkajs carries the producer id as the decimal string InitProducerId decoded; a Long works too.
      const input: ProduceRequestInput = { ...r, producerId: r.producerId % 2n === 0n ? String(r.producerId) : Long.fromValue(r.producerId) };
      const ours = encodeProduceRequest(input, NOW);
      if (ours === undefined) assert.ok(farDeltas(input), 'only timestamp deltas past ±2^52 are left to kafkajs');
      else assert.deepEqual(ours, await kafkajsBytes(input));
    }), { numRuns: 400 });
  });

  it('writes the bytes kafkajs writes for an events batch as the bridge sends it', async () => {
    const value = JSON.stringify({ schema: 1, id: 'x'.repeat(64), repository: 'library/nginx', tag: 'v1', note: 'ünïcødé ✓' });
    const input: ProduceRequestInput = {
      acks: -1, timeout: 1500, producerId: Long.fromValue(7n), producerEpoch: 0,
      topicData: [{ topic: 'harbor-bridge.events', partitions: [0, 3, 5].map((partition) => ({
        partition, firstSequence: partition * 10, messages: Array.from({ length: 6 }, (_, i) => ({ key: `src/library/r${i}`, value })),
      })) }],
    };
    assert.deepEqual(encodeProduceRequest(input, NOW), await kafkajsBytes(input));
  });

  it('leaves compression, transactions and values it does not know to kafkajs', () => {
    const base: ProduceRequestInput = { acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v' }] }] }] };
    assert.ok(encodeProduceRequest(base));
    assert.equal(encodeProduceRequest({ ...base, compression: 1 }), undefined);
    assert.equal(encodeProduceRequest({ ...base, transactionalId: 'tx' }), undefined);
    const odd = (m: object) => encodeProduceRequest({ ...base, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v', ...m }] }] }] });
    assert.equal(odd({ value: 42 }), undefined);
    assert.equal(odd({ timestamp: '1700000000000' }), undefined);
    assert.equal(odd({ headers: { h: null } }), undefined);
    assert.equal(odd({ headers: null }), undefined);
    assert.equal(encodeProduceRequest({ ...base, compression: null as unknown as number }), undefined);
    assert.equal(encodeProduceRequest({ ...base, topicData: [{ ...base.topicData[0]!, topic: null as unknown as string }] }), undefined);
    // Timestamps whose deltas pass ±2^52 (kafkajs sorts them as strings): the zigzag varlong would round.
    const far = encodeProduceRequest({ ...base, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [
      { key: 'a', value: 'v', timestamp: 4_503_599_627_370_506 }, { key: 'b', value: 'v', timestamp: 9 },
    ] }] }] });
    assert.equal(far, undefined);
  });

  it('computes CRC-32C as kafkajs does, at every length and alignment', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(7), (a, skip) => {
      const buf = Buffer.from(a);
      assert.equal(crc32c(buf), kafkajsCrc(buf));
      assert.equal(crc32c(buf, Math.min(skip, buf.length)), kafkajsCrc(buf.subarray(Math.min(skip, buf.length))));
    }), { numRuns: 2000 });
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283); // the CRC-32C check value
  });

  it('takes over kafkajs Produce v3 to v7 once installed, and hands back what it does not cover', async () => {
    assert.equal(fastProduceEncoding, true);
    assert.notEqual(require('kafkajs/src/protocol/requests/produce/v3/request.js'), kafkajsV3);
    const input: ProduceRequestInput = { acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, messages: [{ key: 'k', value: 'v' }] }] }] };
    const v7 = require('kafkajs/src/protocol/requests/produce/v7/request.js') as Factory;
    const before = { ...encodings };
    const now = mock.method(Date, 'now', () => NOW);
    try {
      assert.deepEqual((await v7(input).encode()).buffer, encodeProduceRequest(input, NOW));
      assert.ok((await v7({ ...input, compression: 1 }).encode()).buffer.length > 0); // gzip: kafkajs' own
    } finally {
      now.mock.restore();
    }
    assert.deepEqual(encodings, { here: before.here + 1, kafkajs: before.kafkajs + 1 });
  });
});
