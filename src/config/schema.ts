import { z } from 'zod';
import { collectSecret, secretString } from './secret.ts';
import { basicSecretOf } from '../observability/scrub.ts';
import { KafkaSaslSchema, KafkaTlsSchema, pemFile } from './bus-security.ts';
import { StrictPolicySchema } from '../policy/model.ts';
import { destNamespaceProblem, swrDomain } from '../swr/names.ts';
import { swrLoginProject } from '../swr/endpoints.ts';

const id = z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, underscore and dash only');
// A password in a URL would be printed wherever the URL is (`check`, logs) and is not sent by the
// HTTP client anyway: credentials have their own field. The message never repeats the URL.
// (zod runs the refinements after a failed z.url too: an unparsable URL passes them, reported once.)
const httpUrl = z.url({ protocol: /^https?$/ })
  .refine((u) => { const p = URL.parse(u); return !p || (p.username === '' && p.password === ''); }, 'no user or password in the URL: put them under `credentials`')
  .refine((u) => { const p = URL.parse(u); return !p || (p.search === '' && p.hash === ''); }, 'a base URL without query or fragment')
  .transform((u) => u.replace(/\/+$/, ''));

export const TlsSchema = z.object({
  /** Turns certificate verification off for this one registry. */
  insecure: z.boolean().default(false),
  /** PEM file of extra CA certificates; read at load so a wrong path is reported at its field. */
  caFile: pemFile('CA').optional(),
}).strict();

export const LimitsSchema = z.object({
  /** Requests at once; a blob download or upload holds its slot while it moves (twice worker.transfers by default). */
  concurrency: z.number().int().min(1).max(256).default(16),
  requestsPerSecond: z.number().positive().optional(),
  /** Bandwidth cap in Kbit/s, as Harbor's `speed`. */
  speedKbps: z.number().int().positive().optional(),
}).strict();

const BasicCredentials = z.object({ username: z.string().min(1), password: secretString }).strict()
  // The pair as an HTTP Basic header carries it is a secret too (scrubbed from messages that quote one).
  .transform((c) => { collectSecret(basicSecretOf(c.username, c.password)); return c; });
const AkSkCredentials = z.object({ accessKey: secretString, secretKey: secretString }).strict();
// Either pair; the shape is picked by its keys first so a secret's own error (say, an unset
// environment variable) is reported at its field instead of as "Invalid input" for the union.
const TargetCredentials = z.custom<unknown>().transform((v, ctx) => {
  const schema = v !== null && typeof v === 'object' && ('accessKey' in v || 'secretKey' in v) ? AkSkCredentials : BasicCredentials;
  const r = schema.safeParse(v);
  if (!r.success) {
    for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  }
  return r.data as z.infer<typeof BasicCredentials> | z.infer<typeof AkSkCredentials>;
});

export const SourceSchema = z.object({
  id,
  kind: z.enum(['harbor', 'registry']).default('harbor'),
  /** Harbor base URL: its registry API and its REST API. */
  url: httpUrl,
  /** Registry URL when it differs from `url`. */
  registryUrl: httpUrl.optional(),
  credentials: BasicCredentials.optional(),
  webhookSecrets: z.array(secretString).default([]),
  /** Accept webhooks without an Authorization check (logged loudly at start-up). */
  insecure: z.boolean().default(false),
  tls: TlsSchema.default({ insecure: false }),
  limits: LimitsSchema.default({ concurrency: 16 }),
}).strict();

export const TargetSchema = z.object({
  id,
  kind: z.enum(['swr', 'registry']),
  url: httpUrl.optional(),
  region: z.string().regex(/^[a-z0-9-]+$/).optional(),
  edition: z.enum(['basic', 'enterprise']).default('basic'),
  project: z.string().optional(),
  registryUrl: httpUrl.optional(),
  apiUrl: httpUrl.optional(),
  /** Domain suffix for derived SWR endpoints (other Huawei Cloud domains). */
  domain: z.string().refine((d) => swrDomain(d) !== undefined, 'a DNS domain such as myhuaweicloud.com (no scheme, port or path)').default('myhuaweicloud.com'),
  credentials: TargetCredentials.optional(),
  iamToken: secretString.optional(),
  manifestFormat: z.enum(['preserve', 'docker']).optional(),
  tls: TlsSchema.default({ insecure: false }),
  limits: LimitsSchema.default({ concurrency: 16 }),
}).strict().superRefine((t, ctx) => {
  if (t.kind === 'registry' && !t.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'a registry target needs a url' });
  // Refused here rather than by every task later (the first as a dead letter, the second as anonymous pushes).
  const akSk = t.credentials !== null && typeof t.credentials === 'object' && 'accessKey' in t.credentials;
  if (t.kind === 'registry' && akSk) ctx.addIssue({ code: 'custom', path: ['credentials'], message: 'a registry target logs in with username and password; accessKey/secretKey are for kind: swr' });
  if (t.kind === 'swr' && !t.credentials) ctx.addIssue({ code: 'custom', path: ['credentials'], message: 'an swr target needs credentials: accessKey and secretKey (or the username and password of a long-term login command)' });
  if (t.kind !== 'swr') return;
  // Every edition: the registry login from AK/SK is `<project>@<AK>` (see swr/credentials.ts).
  if (akSk && swrLoginProject(t) === undefined) {
    ctx.addIssue({ code: 'custom', path: ['project'], message: 'an swr target with accessKey/secretKey needs a project (or a region, which is the default project): the registry login is <project>@<accessKey>' });
  }
  if (t.edition === 'enterprise') {
    // An Enterprise instance has its own domain; the region's shared registry is SWR Basic.
    if (!t.registryUrl) ctx.addIssue({ code: 'custom', path: ['registryUrl'], message: 'an SWR Enterprise target needs its instance\'s registryUrl (the region\'s swr.<region> host is SWR Basic)' });
    return;
  }
  if (!t.region) {
    if (!t.registryUrl) ctx.addIssue({ code: 'custom', path: ['region'], message: 'an swr target needs a region (or registryUrl and apiUrl)' });
    if (!t.apiUrl) ctx.addIssue({ code: 'custom', path: ['apiUrl'], message: 'an swr target without a region needs an apiUrl' });
  }
});

export const ConfigSchema = z.object({
  server: z.object({
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().default('0.0.0.0'),
    apiTokens: z.array(secretString).default([]),
    bodyLimitBytes: z.number().int().positive().default(1024 * 1024),
    /** Deadline for the bus to acknowledge a webhook; well under Harbor's 3 s timeout. */
    // Bounded: a webhook waits this long for the bus while its sender holds the connection (Harbor gives up after 3 s).
    publishTimeoutMs: z.number().int().positive().max(600_000).default(2000),
  }).strict().default({ port: 8080, host: '0.0.0.0', apiTokens: [], bodyLimitBytes: 1024 * 1024, publishTimeoutMs: 2000 }),
  bus: z.object({
    kind: z.enum(['kafka', 'embedded']).optional(),
    brokers: z.array(z.string().min(1)).default([]),
    topicPrefix: z.string().default('harbor-bridge.'),
    clientId: z.string().default('harbor-swr-bridge'),
    /** Kafka: TLS towards the brokers (on when the section is present) and a SASL login. */
    tls: KafkaTlsSchema.optional(),
    sasl: KafkaSaslSchema.optional(),
    partitions: z.number().int().min(1).default(6),
    dataDir: z.string().default('./data'),
    /** Embedded bus: records older than this are pruned once every group has passed them. */
    retentionHours: z.number().positive().default(168),
  }).strict().default({ brokers: [], topicPrefix: 'harbor-bridge.', clientId: 'harbor-swr-bridge', partitions: 6, dataDir: './data', retentionHours: 168 }),
  worker: z.object({
    /** Tasks executed at once by one process. */
    concurrency: z.number().int().min(1).max(1024).default(16),
    /** Blob transfers at once per process, shared by all tasks (one pool). */
    transfers: z.number().int().min(1).max(256).default(8),
    /** In-process attempts before a task goes to the retry topic. */
    attempts: z.number().int().min(1).default(3),
    /** Attempts through the retry topic before the DLQ. */
    maxRetries: z.number().int().min(0).default(8),
    retryBaseMs: z.number().int().positive().default(5000),
    retryMaxMs: z.number().int().positive().default(15 * 60 * 1000),
    /** Abandon a task that moved no bytes for this long. */
    stallTimeoutMs: z.number().int().positive().default(120000),
    shutdownTimeoutMs: z.number().int().positive().default(30000),
    /** Port for /livez, /readyz and /metrics of a `work` process (which serves no webhooks); unset: none. */
    metricsPort: z.number().int().min(0).max(65535).optional(),
  }).strict().default({ concurrency: 16, transfers: 8, attempts: 3, maxRetries: 8, retryBaseMs: 5000, retryMaxMs: 900000, stallTimeoutMs: 120000, shutdownTimeoutMs: 30000 }),
  sources: z.array(SourceSchema).min(1),
  targets: z.array(TargetSchema).min(1),
  policies: z.array(StrictPolicySchema).default([]),
}).strict().superRefine((c, ctx) => {
  const dup = (list: { id: string }[], field: string) => {
    const seen = new Set<string>();
    list.forEach((x, i) => {
      if (seen.has(x.id)) ctx.addIssue({ code: 'custom', path: [field, i, 'id'], message: `duplicate id "${x.id}"` });
      seen.add(x.id);
    });
  };
  dup(c.sources, 'sources');
  dup(c.targets, 'targets');
  dup(c.policies, 'policies');
  c.sources.forEach((s, i) => {
    if (s.webhookSecrets.length === 0 && !s.insecure) {
      ctx.addIssue({ code: 'custom', path: ['sources', i, 'webhookSecrets'], message: 'a source needs at least one webhook secret (or insecure: true to accept unauthenticated webhooks)' });
    }
  });
  const sources = new Set(c.sources.map((s) => s.id));
  const targets = new Set(c.targets.map((t) => t.id));
  c.policies.forEach((p, i) => {
    if (!sources.has(p.src_registry)) ctx.addIssue({ code: 'custom', path: ['policies', i, 'src_registry'], message: `unknown source "${p.src_registry}"` });
    if (!targets.has(p.dest_registry)) ctx.addIssue({ code: 'custom', path: ['policies', i, 'dest_registry'], message: `unknown target "${p.dest_registry}"` });
    const swr = c.targets.some((t) => t.id === p.dest_registry && t.kind === 'swr');
    const problem = swr ? destNamespaceProblem(p.dest_namespace) : undefined;
    if (problem) ctx.addIssue({ code: 'custom', path: ['policies', i, 'dest_namespace'], message: problem });
  });
});

export type Config = z.infer<typeof ConfigSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type TargetConfig = z.infer<typeof TargetSchema>;
export type LimitsConfig = z.infer<typeof LimitsSchema>;
export type TlsConfig = z.infer<typeof TlsSchema>;
