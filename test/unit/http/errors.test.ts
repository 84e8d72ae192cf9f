import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Request, Response } from 'express';
import type { IncomingMessage } from 'node:http';
import { answerError, bodyErrorOf, errorHandler, pathOf, sendError } from '../../../src/http/errors.ts';
import { createLogger, silentLogger } from '../../../src/observability/logger.ts';

/** The part of an Express response the error helpers use, recording what they set. */
function fakeResponse(headersSent = false) {
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    headersSent,
    writeHead(code: number, headers: Record<string, string | number>) {
      assert.equal(headers['content-type'], 'application/json; charset=utf-8');
      sent.status = code;
      res.length = Number(headers['content-length']);
      return res;
    },
    length: -1,
    end(text: string) {
      assert.equal(Buffer.byteLength(text), res.length, 'content-length matches the body');
      sent.body = JSON.parse(text);
      return res;
    },
  };
  return { res: res as unknown as Response, sent };
}

/** An error shaped as body-parser raises it (http-errors: status, type, and for 413 the limit). */
function parserError(status: number, type: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`internal detail ${type}`), { status, statusCode: status, type, expose: true, ...extra });
}

describe('bodyErrorOf', () => {
  it('maps body-parser errors to the answer the sender gets', () => {
    assert.deepEqual(bodyErrorOf(parserError(413, 'entity.too.large', { limit: 1048576 })),
      { status: 413, error: 'payload_too_large', message: 'body exceeds the limit of 1048576 bytes' });
    assert.equal(bodyErrorOf(parserError(415, 'encoding.unsupported')).status, 415);
    assert.equal(bodyErrorOf(parserError(415, 'charset.unsupported')).status, 415);
    assert.equal(bodyErrorOf(parserError(400, 'request.aborted')).error, 'request_aborted');
    assert.equal(bodyErrorOf(parserError(400, 'request.size.invalid')).error, 'request_size_invalid');
    assert.equal(bodyErrorOf(parserError(400, 'entity.parse.failed')).error, 'invalid_json');
  });

  it('is a 4xx for anything else the body reader raises (zlib errors, 5xx states, non-errors)', () => {
    const zlib = Object.assign(new Error('incorrect header check'), { status: 400, errno: -3 });
    assert.deepEqual(bodyErrorOf(zlib), { status: 400, error: 'bad_request', message: 'the request body could not be read' });
    assert.equal(bodyErrorOf(parserError(500, 'stream.not.readable')).status, 400);
    assert.equal(bodyErrorOf(undefined).status, 400);
    assert.equal(bodyErrorOf('a string').status, 400);
    assert.equal(bodyErrorOf({ type: '__proto__' }).status, 400);
  });

  it('never echoes the underlying message', () => {
    for (const e of [parserError(413, 'entity.too.large'), parserError(400, 'request.aborted'), new Error('secret-ish detail')]) {
      assert.doesNotMatch(bodyErrorOf(e).message, /internal detail|secret-ish/);
    }
  });
});

const handle = errorHandler(silentLogger);
const req = { path: '/x' } as Request;

describe('errorHandler', () => {

  it('answers body errors as 4xx JSON', () => {
    const { res, sent } = fakeResponse();
    handle(parserError(413, 'entity.too.large', { limit: 10 }), req, res, () => undefined);
    assert.deepEqual(sent, { status: 413, body: { error: 'payload_too_large', message: 'body exceeds the limit of 10 bytes' } });
  });

  it('passes other 4xx errors through with their message', () => {
    const { res, sent } = fakeResponse();
    handle(Object.assign(new Error('policy not found'), { status: 404 }), req, res, () => undefined);
    assert.deepEqual(sent, { status: 404, body: { error: 'bad_request', message: 'policy not found' } });
  });

  it('answers a bug as a generic 500 without details', () => {
    const { res, sent } = fakeResponse();
    handle(new TypeError('cannot read properties of undefined (password=hunter2)'), req, res, () => undefined);
    assert.deepEqual(sent, { status: 500, body: { error: 'internal', message: 'internal error' } });
  });

  it('does not try to answer twice', () => {
    const { res, sent } = fakeResponse(true);
    handle(new Error('late'), req, res, () => undefined);
    assert.deepEqual(sent, {});
  });
});

describe('answerError (Express routes and the webhook fast path)', () => {
  it('logs a bug with the path only, and answers a generic 500', () => {
    const lines: string[] = [];
    const log = createLogger('info', { write: (l: string) => { lines.push(l); } });
    const { res, sent } = fakeResponse();
    answerError(new Error('boom'), '/webhooks/harbor/x', res, log);
    assert.deepEqual(sent, { status: 500, body: { error: 'internal', message: 'internal error' } });
    const entry = JSON.parse(lines[0]!) as { path: string; err: { message: string } };
    assert.deepEqual([lines.length, entry.path, entry.err.message], [1, '/webhooks/harbor/x', 'boom']);
  });

  it('is the same policy as errorHandler: body errors and 4xx errors are the sender\'s', () => {
    for (const err of [parserError(413, 'entity.too.large', { limit: 10 }), Object.assign(new Error('nope'), { status: 409, type: 'conflict' })]) {
      const a = fakeResponse();
      const b = fakeResponse();
      answerError(err, '/x', a.res, silentLogger);
      handle(err, req, b.res, () => undefined);
      assert.deepEqual(a.sent, b.sent);
      assert.ok(a.sent.status! >= 400 && a.sent.status! < 500);
    }
  });
});

describe('pathOf', () => {
  const of = (url: string) => pathOf({ url } as IncomingMessage);
  it('is the path alone, as Express\'s req.path: no query, fragment, scheme, host or credentials', () => {
    assert.equal(of('/webhooks/harbor/x?token=abc'), '/webhooks/harbor/x');
    assert.equal(of('/metrics#frag'), '/metrics');
    assert.equal(of('http://user:hunter2@x/metrics?token=abc'), '/metrics');
    assert.equal(of('*'), '');
    assert.equal(of(''), '');
  });
});

describe('sendError', () => {
  it('writes { error, message, ...extra } with the status', () => {
    const { res, sent } = fakeResponse();
    sendError(res, 400, 'invalid_payload', 'bad', { issues: [{ path: 'type', message: 'required' }] });
    assert.deepEqual(sent, { status: 400, body: { error: 'invalid_payload', message: 'bad', issues: [{ path: 'type', message: 'required' }] } });
  });
});
