#!/usr/bin/env node
// Entry point for the installed binary: Node 24 runs the TypeScript sources directly (type
// stripping); the compile cache spares that work on later starts.
//
// V8's young generation is sized at start-up. Commands that copy blobs run with a 2 MiB one: streamed
// socket buffers are freed sooner (about 60 MB less RSS and 3 CPU-s less per 4.7 GB in the copy
// benchmark). `serve` keeps V8's default: serving webhooks allocates many small objects per request,
// and there the small young generation costs about 15% of the throughput. So the copying commands
// re-execute Node once with the flag.
import module from 'node:module';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The sources need Node 24 (type stripping). Started by an older system Node (`./bin/...` on a
// host whose `node` is 20), hand over to the Node 24 that `npm ci` pins in node_modules.
if (Number(process.versions.node.split('.')[0]) < 24) {
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`harbor-swr-bridge needs Node 24 (this is ${process.version}): run \`npm ci\` in ${fileURLToPath(new URL('..', import.meta.url))} to install the Node it pins, or install Node 24\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
  await start();
}

async function start() {
  const COPYING = new Set(['run', 'work', 'sync', 'copy']);

  function commandOf(args) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '--config' || a === '-c') i++;
      else if (!a.startsWith('-')) return a;
    }
    return 'run';
  }

  const args = process.argv.slice(2);
  if (COPYING.has(commandOf(args)) && !process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) && typeof process.execve === 'function') {
    process.execve(process.execPath, [process.execPath, '--max-semi-space-size=2', ...process.execArgv, process.argv[1], ...args], process.env);
  }

  module.enableCompileCache?.();
  await import('../src/cli/main.ts');
}
