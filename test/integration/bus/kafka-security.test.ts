// The Kafka bus over TLS and SASL against the shared test broker's SASL_SSL and mutual-TLS
// listeners (scripts/kafka/broker.ts; KAFKA_SECURE): round trips with PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512, a wrong password and an unknown user as HSB_BUS_AUTH without the password in the
// error or the log, an unknown CA, a wrong name, a missing client certificate and a plaintext
// listener as HSB_BUS_TLS, `insecure: true` without the CA, a bridge whose login is refused:
// /readyz 503 and why in its log, and the start-up warning for a login without TLS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KafkaBus, type KafkaBusOptions } from '../../../src/bus/kafka/kafka-bus.ts';
import type { BusMessage, ConsumerHandle } from '../../../src/bus/port.ts';
import { parseConfig } from '../../../src/config/load.ts';
import { BridgeError } from '../../../src/errors.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { startBridge, type RunningBridge } from '../../../src/cli/bridge.ts';
import type { SecureListeners } from '../../../scripts/kafka/broker.ts';
import { sharedBrokers, sharedSecureListeners, uniquePrefix } from '../../support/kafka.ts';

/** A logger whose every line (debug and up, kafkajs' own included) is kept for the assertions. */
function capturingLogger() {
  const lines: string[] = [];
  return { lines, logger: createLogger('debug', { write: (l: string) => { lines.push(l); } }) };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms, undefined, { ref: false }).then(() => { throw new Error(`${what}: nothing in ${ms} ms`); })]);
}

describe('Kafka bus over TLS and SASL', () => {
  let s: SecureListeners;
  const open: KafkaBus[] = [];
  before(() => { s = sharedSecureListeners(); });
  after(async () => { await Promise.all(open.map((b) => b.close())); });

  const bus = (opts: Partial<KafkaBusOptions>, logger = capturingLogger().logger) => {
    const b = new KafkaBus({ brokers: [s.saslSsl], topicPrefix: uniquePrefix('secure'), partitions: 1, clientId: 'secure-test', logger, ...opts });
    open.push(b);
    return b;
  };

  /** Publish one record and read it back in a consumer group: producer, admin and consumer all log in. */
  const roundTrip = async (b: KafkaBus) => {
    await b.connect();
    assert.equal(b.isReady(), true);
    const value = { schema: 1, n: Math.random() };
    await b.publish('events', [{ key: 'harbor/library/nginx', value }]);
    let handle: ConsumerHandle | undefined;
    try {
      const got = new Promise<BusMessage>((resolve) => {
        void b.subscribe({ group: 'secure-reader', topics: ['events'] }, async (batch) => { resolve(batch[0]!); }).then((h) => { handle = h; });
      });
      const m = await within(got, 30000, 'round trip');
      assert.equal(m.key, 'harbor/library/nginx');
      assert.deepEqual(m.value, value);
    } finally {
      for (let i = 0; i < 100 && !handle; i++) await sleep(50);
      await handle?.stop();
    }
  };

  /** The coded error connect() fails with. */
  const connectError = async (b: KafkaBus): Promise<BridgeError> => {
    try {
      await b.connect();
    } catch (e) {
      assert.ok(e instanceof BridgeError, `a BridgeError, got ${String(e)}`);
      return e;
    }
    assert.fail('connect() succeeded');
  };

  it('publishes and consumes over SASL_SSL with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, verifying the broker with the CA file', async () => {
    await roundTrip(bus({ tls: { caFile: s.caFile }, sasl: { mechanism: 'plain', ...s.plain } }));
    await roundTrip(bus({ tls: { caFile: s.caFile }, sasl: { mechanism: 'scram-sha-512', ...s.scram } }));
    await roundTrip(bus({ tls: { caFile: s.caFile }, sasl: { mechanism: 'scram-sha-256', ...s.scram } }));
  });

  it('publishes and consumes over mutual TLS with a client certificate, and refuses to connect without one', async () => {
    await roundTrip(bus({ brokers: [s.mtls], tls: { caFile: s.caFile, certFile: s.clientCertFile, keyFile: s.clientKeyFile } }));
    const e = await connectError(bus({ brokers: [s.mtls], tls: { caFile: s.caFile } }));
    assert.equal(e.code, 'HSB_BUS_TLS', e.message);
    assert.match(e.message, /CERTIFICATE_REQUIRED/);
  });

  it('reports a wrong password or an unknown user as HSB_BUS_AUTH, without the password in the error or the log', async () => {
    const wrong = `wrong-${s.scram.password}-Zq9`;
    const cases = [
      { mechanism: 'plain' as const, username: s.plain.username },
      { mechanism: 'scram-sha-512' as const, username: s.scram.username },
      { mechanism: 'scram-sha-512' as const, username: 'nobody-here' },
    ];
    for (const c of cases) {
      const { lines, logger } = capturingLogger();
      const e = await connectError(bus({ tls: { caFile: s.caFile }, sasl: { ...c, password: wrong } }, logger));
      assert.equal(e.code, 'HSB_BUS_AUTH', e.message);
      assert.match(e.message, new RegExp(`Kafka refused the SASL ${c.mechanism} login of user "${c.username}"`));
      assert.match(e.message, /check bus\.sasl/);
      assert.deepEqual(e.context, { mechanism: c.mechanism, username: c.username });
      for (const text of [e.message, JSON.stringify(e), String(e.stack), ...lines]) {
        assert.ok(!text.includes(wrong) && !text.includes(s.scram.password), `password leaked: ${text}`);
      }
    }
  });

  it('fails TLS without the CA (verification is on by default), on a name not in the certificate and towards a plaintext listener, as HSB_BUS_TLS', async () => {
    const untrusted = await connectError(bus({ tls: {}, sasl: { mechanism: 'plain', ...s.plain } }));
    assert.equal(untrusted.code, 'HSB_BUS_TLS', untrusted.message);
    assert.equal(untrusted.context.errno, 'SELF_SIGNED_CERT_IN_CHAIN');
    assert.match(untrusted.message, new RegExp(`^TLS connection to Kafka broker ${s.saslSsl} failed .*SELF_SIGNED_CERT_IN_CHAIN.*bus\\.tls\\.caFile must hold the CA`));
    assert.doesNotMatch(untrusted.message, new RegExp(s.plain.password));
    // The certificate names 127.0.0.1 only: "localhost" is refused even with the CA.
    const misnamed = await connectError(bus({ brokers: [s.saslSsl.replace('127.0.0.1', 'localhost')], tls: { caFile: s.caFile }, sasl: { mechanism: 'plain', ...s.plain } }));
    assert.equal(misnamed.code, 'HSB_BUS_TLS', misnamed.message);
    assert.equal(misnamed.context.errno, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(misnamed.message, /must be a name or IP in its certificate/);
    // TLS towards a plaintext listener: the broker hangs up during the handshake.
    const plaintext = await connectError(bus({ brokers: [sharedBrokers()], tls: { caFile: s.caFile } }));
    assert.equal(plaintext.code, 'HSB_BUS_TLS', plaintext.message);
    assert.equal(plaintext.context.errno, 'TLS_HANDSHAKE_CLOSED');
  });

  it('connects without the CA when tls.insecure is true (for this bus only)', async () => {
    await roundTrip(bus({ tls: { insecure: true }, sasl: { mechanism: 'scram-sha-512', ...s.scram } }));
  });

  it('a bridge whose login is refused stays unready (/readyz 503) and logs why, with the code and without the password', async () => {
    const wrong = 'not-the-Password-4711';
    const config = parseConfig({
      server: { port: 0, host: '127.0.0.1' },
      bus: { kind: 'kafka', brokers: [s.saslSsl], topicPrefix: uniquePrefix('secure-bridge'), tls: { caFile: s.caFile }, sasl: { mechanism: 'SCRAM-SHA-512', username: s.scram.username, password: '${HSB_TEST_KAFKA_PASSWORD}' } },
      sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
      targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:1' }],
    }, 'bridge.yaml', { HSB_TEST_KAFKA_PASSWORD: wrong });
    const { lines, logger } = capturingLogger();
    let bridge: RunningBridge | undefined;
    try {
      bridge = await startBridge(config, logger, { http: true, workers: false });
      const failed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'bus connection failed; retrying');
      for (let i = 0; i < 100 && !failed(); i++) await sleep(100);
      const line = failed();
      assert.ok(line, `no start-up failure logged:\n${lines.join('')}`);
      assert.equal(line.code, 'HSB_BUS_AUTH');
      assert.match(String(line.err), /Kafka refused the SASL scram-sha-512 login of user "bridge_scram"/);
      const ready = await fetch(`http://127.0.0.1:${bridge.port}/readyz`);
      assert.equal(ready.status, 503);
      const info = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'using the Kafka bus');
      assert.match(String(info?.security), /^TLS \(verified against Node's CAs and .*ca\.pem\), SASL scram-sha-512 as bridge_scram$/);
      assert.ok(lines.every((l) => !l.includes(wrong)), 'password in the log');
    } finally {
      await bridge?.stop();
    }
  });

  it('a bridge with a SASL PLAIN login but no TLS warns at start-up that the password travels in clear', async () => {
    const config = parseConfig({
      server: { port: 0, host: '127.0.0.1' },
      bus: { kind: 'kafka', brokers: [s.saslSsl], topicPrefix: uniquePrefix('secure-clear'), sasl: { mechanism: 'plain', ...s.plain } },
      sources: [{ id: 'h', url: 'http://127.0.0.1:1', webhookSecrets: ['s'] }],
      targets: [{ id: 't', kind: 'registry', url: 'http://127.0.0.1:1' }],
    }, 'bridge.yaml', {});
    const { lines, logger } = capturingLogger();
    const bridge = await startBridge(config, logger, { http: true, workers: false });
    try {
      const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
      assert.ok(logged.some((l) => l.level === 40 && l.msg.startsWith('SASL PLAIN without bus.tls: the Kafka password travels in clear text')), lines.join(''));
      assert.ok(lines.every((l) => !l.includes(s.plain.password)), 'password in the log');
    } finally {
      await bridge.stop();
    }
  });
});
