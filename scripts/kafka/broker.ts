// Runs a single-node Apache Kafka broker (KRaft) from the Maven Central jars, for tests and
// benchmarks. Storage is formatted fresh for each new broker; readiness is polled with the
// admin client. As a CLI: `node scripts/kafka/broker.ts start <stateDir>` prints the bootstrap
// address and leaves the broker running (`--server-jvm`: Kafka's production JVM settings);
// `stop <stateDir>` stops it.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, openSync, existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
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

export class KafkaBroker {
  readonly dir: string;
  readonly #jvm: BrokerJvm;
  port = 0;
  #controllerPort = 0;
  #child: ChildProcess | undefined;
  #lib = '';

  constructor(dir: string, opts: { jvm?: BrokerJvm } = {}) {
    this.dir = resolve(dir);
    this.#jvm = opts.jvm ?? 'test';
  }

  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** First start formats fresh storage on new random ports; later starts reuse both. */
  async start(): Promise<void> {
    this.#lib ||= kafkaLibDir();
    if (!this.port) {
      rmSync(this.dir, { recursive: true, force: true });
      mkdirSync(join(this.dir, 'data'), { recursive: true });
      this.port = await freePort();
      this.#controllerPort = await freePort();
      writeFileSync(join(this.dir, 'server.properties'), this.#properties());
      writeFileSync(join(this.dir, 'log4j.properties'), [
        'log4j.rootLogger=WARN, file',
        'log4j.appender.file=org.apache.log4j.FileAppender',
        `log4j.appender.file.File=${join(this.dir, 'server.log')}`,
        'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
        'log4j.logger.kafka=INFO', 'log4j.logger.org.apache.kafka=WARN', '',
      ].join('\n'));
      execFileSync('java', ['-cp', `${this.#lib}/*`, `-Dlog4j.configuration=file:${join(this.dir, 'log4j.properties')}`,
        'kafka.tools.StorageTool', 'format', '-t', randomUUID(), '-c', join(this.dir, 'server.properties')], { stdio: 'pipe' });
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

  #properties(): string {
    return [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${this.#controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.#controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${this.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
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
    const b = new KafkaBroker(dir, { jvm: argv.includes('--server-jvm') ? 'server' : 'test' });
    await b.start();
    process.stdout.write(`${b.brokers}\n`);
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
