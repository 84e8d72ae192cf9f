import { createRequire } from 'node:module';
import { replaceBeforeLoad } from './module-patch.ts';

// The Produce request body (versions 3 to 7 share it) with its record batches (magic 2), written
// in one pass into one buffer. kafkajs 2.2.4 builds the same bytes through a growing buffer per
// record, a Buffer.from() per varint and BigInt arithmetic per timestamp: about 6 µs per record,
// more than the rest of the producer's CPU per webhook. This encoder writes the identical bytes (a test
// compares them with kafkajs' own for generated requests) in well under a microsecond per record.
// Anything outside the plain case (compression, transactions, unusual field types) is left to
// kafkajs. Format: https://kafka.apache.org/documentation/#recordbatch and the Produce request
// schema (ProduceRequest.json).

/** What kafkajs hands its Produce request factory. */
export interface ProduceRequestInput {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: { partition: number; firstSequence?: number; messages: ProduceMessage[] }[] }[];
}

export interface ProduceMessage {
  key?: unknown;
  value?: unknown;
  headers?: unknown;
  timestamp?: unknown;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), slicing by 8.
const CRC_TABLES = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  }
  return t;
})();

/** CRC-32C of buf[start, end), unsigned. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = CRC_TABLES;
  let crc = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc = t[1792 + (lo & 0xff)]! ^ t[1536 + ((lo >>> 8) & 0xff)]! ^ t[1280 + ((lo >>> 16) & 0xff)]! ^ t[1024 + (lo >>> 24)]!
      ^ t[768 + buf[i + 4]!]! ^ t[512 + buf[i + 5]!]! ^ t[256 + buf[i + 6]!]! ^ t[buf[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** Bytes of a zigzag varint (32-bit) or varlong (up to 2^53) of v. */
function varSize(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    z = Math.floor(z / 128);
    n++;
  }
  return n;
}

function writeVar(buf: Buffer, at: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[at++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[at++] = z;
  return at;
}

type Bytes = string | Buffer | null;

/** A key, value or header value as kafkajs writes it: null, raw bytes, or the UTF-8 of String(v). */
function bytesOf(v: unknown): Bytes | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || Buffer.isBuffer(v)) return v;
  return undefined;
}

const byteLength = (b: Bytes): number => (b === null ? -1 : typeof b === 'string' ? Buffer.byteLength(b) : b.length);

function writeBytes(buf: Buffer, at: number, b: Bytes, len: number): number {
  at = writeVar(buf, at, len);
  if (b === null) return at;
  if (typeof b === 'string') return at + buf.write(b, at, len, 'utf8');
  b.copy(buf, at);
  return at + len;
}

interface PlannedRecord { key: Bytes; keyLen: number; value: Bytes; valueLen: number; headers: [string, number, Bytes, number][]; tsDelta: number; body: number }
interface PlannedBatch { partition: number; firstSequence: number; firstTimestamp: number; maxTimestamp: number; records: PlannedRecord[]; size: number }

/** One message as a record, or undefined when it is not the plain case. */
function planRecord(m: ProduceMessage, offsetDelta: number, tsDelta: number): PlannedRecord | undefined {
  const key = bytesOf(m.key);
  const value = bytesOf(m.value);
  // Beyond ±2^52 the zigzag value no longer fits a double exactly.
  if (key === undefined || value === undefined || !Number.isSafeInteger(tsDelta) || Math.abs(tsDelta) > 2 ** 52) return undefined;
  const headers: [string, number, Bytes, number][] = [];
  if (m.headers !== undefined) {
    if (typeof m.headers !== 'object' || m.headers === null || Array.isArray(m.headers)) return undefined;
    for (const [k, raw] of Object.entries(m.headers as Record<string, unknown>)) {
      for (const hv of Array.isArray(raw) ? raw : [raw]) {
        // kafkajs cannot size a null header value (it throws): that case stays with kafkajs.
        const b = bytesOf(hv);
        if (b === undefined || b === null) return undefined;
        headers.push([k, Buffer.byteLength(k), b, byteLength(b)]);
      }
    }
  }
  const keyLen = byteLength(key);
  const valueLen = byteLength(value);
  let body = 1 + varSize(tsDelta) + varSize(offsetDelta) + varSize(keyLen) + Math.max(0, keyLen) + varSize(valueLen) + Math.max(0, valueLen) + varSize(headers.length);
  for (const [, kl, , vl] of headers) body += varSize(kl) + kl + varSize(vl) + Math.max(0, vl);
  return { key, keyLen, value, valueLen, headers, tsDelta, body };
}

const RECORD_BATCH_OVERHEAD = 61; // firstOffset … record count
const CRC_OFFSET = 17;
const ATTRIBUTES_OFFSET = 21;

function planBatch(partition: number, firstSequence: number, messages: ProduceMessage[], now: number): PlannedBatch | undefined {
  let timestamps: number[] = [];
  for (const m of messages) {
    if (m.timestamp === undefined || m.timestamp === null) continue;
    if (typeof m.timestamp !== 'number' || !Number.isSafeInteger(m.timestamp)) return undefined;
    timestamps.push(m.timestamp);
  }
  // kafkajs sorts with Array#sort's default (string) order; the same order is kept here.
  timestamps = timestamps.length === 0 ? [now] : timestamps.sort();
  const firstTimestamp = timestamps[0]!;
  const maxTimestamp = timestamps[timestamps.length - 1]!;
  const records: PlannedRecord[] = [];
  let size = RECORD_BATCH_OVERHEAD;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const r = planRecord(m, i, ((m.timestamp as number | undefined) || now) - firstTimestamp);
    if (r === undefined) return undefined;
    records.push(r);
    size += varSize(r.body) + r.body;
  }
  return { partition, firstSequence, firstTimestamp, maxTimestamp, records, size };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A producer id as kafkajs carries it: the decimal string of its InitProducerId answer, a Long or a number. */
function int64Of(v: unknown): bigint | undefined {
  let n: bigint | undefined;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) n = BigInt(v);
  else {
    // kafkajs' Long keeps its BigInt in `value`.
    const inner = (v as { value?: unknown } | null)?.value;
    if (typeof inner === 'bigint') n = inner;
  }
  return n !== undefined && n >= INT64_MIN && n <= INT64_MAX ? n : undefined;
}

/**
 * The Produce (v3–v7) request body kafkajs would write for `input`, or undefined when the input is
 * outside the plain case this encoder covers (kafkajs then encodes it itself).
 */
export function encodeProduceRequest(input: ProduceRequestInput, now = Date.now()): Buffer | undefined {
  if ((input.compression !== undefined && input.compression !== 0) || (input.transactionalId !== undefined && input.transactionalId !== null)) return undefined;
  const producerId = input.producerId === undefined ? -1n : int64Of(input.producerId);
  if (producerId === undefined) return undefined;
  const producerEpoch = input.producerEpoch ?? 0;

  let size = 2 + 2 + 4 + 4; // transactional_id (null), acks, timeout, topic count
  const topics: { name: string; nameLen: number; batches: PlannedBatch[] }[] = [];
  for (const t of input.topicData) {
    if (typeof t.topic !== 'string') return undefined;
    const batches: PlannedBatch[] = [];
    const nameLen = Buffer.byteLength(t.topic);
    size += 2 + nameLen + 4;
    for (const p of t.partitions) {
      const b = planBatch(p.partition, p.firstSequence ?? 0, p.messages, now);
      if (b === undefined) return undefined;
      batches.push(b);
      size += 4 + 4 + b.size;
    }
    topics.push({ name: t.topic, nameLen, batches });
  }

  const buf = Buffer.allocUnsafe(size);
  let at = buf.writeInt16BE(-1, 0);
  at = buf.writeInt16BE(input.acks, at);
  at = buf.writeInt32BE(input.timeout, at);
  at = buf.writeInt32BE(topics.length, at);
  for (const t of topics) {
    at = buf.writeInt16BE(t.nameLen, at);
    at += buf.write(t.name, at, t.nameLen, 'utf8');
    at = buf.writeInt32BE(t.batches.length, at);
    for (const b of t.batches) {
      at = buf.writeInt32BE(b.partition, at);
      at = buf.writeInt32BE(b.size, at);
      const start = at;
      at = buf.writeBigInt64BE(0n, at); // firstOffset
      at = buf.writeInt32BE(b.size - 12, at); // batch length: what follows this field
      at = buf.writeInt32BE(0, at); // partitionLeaderEpoch
      at = buf.writeInt8(2, at); // magic
      at += 4; // crc, below
      at = buf.writeInt16BE(0, at); // attributes: no compression, not transactional
      at = buf.writeInt32BE(b.records.length - 1, at); // lastOffsetDelta
      at = buf.writeBigInt64BE(BigInt(b.firstTimestamp), at);
      at = buf.writeBigInt64BE(BigInt(b.maxTimestamp), at);
      at = buf.writeBigInt64BE(producerId, at);
      at = buf.writeInt16BE(producerEpoch, at);
      at = buf.writeInt32BE(b.firstSequence, at);
      at = buf.writeInt32BE(b.records.length, at);
      for (let i = 0; i < b.records.length; i++) {
        const r = b.records[i]!;
        at = writeVar(buf, at, r.body);
        buf[at++] = 0; // record attributes
        at = writeVar(buf, at, r.tsDelta);
        at = writeVar(buf, at, i);
        at = writeBytes(buf, at, r.key, r.keyLen);
        at = writeBytes(buf, at, r.value, r.valueLen);
        at = writeVar(buf, at, r.headers.length);
        for (const [k, kl, v, vl] of r.headers) {
          at = writeVar(buf, at, kl);
          at += buf.write(k, at, kl, 'utf8');
          at = writeBytes(buf, at, v, vl);
        }
      }
      buf.writeUInt32BE(crc32c(buf, start + ATTRIBUTES_OFFSET, at), start + CRC_OFFSET);
      if (at - start !== b.size) throw new Error('produce encoding: size mismatch');
    }
  }
  if (at !== size) throw new Error('produce encoding: size mismatch');
  return buf;
}

const PRODUCE_V3 = 'kafkajs/src/protocol/requests/produce/v3/request.js';
/** The versions that wrap v3 and bind it when they load (lazily, on the first produce). */
const WRAPPERS = [4, 5, 6, 7].map((v) => `kafkajs/src/protocol/requests/produce/v${v}/request.js`);
const ENCODER = 'kafkajs/src/protocol/encoder.js';

type KafkajsRequest = { apiKey: number; apiVersion: number; apiName: string; expectResponse: () => boolean; encode: () => Promise<unknown> };
type RequestFactory = (input: ProduceRequestInput) => KafkajsRequest;

/** Requests encoded here and left to kafkajs since install (read by the tests). */
export const encodings = { here: 0, kafkajs: 0 };

/** The body as a finished kafkajs Encoder (its `buf` and `offset`), so that nothing copies it again; undefined when Encoder does not read them back that way. */
function encoderShape(): ((body: Buffer) => object) | undefined {
  try {
    const Encoder = createRequire(import.meta.url)(ENCODER) as { prototype: object };
    const asEncoder = (body: Buffer) => Object.assign(Object.create(Encoder.prototype) as object, { buf: body, offset: body.length });
    const probe = asEncoder(Buffer.from([1, 2, 3])) as { buffer?: unknown; size?: () => unknown };
    return Buffer.isBuffer(probe.buffer) && probe.buffer.equals(Buffer.from([1, 2, 3])) && typeof probe.size === 'function' && probe.size() === 3 ? asEncoder : undefined;
  } catch {
    return undefined;
  }
}

function install(): RequestFactory | undefined {
  const asEncoder = encoderShape();
  if (!asEncoder) return undefined;
  return replaceBeforeLoad<RequestFactory>(PRODUCE_V3, WRAPPERS, 1, (original) => (input) => {
    const request = original(input);
    const kafkajsEncode = request.encode;
    return {
      ...request,
      encode: async () => {
        const body = encodeProduceRequest(input);
        if (body === undefined) {
          encodings.kafkajs++;
          return kafkajsEncode();
        }
        encodings.here++;
        return asEncoder(body);
      },
    };
  });
}

/**
 * kafkajs' own Produce v3 request (which v4–v7 wrap), kept for the tests; undefined when nothing
 * was replaced. Installed on import, in this process's module cache (see module-patch.ts).
 */
export const kafkajsProduceV3: RequestFactory | undefined = install();

/** True when kafkajs' Produce requests are written by encodeProduceRequest (false: by its own encoder). */
export const fastProduceEncoding: boolean = kafkajsProduceV3 !== undefined;
