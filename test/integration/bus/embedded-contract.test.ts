// The Bus contract against the embedded (node:sqlite) adapter, one fresh data dir per test.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../src/bus/port.ts';
import { EmbeddedBus } from '../../../src/bus/embedded/sqlite-bus.ts';
import { busContract } from '../../contract/bus-contract.ts';

busContract('embedded', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hsb-bus-'));
  const buses: Bus[] = [];
  const open = async (): Promise<Bus> => {
    const bus = new EmbeddedBus({ dataDir, retryBackoffMs: 50 });
    await bus.connect();
    buses.push(bus);
    return bus;
  };
  return {
    bus: await open(),
    reopen: open,
    cleanup: async () => {
      await Promise.all(buses.map((b) => b.close()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}, { waitMs: 10_000 });
