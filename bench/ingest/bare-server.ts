// The baseline: a bare Express webhook handler that answers 200 without publishing anything.
// `--parse` also reads and parses the JSON body (what any receiver must at least do).
import { createServer } from 'node:http';
import express from 'express';

const parse = process.argv.includes('--parse');
const app = express();
app.disable('x-powered-by');
app.set('etag', false);
const handlers = parse ? [express.json({ type: () => true, limit: 1024 * 1024 })] : [];
app.post('/webhooks/harbor/:sourceId', ...handlers, (_req, res) => { res.status(200).json({ accepted: 1 }); });

const server = createServer(app);
server.keepAliveTimeout = 65000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as { port: number }).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
