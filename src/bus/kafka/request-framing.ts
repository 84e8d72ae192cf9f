// kafkajs frames every request (size, api key and version, correlation id, client id, then the
// encoded body) through two growing encoders: two zero-filled allocations and two copies of the
// body per request, which for a produce request of a few dozen webhooks cost more than encoding it.
// This writes the same bytes into one buffer, and goes behind kafkajs' module in this process's
// module cache before kafkajs loads it (see module-patch.ts).
import { replaceBeforeLoad } from './module-patch.ts';

/** What kafkajs' request encoders return, and what its connection reads the bytes from. */
export interface EncodedRequest { readonly buffer: Buffer }

export interface FramingInput {
  correlationId: number;
  clientId: string | null | undefined;
  request: { apiKey: number; apiVersion: number; encode: () => Promise<EncodedRequest> | EncodedRequest };
}

type Framing = (input: FramingInput) => Promise<EncodedRequest>;

/** A finished request, shaped as kafkajs' Encoder is read (`buffer`, `size()`). */
class Framed implements EncodedRequest {
  readonly buffer: Buffer;
  constructor(buffer: Buffer) { this.buffer = buffer; }
  size(): number { return this.buffer.length; }
}

/** The request as kafkajs' protocol/request.js frames it. */
export const frameRequest: Framing = async ({ correlationId, clientId, request: { apiKey, apiVersion, encode } }) => {
  const body = (await encode()).buffer;
  const idLength = clientId == null ? -1 : Buffer.byteLength(clientId, 'utf8');
  const size = 2 + 2 + 4 + 2 + Math.max(0, idLength) + body.length;
  const buf = Buffer.allocUnsafe(4 + size);
  let at = buf.writeInt32BE(size, 0);
  at = buf.writeInt16BE(apiKey, at);
  at = buf.writeInt16BE(apiVersion, at);
  at = buf.writeInt32BE(correlationId, at);
  at = buf.writeInt16BE(idLength, at);
  if (idLength > 0) at += buf.write(clientId!, at, idLength, 'utf8');
  body.copy(buf, at);
  return new Framed(buf);
};

/** kafkajs' own framing, kept for the equivalence test; undefined when nothing was replaced. */
export const kafkajsFraming: Framing | undefined = replaceBeforeLoad<Framing>('kafkajs/src/protocol/request.js', 'kafkajs/src/network/connection.js', 1, () => frameRequest);

/** True when kafkajs' connections frame requests with frameRequest (false: with their own). */
export const singleCopyFraming: boolean = kafkajsFraming !== undefined;
