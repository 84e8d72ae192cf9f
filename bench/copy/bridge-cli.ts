// The benchmark's entry for the prototype row (and for the bridge row when src/cli/main.ts does
// not route `copy`): the same copyCommand, logger on stderr so stdout keeps one line per image.
// BENCH_MONOLITHIC_MAX_MIB (prototype knob): blobs up to this size go in one streamed PUT, which
// the bridge does not hash itself (the target registry checks the digest).
import { copyCommand } from '../../src/cli/copy.ts';
import { createLogger } from '../../src/observability/logger.ts';

const argv = process.argv.slice(2);
const rest = argv[0] === 'copy' ? argv.slice(1) : argv;
const mono = process.env.BENCH_MONOLITHIC_MAX_MIB;
process.exitCode = await copyCommand({
  rest, flags: {}, logger: createLogger(process.env.LOG_LEVEL ?? 'warn', process.stderr),
  ...(mono ? { client: { upload: { monolithicMaxBytes: Number(mono) * 2 ** 20 } } } : {}),
});
