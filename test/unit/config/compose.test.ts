// No Docker engine runs here, so the compose file is checked by reading it: the services exist,
// are wired to each other, and the config it mounts is valid for the bridge.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/config/load.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, any> };

  it('has Kafka in KRaft mode, the bridge built from the Dockerfile and two registries', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['bridge', 'kafka', 'registry-source', 'registry-target']);
    assert.match(compose.services.kafka.image, /^apache\/kafka:/);
    assert.equal(compose.services.kafka.environment.KAFKA_PROCESS_ROLES, 'broker,controller');
    assert.equal(compose.services.bridge.build, '.');
    for (const r of ['registry-source', 'registry-target']) assert.match(compose.services[r].image, /^registry:2/);
  });

  it('mounts a config that the bridge accepts, pointing at the compose services', () => {
    const bridge = compose.services.bridge;
    const mount = (bridge.volumes as string[]).find((v) => v.endsWith(':/etc/harbor-swr-bridge/config.yaml:ro'));
    assert.ok(mount, 'the config is mounted where the image expects it');
    const file = resolve(ROOT, mount.split(':')[0]!);
    const cfg = loadConfig(file, { ...bridge.environment });
    assert.equal(cfg.bus.kind, 'kafka');
    assert.deepEqual(cfg.bus.brokers, [bridge.environment.KAFKA_BROKERS]);
    assert.equal(cfg.sources[0]!.url, 'http://registry-source:5000');
    assert.equal(cfg.targets[0]!.url, 'http://registry-target:5000');
    assert.equal(cfg.sources[0]!.webhookSecrets[0], bridge.environment.HARBOR_WEBHOOK_SECRET);
    assert.ok(compose.services.bridge.depends_on.kafka, 'the bridge waits for Kafka');
  });

  it('Dockerfile runs on node:24-slim as a non-root user', () => {
    const df = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
    assert.match(df, /^FROM node:24-slim$/m);
    assert.match(df, /^USER node$/m);
  });
});
