// The load generator wrk (C, Debian package `wrk`) against one URL with Harbor payloads, run from
// its own process like drive.ts and printing the same JSON line. wrk uses a fraction of
// autocannon's CPU per request, so more of the shared cores are left to the servers measured.
// Usage: wrk.ts <url> <seconds> max <connections>
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harborPushPayloads } from './payloads.ts';

const [url, seconds = '10', rate = 'max', connections = '64'] = process.argv.slice(2);
if (!url || rate !== 'max') throw new Error('usage: wrk.ts <url> <seconds> max <connections>');
const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'));
const bodies = join(dir, 'payloads.txt');
writeFileSync(bodies, `${harborPushPayloads(4096, process.env.BENCH_SEED ?? `wrk-${Date.now()}`).map((p) => p.body).join('\n')}\n`);
const script = join(dir, 'drive.lua');
// One body per request, in turn; the summary (latencies in µs) as one JSON line at the end.
writeFileSync(script, `
local bodies = {}
for line in io.lines(${JSON.stringify(bodies)}) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = ${JSON.stringify(process.env.BENCH_SECRET ?? '')}
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"durationUs":%d,"non2xx":%d,"errors":%d,"timeouts":%d,"p50":%.3f,"p99":%.3f,"max":%.3f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
`);

const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });
const line = /^WRK (\{.*\})$/m.exec(out);
if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${out.slice(-500)}`);
const r = JSON.parse(line[1]!) as { requests: number; durationUs: number; non2xx: number; errors: number; timeouts: number; p50: number; p99: number; max: number };
const secondsRun = r.durationUs / 1e6;
const ok = r.requests - r.non2xx;
process.stdout.write(`${JSON.stringify({
  ok, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, seconds: secondsRun,
  perSecond: ok / secondsRun, p50: r.p50, p99: r.p99, max: r.max,
})}\n`);
