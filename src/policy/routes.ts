// `GET|PUT|DELETE /policies[/:id]`, mounted by the app under /api/v1 behind bearer-token auth and
// express.json(). Reads come from this process's PolicyTable; writes go to the `policies` topic
// through the PolicyStore (never straight into the table), and answer once the change is durable
// and visible here, so a GET right after a PUT sees it.
import express, { type Request, type Response, type Router } from 'express';
import type { Config } from '../config/schema.ts';
import { isBridgeError } from '../errors.ts';
import { sendError } from '../http/errors.ts';
import { PolicySchema, policyFieldHint, StrictPolicySchema, type Policy } from './model.ts';
import type { PolicyStore } from './store.ts';
import type { PolicyTable } from './table.ts';
import { destNamespaceProblem } from '../swr/names.ts';

export interface PolicyRouterDeps {
  store: Pick<PolicyStore, 'put' | 'delete'> & Partial<Pick<PolicyStore, 'isLoaded'>>;
  table: PolicyTable;
  config: Pick<Config, 'sources' | 'targets'> & Partial<Pick<Config, 'policies'>>;
}

export interface FieldIssue {
  path: string;
  message: string;
}

const KNOWN_FIELDS = new Set(Object.keys(PolicySchema.shape));

/**
 * Fields Harbor's own GET of a policy carries that say nothing new: its timestamps, and
 * `replicate_deletion` when it repeats `deletion`. A body copied from Harbor passes with them; a
 * `replicate_deletion` on its own is still refused with its hint (the bridge reads `deletion`).
 */
function harborEcho(key: string, b: Record<string, unknown>): boolean {
  if (key === 'creation_time' || key === 'update_time') return typeof b[key] === 'string';
  if (key === 'replicate_deletion') return typeof b.deletion === 'boolean' && b.replicate_deletion === b.deletion;
  return false;
}

/** Validates a PUT body for policy `id`: Harbor's field names, the bridge's sources and targets. */
export function validatePolicyBody(id: string, body: unknown, config: PolicyRouterDeps['config']): { ok: true; policy: Policy } | { ok: false; issues: FieldIssue[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, issues: [{ path: '(body)', message: 'expected a JSON object with the policy' }] };
  }
  const issues: FieldIssue[] = [];
  const b = body as Record<string, unknown>;
  // Harbor's own ids are numbers: `"id": 3` in the body of PUT /policies/3 names the same policy.
  if (b.id !== undefined && String(b.id) !== id) issues.push({ path: 'id', message: `the body's id "${String(b.id)}" differs from the id in the path "${id}"` });
  for (const k of Object.keys(b)) {
    if (harborEcho(k, b)) continue;
    if (!KNOWN_FIELDS.has(k)) {
      const hint = policyFieldHint(k);
      issues.push({ path: k, message: `unknown field${hint ? `: ${hint}` : ''}` });
    }
  }
  // Harbor names registries by object; the bridge by configured id.
  for (const field of ['src_registry', 'dest_registry'] as const) {
    const v = b[field];
    if (v !== undefined && typeof v !== 'string') issues.push({ path: field, message: `the id of a configured ${field === 'src_registry' ? 'source' : 'target'} (a string)` });
  }
  // Unknown top-level fields are reported above, each at its path; the strict schema finds those inside filters and trigger.
  const parsed = StrictPolicySchema.safeParse({ ...Object.fromEntries(Object.entries(b).filter(([k]) => KNOWN_FIELDS.has(k) && k !== 'id')), id });
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const path = i.path.map(String).join('.');
      if ((path === 'src_registry' || path === 'dest_registry') && issues.some((x) => x.path === path)) continue;
      issues.push({ path: path || '(body)', message: i.message });
    }
  }
  // Named even when other fields are wrong too, so one round trip shows every problem.
  if (typeof b.src_registry === 'string' && b.src_registry !== '' && !config.sources.some((s) => s.id === b.src_registry)) {
    issues.push({ path: 'src_registry', message: `no source "${b.src_registry}" is configured (sources: ${config.sources.map((s) => s.id).join(', ')})` });
  }
  if (typeof b.dest_registry === 'string' && b.dest_registry !== '' && !config.targets.some((t) => t.id === b.dest_registry)) {
    issues.push({ path: 'dest_registry', message: `no target "${b.dest_registry}" is configured (targets: ${config.targets.map((t) => t.id).join(', ')})` });
  }
  const swr = config.targets.some((t) => t.id === b.dest_registry && t.kind === 'swr');
  const namespaceProblem = swr && parsed.success ? destNamespaceProblem(parsed.data.dest_namespace) : undefined;
  if (namespaceProblem) issues.push({ path: 'dest_namespace', message: namespaceProblem });
  if (issues.length || !parsed.success) return { ok: false, issues };
  return { ok: true, policy: parsed.data };
}

export function policyRouter(deps: PolicyRouterDeps): Router {
  const router = express.Router();

  // Until the table is built from the topic (bus connecting or down), it would answer [] and 404s
  // for policies that exist, and a PUT would say 201 for one it replaces.
  router.use('/policies', (_req, res, next) => {
    if (deps.store.isLoaded?.() === false) {
      res.set('Retry-After', '5');
      return sendError(res, 503, 'policies_loading', 'the policies are still being read from the bus; retry later');
    }
    next();
  });

  router.get('/policies', (_req, res) => {
    res.json(deps.table.list().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  });

  // The collection is read-only: a PUT or DELETE without an id is a method error, not a missing route.
  router.all('/policies', (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.set('Allow', 'GET, HEAD');
    sendError(res, 405, 'method_not_allowed', `${req.method} needs a policy id: /api/v1/policies/<id>`);
  });

  router.get('/policies/:id', (req, res) => {
    const p = deps.table.get(req.params.id);
    if (!p) return sendError(res, 404, 'not_found', `no policy "${req.params.id}"`);
    res.json(p);
  });

  // The config file is seeded into the topic at every start and wins there: an API edit of one of
  // its policies would be undone by the next process that starts, so it is refused instead.
  const inConfig = new Set((deps.config.policies ?? []).map((p) => p.id));
  const refuseConfigPolicy = (res: Response, id: string, verb: string) => sendError(res, 409, 'policy_in_config',
    `policy "${id}" is defined in the config file: ${verb} it there (the file is applied again at every start)`);

  router.put('/policies/:id', async (req: Request<{ id: string }>, res: Response) => {
    const id = req.params.id;
    if (inConfig.has(id)) return refuseConfigPolicy(res, id, 'change');
    if (req.is('application/json') === false) return sendError(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
    const v = validatePolicyBody(id, req.body, deps.config);
    if (!v.ok) {
      return sendError(res, 400, 'invalid_policy', `invalid policy: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues: v.issues });
    }
    const existed = deps.table.get(id) !== undefined;
    try {
      const stored = await deps.store.put(v.policy, 'api');
      res.status(existed ? 200 : 201).json(stored);
    } catch (e) {
      busFailure(res, e, 'store the policy');
    }
  });

  router.delete('/policies/:id', async (req: Request<{ id: string }>, res: Response) => {
    const id = req.params.id;
    if (inConfig.has(id)) return refuseConfigPolicy(res, id, 'remove');
    if (!deps.table.get(id)) return sendError(res, 404, 'not_found', `no policy "${id}"`);
    try {
      await deps.store.delete(id);
      res.status(204).end();
    } catch (e) {
      busFailure(res, e, 'delete the policy');
    }
  });

  return router;
}

function busFailure(res: Response, e: unknown, what: string): void {
  if (isBridgeError(e) && e.retryable) {
    res.set('Retry-After', '5');
    return sendError(res, 503, 'bus_unavailable', `could not ${what}: the bus is unavailable; retry later`);
  }
  throw e;
}
