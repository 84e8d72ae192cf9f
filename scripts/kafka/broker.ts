// Runs a single-node Apache Kafka broker (KRaft) from the Maven Central jars, for tests and
// benchmarks. Storage is formatted fresh for each new broker; readiness is polled with the
// admin client. As a CLI: `node scripts/kafka/broker.ts start <stateDir>` prints the bootstrap
// address and leaves the broker running (`--server-jvm`: Kafka's production JVM settings);
// `stop <stateDir>` stops it.
//
// Besides the PLAINTEXT listener that most tests use, a broker made with `secure: true` (the CLI's,
// which scripts/test.sh starts) has a SASL_SSL listener (PLAIN and SCRAM users) and an SSL listener
// that requires a client certificate, both with a throwaway CA and a certificate for 127.0.0.1
// made by openssl in the state dir; `secure.json` there says where they are (see SecureListeners).
// They cost about half a second of start-up, so brokers that tests start for themselves go without.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, openSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { dropKafkajsTimerWarning } from '../../src/bus/kafka/client.ts';

const here = dirname(fileURLToPath(import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export function kafkaLibDir(): string {
  return execFileSync('bash', [join(here, 'fetch.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/**
 * JVM settings. `test` starts fast and small (C1 only) for the test suites; `server` is what Kafka's
 * own start scripts use (1 GiB heap, G1 with short pauses, full JIT), for benchmarks, where the
 * broker's CPU per record is part of the result.
 */
export type BrokerJvm = 'test' | 'server';
const JVM_OPTIONS: Readonly<Record<BrokerJvm, readonly string[]>> = {
  test: ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1'],
  server: ['-Xms1g', '-Xmx1g', '-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent'],
};

/** The broker's secured listeners, as written to `<stateDir>/secure.json` for tests and dev use. */
export interface SecureListeners {
  /** SASL_SSL: PLAIN and SCRAM-SHA-256/512 over TLS with the throwaway CA's certificate for 127.0.0.1. */
  saslSsl: string;
  /** SSL that requires a client certificate signed by the same CA (mutual TLS, no SASL). */
  mtls: string;
  /** PEM of the CA that signed the broker's and the client's certificates. */
  caFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A PLAIN user (JAAS in server.properties) and a SCRAM user (SHA-256 and SHA-512, added at format). */
  plain: { username: string; password: string };
  scram: { username: string; password: string };
}

export class KafkaBroker {
  readonly dir: string;
  readonly #jvm: BrokerJvm;
  readonly #withSecure: boolean;
  port = 0;
  #controllerPort = 0;
  #secure: SecureListeners | undefined;
  #child: ChildProcess | undefined;
  #lib = '';

  constructor(dir: string, opts: { jvm?: BrokerJvm; secure?: boolean } = {}) {
    this.dir = resolve(dir);
    this.#jvm = opts.jvm ?? 'test';
    this.#withSecure = opts.secure ?? false;
  }

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The secured listeners; known once start() has formatted the broker. */
  get secure(): SecureListeners {
    if (!this.#secure) throw new Error(this.#withSecure ? 'the broker has not been started' : 'this broker was made without secure: true');
    return this.#secure;
  }

  /** First start formats fresh storage on new random ports; later starts reuse both. */
  async start(): Promise<void> {
    this.#lib ||= kafkaLibDir();
    if (!this.port) {
      rmSync(this.dir, { recursive: true, force: true });
      mkdirSync(join(this.dir, 'data'), { recursive: true });
      this.port = await freePort();
      this.#controllerPort = await freePort();
      if (this.#withSecure) {
        this.#secure = await this.#makeSecure();
        writeFileSync(join(this.dir, 'secure.json'), `${JSON.stringify(this.#secure, null, 2)}\n`, { mode: 0o600 });
      }
      // Holds the listeners' throwaway passwords and key: the owner's only.
      writeFileSync(join(this.dir, 'server.properties'), this.#properties(), { mode: 0o600 });
      writeFileSync(join(this.dir, 'log4j.properties'), [
        'log4j.rootLogger=WARN, file',
        'log4j.appender.file=org.apache.log4j.FileAppender',
        `log4j.appender.file.File=${join(this.dir, 'server.log')}`,
        'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
        'log4j.logger.kafka=INFO', 'log4j.logger.org.apache.kafka=WARN', '',
      ].join('\n'));
      execFileSync('java', ['-cp', `${this.#lib}/*`, `-Dlog4j.configuration=file:${join(this.dir, 'log4j.properties')}`,
        'kafka.tools.StorageTool', 'format', '-t', randomUUID(), '-c', join(this.dir, 'server.properties'),
        // KRaft keeps SCRAM credentials in the metadata log: they are written with the first records.
        ...(this.#secure ? ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${this.#secure!.scram.username},password=${this.#secure!.scram.password}]`]) : []),
      ], { stdio: 'pipe' });
    }
    const out = openSync(join(this.dir, 'stdout.log'), 'a');
    this.#child = spawn('java', [
      ...JVM_OPTIONS[this.#jvm], '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${join(this.dir, 'log4j.properties')}`,
      '-cp', `${this.#lib}/*`, 'kafka.Kafka', join(this.dir, 'server.properties'),
    ], { stdio: ['ignore', out, out], detached: true });
    this.#child.unref();
    writeFileSync(join(this.dir, 'pid'), String(this.#child.pid));
    writeFileSync(join(this.dir, 'brokers'), this.brokers);
    await this.#waitReady(60000);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(t);
  }

  /** Simulates a crash: no clean shutdown. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Ports, users and a throwaway CA with certificates for the broker (127.0.0.1) and a client. */
  async #makeSecure(): Promise<SecureListeners> {
    const tls = join(this.dir, 'tls');
    mkdirSync(tls);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tls, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=hsb-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    const issue = (name: string, cn: string, ext: string) => {
      openssl('req', '-new', ...ec, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      writeFileSync(join(tls, `${name}.ext`), ext);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-set_serial', `0x${randomBytes(8).toString('hex')}`,
        '-days', '30', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    };
    // An IP SAN only: a client that dials "localhost" sees a name mismatch, as it should.
    issue('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    issue('client', 'hsb-test-client', 'extendedKeyUsage=clientAuth\n');
    const password = () => randomBytes(12).toString('hex');
    return {
      saslSsl: `127.0.0.1:${await freePort()}`,
      mtls: `127.0.0.1:${await freePort()}`,
      caFile: join(tls, 'ca.pem'),
      clientCertFile: join(tls, 'client.pem'),
      clientKeyFile: join(tls, 'client-key.pem'),
      plain: { username: 'bridge_plain', password: password() },
      scram: { username: 'bridge_scram', password: password() },
    };
  }

  #properties(): string {
    const s = this.#secure;
    const secured = s ? `,SASL_SSL://${s.saslSsl},SSL://${s.mtls}` : '';
    return [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${this.#controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.#controllerPort}${secured}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${this.port}${secured}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${s ? ',SASL_SSL:SASL_SSL,SSL:SSL' : ''}`,
      ...(s ? this.#secureProperties(s) : []),
      `log.dirs=${join(this.dir, 'data')}`,
      'num.partitions=6',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=6',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      'log.cleaner.backoff.ms=1000',
      '',
    ].join('\n');
  }

  /** The SASL_SSL and mutual-TLS listeners' settings. */
  #secureProperties(s: SecureListeners): string[] {
    // PEM stores inline (Kafka ≥ 2.7), newlines as properties escapes: no JKS, no keytool, unencrypted key allowed.
    const pem = (file: string) => readFileSync(file, 'utf8').trim().replaceAll('\n', '\\n');
    const tls = join(this.dir, 'tls');
    return [
      'ssl.keystore.type=PEM',
      `ssl.keystore.certificate.chain=${pem(join(tls, 'server.pem'))}\\n${pem(s.caFile)}`,
      `ssl.keystore.key=${pem(join(tls, 'server-key.pem'))}`,
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${s.plain.username}="${s.plain.password}";`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.ssl.ssl.client.auth=required',
      'listener.name.ssl.ssl.truststore.type=PEM',
      `listener.name.ssl.ssl.truststore.certificates=${pem(s.caFile)}`,
    ];
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Its readiness probe is a kafkajs client too: without the filter, every start printed kafkajs' harmless timer warning.
    dropKafkajsTimerWarning();
    const kafka = new Kafka({ brokers: [this.brokers], logLevel: logLevel.NOTHING, connectionTimeout: 500, retry: { retries: 0 } });
    let lastErr: unknown;
    while (Date.now() < deadline) {
      if (this.#child && this.#child.exitCode !== null) break;
      const admin = kafka.admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        if (cluster.brokers.length > 0 && cluster.controller !== null) {
          await admin.disconnect();
          return;
        }
      } catch (e) {
        lastErr = e;
      }
      await admin.disconnect().catch(() => undefined);
      await sleep(250);
    }
    const log = existsSync(join(this.dir, 'stdout.log')) ? readFileSync(join(this.dir, 'stdout.log'), 'utf8').slice(-3000) : '';
    throw new Error(`Kafka broker did not become ready at ${this.brokers}: ${(lastErr as Error)?.message ?? 'process exited'}\n${log}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, dir = '.test-run/kafka'] = argv.filter((a) => !a.startsWith('--'));
  if (cmd === 'start') {
    const b = new KafkaBroker(dir, { jvm: argv.includes('--server-jvm') ? 'server' : 'test', secure: true });
    await b.start();
    // stdout stays the one address scripts capture; the secured listeners are told on stderr.
    process.stdout.write(`${b.brokers}\n`);
    const s = b.secure;
    process.stderr.write(`SASL_SSL at ${s.saslSsl} (PLAIN user ${s.plain.username}, SCRAM-SHA-256/512 user ${s.scram.username}), `
      + `mutual TLS at ${s.mtls}, CA ${s.caFile}; passwords and client certificate in ${join(b.dir, 'secure.json')}\n`);
  } else if (cmd === 'stop') {
    const pidFile = join(resolve(dir), 'pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try { process.kill(pid, 'SIGTERM'); } catch { return; }
    for (let i = 0; i < 60; i++) {
      try { process.kill(pid, 0); } catch { rmSync(pidFile); return; }
      await sleep(250);
    }
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    rmSync(pidFile, { force: true });
  } else {
    throw new Error('usage: broker.ts start [--server-jvm] <stateDir> | stop <stateDir>');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
}
