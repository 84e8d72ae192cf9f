// The Kafka bus's TLS and SASL decisions (src/bus/kafka/security.ts) with plain values: the kafkajs
// options, what check and the start-up log say, and how kafkajs failures become coded errors.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { describe, it } from 'node:test';
import { busSecurityWarnings, kafkaError, kafkaSecurityLabel, kafkaSecurityOptions, kafkaSecurityWarnings } from '../../../src/bus/kafka/security.ts';
import { BridgeError } from '../../../src/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'hsb-kafka-sec-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nOUR-CA\n-----END CERTIFICATE-----\n');
const sasl = { mechanism: 'scram-sha-512' as const, username: 'harbor-bridge', password: 'S3cret-pw-77' };

/** An error shaped like kafkajs' (name, code, broker, cause chain). */
function kafkajsError(name: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, ...extra });
}

describe('kafkaSecurityOptions', () => {
  it('gives kafkajs no ssl and no sasl without the sections (plaintext, as before)', () => {
    assert.deepEqual(kafkaSecurityOptions({}), {});
  });

  it('turns TLS on with verification, adds the CA file to Node\'s roots, and leaves SNI to kafkajs (per broker)', () => {
    assert.deepEqual(kafkaSecurityOptions({ tls: { insecure: false } }), { ssl: { rejectUnauthorized: true } });
    const { ssl } = kafkaSecurityOptions({ tls: { caFile: ca, certFile: ca, keyFile: ca } });
    assert.equal(ssl?.rejectUnauthorized, true);
    const cas = ssl?.ca as string[];
    assert.equal(cas.length, rootCertificates.length + 1);
    assert.ok(rootCertificates.every((c) => cas.includes(c)), 'the system roots are kept');
    assert.match(cas.at(-1)!, /OUR-CA/);
    assert.match(String(ssl?.cert), /OUR-CA/);
    assert.match(String(ssl?.key), /OUR-CA/);
    assert.equal('servername' in ssl!, false);
    assert.equal(kafkaSecurityOptions({ tls: { insecure: true } }).ssl?.rejectUnauthorized, false);
  });

  it('passes the SASL login through, and fails naming the field when a TLS file has gone since the config loaded', () => {
    assert.deepEqual(kafkaSecurityOptions({ sasl }).sasl, sasl);
    assert.throws(() => kafkaSecurityOptions({ tls: { caFile: join(dir, 'gone.pem') } }),
      (e: BridgeError) => e.code === 'HSB_CONFIG_INVALID' && /^bus\.tls\.caFile: cannot read .*gone\.pem \(ENOENT\)$/.test(e.message));
  });
});

describe('kafkaSecurityLabel and kafkaSecurityWarnings', () => {
  it('says how the bridge connects, with mechanism and user but never the password', () => {
    assert.equal(kafkaSecurityLabel({}), 'plaintext (no TLS), no SASL');
    assert.equal(kafkaSecurityLabel({ tls: { insecure: false }, sasl }), 'TLS (verified against Node\'s CAs), SASL scram-sha-512 as harbor-bridge');
    assert.equal(kafkaSecurityLabel({ tls: { caFile: '/etc/kafka/ca.pem', certFile: '/etc/kafka/client.pem', keyFile: '/k' } }),
      'TLS (verified against Node\'s CAs and /etc/kafka/ca.pem, client certificate /etc/kafka/client.pem), no SASL');
    assert.equal(kafkaSecurityLabel({ tls: { insecure: true } }), 'TLS (certificate verification OFF), no SASL');
    assert.doesNotMatch(kafkaSecurityLabel({ tls: {}, sasl }), /S3cret/);
  });

  it('warns about a login without TLS (PLAIN sends the password in clear) and about verification off; nothing for TLS + SASL', () => {
    assert.deepEqual(kafkaSecurityWarnings({ tls: {}, sasl }), []);
    assert.deepEqual(kafkaSecurityWarnings({}), []);
    assert.match(kafkaSecurityWarnings({ sasl: { ...sasl, mechanism: 'plain' } }).join('\n'), /^SASL PLAIN without bus\.tls: the Kafka password travels in clear text/);
    assert.match(kafkaSecurityWarnings({ sasl }).join('\n'), /^SASL scram-sha-512 without bus\.tls: .*records travel in clear text/);
    assert.deepEqual(kafkaSecurityWarnings({ tls: { insecure: true } }), ['TLS certificate verification is OFF for the Kafka bus (bus.tls.insecure)']);
  });

  it('says when Kafka settings are ignored because the bus is embedded', () => {
    assert.deepEqual(busSecurityWarnings({ kind: 'kafka', sasl }), kafkaSecurityWarnings({ sasl }));
    assert.deepEqual(busSecurityWarnings({ kind: 'embedded' }), []);
    for (const bus of [{ kind: 'embedded' as const, sasl }, { kind: 'embedded' as const, tls: {} }]) {
      assert.deepEqual(busSecurityWarnings(bus), ['bus.tls and bus.sasl are for Kafka: the embedded bus ignores them (set bus.brokers or KAFKA_BROKERS to use Kafka)']);
    }
  });
});

describe('kafkaError', () => {
  it('makes a refused SASL login HSB_BUS_AUTH, naming mechanism and user, with the password blanked should any message hold it', () => {
    const refused = kafkajsError('KafkaJSSASLAuthenticationError', `SASL SCRAM SHA512 authentication failed: bad ${sasl.password}`);
    const e = kafkaError(refused, 'connect to k:9093', { tls: {}, sasl });
    assert.equal(e.code, 'HSB_BUS_AUTH');
    assert.match(e.message, /^Kafka refused the SASL scram-sha-512 login of user "harbor-bridge" \(connect to k:9093\): SASL SCRAM SHA512 authentication failed: bad \[redacted\]; check bus\.sasl/);
    assert.doesNotMatch(JSON.stringify(e), /S3cret/);
    // Wrapped by kafkajs' retrier, it is still found.
    const wrapped = kafkajsError('KafkaJSNonRetriableError', 'wrapped', { cause: refused });
    assert.equal(kafkaError(wrapped, 'x', { sasl }).code, 'HSB_BUS_AUTH');
  });

  it('makes a failed handshake HSB_BUS_TLS with Node\'s code, the broker and a hint for that failure', () => {
    const conn = kafkajsError('KafkaJSConnectionError', 'Connection error: unable to get local issuer certificate', { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', broker: 'kafka-1:9093' });
    const e = kafkaError(kafkajsError('KafkaJSNumberOfRetriesExceeded', conn.message, { cause: conn }), 'connect to kafka-1:9093', { tls: {} });
    assert.equal(e.code, 'HSB_BUS_TLS');
    assert.deepEqual(e.context, { errno: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', broker: 'kafka-1:9093' });
    assert.equal(e.message, 'TLS connection to Kafka broker kafka-1:9093 failed (connect to kafka-1:9093): UNABLE_TO_GET_ISSUER_CERT_LOCALLY (unable to get local issuer certificate); '
      + 'bus.tls.caFile must hold the CA that signed the broker\'s certificate (or, for this bus only, tls.insecure: true)');
    const alert = kafkajsError('KafkaJSConnectionError', 'Connection error: 40:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../ssl.c:1\n', { code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' });
    assert.match(kafkaError(alert, 'x', { tls: {} }).message, /ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE \(sslv3 alert bad certificate\); the broker refused the client certificate/);
  });

  it('makes an authorizer\'s refusal HSB_BUS_AUTH naming what was denied and pointing at ACLs', () => {
    const cause = kafkajsError('KafkaJSProtocolError', 'Not authorized to access topics: [Topic authorization failed]', { type: 'TOPIC_AUTHORIZATION_FAILED' });
    const err = kafkaError(kafkajsError('KafkaJSNumberOfRetriesExceeded', 'Not authorized to access topics: [Topic authorization failed]', { cause }), 'publish to harbor-bridge.events', { sasl });
    assert.equal(err.code, 'HSB_BUS_AUTH');
    assert.equal(err.retryable, true);
    assert.match(err.message, /^Kafka denied TOPIC_AUTHORIZATION_FAILED for user "harbor-bridge" \(publish to harbor-bridge\.events\): the brokers' ACLs must allow/);
    assert.equal(err.context.kafkaError, 'TOPIC_AUTHORIZATION_FAILED');
    assert.equal(kafkaError(kafkajsError('KafkaJSProtocolError', 'x', { type: 'CLUSTER_AUTHORIZATION_FAILED' }), 'connect', {}).code, 'HSB_BUS_AUTH');
  });

  it('leaves other failures HSB_BUS_UNAVAILABLE (retryable), with a hint when a plaintext client was hung up on', () => {
    const down = kafkaError(kafkajsError('KafkaJSConnectionError', 'Connection error: connect ECONNREFUSED', { code: 'ECONNREFUSED' }), 'connect to k:9092', {});
    assert.equal(down.code, 'HSB_BUS_UNAVAILABLE');
    assert.equal(down.retryable, true);
    assert.equal(down.message, 'bus unavailable: connect to k:9092: Connection error: connect ECONNREFUSED');
    const closed = kafkaError(kafkajsError('KafkaJSConnectionClosedError', 'Closed connection'), 'connect to k:9093', { sasl });
    assert.match(closed.message, /Closed connection; if the brokers' listener is TLS \(SSL or SASL_SSL\), set bus\.tls$/);
    const anonymous = kafkaError(kafkajsError('KafkaJSConnectionClosedError', 'Closed connection'), 'connect to k:9093', {});
    assert.match(anonymous.message, /set bus\.tls; if it wants a login \(SASL_PLAINTEXT\), set bus\.sasl$/);
    const own = new BridgeError('HSB_BUS_NOT_CONNECTED', 'bus not connected');
    assert.equal(kafkaError(own, 'x', {}), own);
  });
});
