// Key → partition, for both adapters. Kafka's default partitioner (murmur2 of the key's UTF-8
// bytes), so a key lands in the same partition number on the embedded bus as on Kafka, and the
// Kafka adapter computes it with 32-bit integer maths instead of kafkajs' emulated 64-bit longs
// (which cost about a tenth of the ingest path's CPU).

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** 32-bit murmur2 of the first `length` bytes, as a signed int (Kafka's `Utils.murmur2`). */
export function murmur2(data: Uint8Array, length = data.length): number {
  let h = SEED ^ length;
  const whole = length - (length % 4);
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i]! & 0xff) | ((data[i + 1]! & 0xff) << 8) | ((data[i + 2]! & 0xff) << 16) | ((data[i + 3]! & 0xff) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  switch (length % 4) {
    case 3: h ^= (data[whole + 2]! & 0xff) << 16; // falls through
    case 2: h ^= (data[whole + 1]! & 0xff) << 8; // falls through
    case 1:
      h ^= data[whole]! & 0xff;
      h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

const encoder = new TextEncoder();
// Keys are nearly always ASCII (source ids, repository paths, digests): their UTF-8 is their char
// codes, copied here by hand, which costs a fraction of TextEncoder's call into C++ per record.
const scratch = new Uint8Array(512);

/** Stable partition for a key: same key, same partition, so per-key order holds. */
export function partitionFor(key: string, partitions: number): number {
  const n = key.length;
  if (n <= scratch.length) {
    let i = 0;
    for (; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c > 0x7f) break;
      scratch[i] = c;
    }
    if (i === n) return (murmur2(scratch, n) & 0x7fffffff) % partitions;
  }
  return (murmur2(encoder.encode(key)) & 0x7fffffff) % partitions;
}
