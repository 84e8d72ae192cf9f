/**
 * TEST DOUBLE — not Harbor's code and not a complete Harbor. A real HTTP server on 127.0.0.1
 * that answers the read-only calls the policy importer makes, shaped as Harbor's published API
 * serves them (api/v2.0/swagger.yaml for 2.x; src/core/api + src/replication/model for v1.10):
 *
 * Harbor 2.x (`version: 'v2'`):
 * - `GET /api/v2.0/systeminfo` (anonymous allowed) → `{ harbor_version, auth_mode, ... }`.
 * - `GET /api/v2.0/replication/policies`, `GET /api/v2.0/registries`: `page` (default 1) and
 *   `page_size` (default 10, above 100 → 422); headers `X-Total-Count` and
 *   `Link: </api/v2.0/...?page=1&page_size=2>; rel="prev" , </api/v2.0/...?page=3&page_size=2>; rel="next"`
 *   (relative URLs, entries joined by " , " as Harbor's lib.Links does).
 * - Bodies as go-swagger renders the models: optional fields with zero values are OMITTED
 *   (a disabled policy has no `enabled`, `deletion: false` is absent, empty `decoration` is
 *   absent); pointer fields (`speed`, `copy_by_chunk`, `dest_namespace_replace_count`) are
 *   always present; `deletion` and `replicate_deletion` both carry the deletion flag; a push
 *   policy's `src_registry` is the local registry (id 0, name "Local", url http://core:8080);
 *   credentials show `access_secret: "*****"`.
 * - Errors `{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}` (401, missing or
 *   wrong basic credentials, robot names such as `robot$bridge` included) and `FORBIDDEN` (403,
 *   a user without the replication-policy permission), `NOT_FOUND` for unknown /api/v2.0 paths.
 *
 * - Artifacts (label filters): `GET /api/v2.0/projects` and `/projects/{p}/repositories` (paged as
 *   above), `GET /api/v2.0/projects/{p}/repositories/{r}/artifacts` (paged) and `.../artifacts/{ref}`
 *   (tag or digest). `{r}` is the repository without its project, URL-encoded twice when it holds
 *   a `/` (`a%252Fb`): Harbor's router decodes the path once, so a single encoding routes nowhere
 *   (404). `with_tag` defaults to true and `with_label` to false; an artifact's `tags` and
 *   `labels` are `null` when not asked for or empty (go-swagger arrays carry no omitempty). The
 *   artifact list of an unknown repository in a known project is `200 []` (Harbor lists by name);
 *   one artifact of it, or an unknown artifact, is 404 `NOT_FOUND`; an unknown project is 403
 *   `FORBIDDEN` for the robot (no access to it); without valid credentials 401.
 *
 * Harbor 1.10 (`version: 'v1.10'`):
 * - `GET /api/systeminfo`; `/api/v2.0/*` is 404 (text).
 * - `GET /api/replication/policies`: `page`/`page_size` (default 500, capped at 500),
 *   `X-Total-Count`, `Link: </api/replication/policies?page=2&page_size=2>; rel="next"` (", "
 *   between entries). `GET /api/registries`: the whole list, no paging headers.
 * - Every field of the Go structs is present (no omitempty): `filters: null` when none,
 *   `trigger_settings: null` for non-scheduled triggers, no `decoration`, no replace count,
 *   speed or chunking; the policy's `src_registry` is the local registry for push policies.
 * - Both endpoints need a system administrator: 401 `{"code":401,"message":"UnAuthorized"}` and
 *   403 `{"code":403,"message":"<username>"}` as text/plain (beego's http.Error).
 * - `GET /api/projects` and `GET /api/repositories?project_id=N` (`project_id` required: 400 without,
 *   404 for an unknown one), paged as the policies are; repository names are `project/repo`.
 * - `GET /api/repositories/{repo}/tags` (the whole list) and `.../tags/{tag}`, with the
 *   repository's slashes kept in the path: one DetailedTag per tag, labels on the tag (`labels: []`
 *   when none). An unknown repository in a known project lists as `[]` (Harbor drops the
 *   registry's 404), an unknown project or tag is 404 `{"code":404,"message":"..."}`; no
 *   credentials: 401.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HarborDoubleUser {
  username: string;
  password: string;
  /** v1.10: only system administrators may list policies and registries. */
  sysadmin?: boolean;
  /** v2: may list replication policies and registries (admins, or robots given the permission). */
  canReadReplication?: boolean;
}

export interface HarborDoubleRegistry {
  id: number;
  name: string;
  url: string;
  type?: string;
  description?: string;
  insecure?: boolean;
  accessKey?: string;
  /** Kept server-side; answered as "*****" when set. */
  accessSecret?: string;
}

/** A policy as Harbor stores it; rendered per API version. */
export interface HarborDoublePolicy {
  id: number;
  name: string;
  description?: string;
  /** 0 = the local Harbor (push mode). */
  srcRegistryId: number;
  /** 0 = the local Harbor (pull mode). */
  destRegistryId: number;
  destNamespace?: string;
  destNamespaceReplaceCount?: number;
  filters?: { type: string; value: unknown; decoration?: string }[];
  trigger?: { type: 'manual' | 'event_based' | 'scheduled'; cron?: string } | null;
  deletion?: boolean;
  override?: boolean;
  enabled?: boolean;
  speed?: number;
  copyByChunk?: boolean;
}

/** An artifact in a repository; 1.10 serves one entry per tag, each with these labels. */
export interface HarborDoubleArtifact {
  repository: string;
  digest: string;
  tags: string[];
  labels: string[];
}

export interface HarborDoubleOptions {
  version: 'v2' | 'v1.10';
  harborVersion?: string;
  users: HarborDoubleUser[];
  registries: HarborDoubleRegistry[];
  policies: HarborDoublePolicy[];
  artifacts?: HarborDoubleArtifact[];
}

export interface HarborDoubleRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** The authenticated user, if the credentials were valid. */
  user: string | undefined;
  status: number;
}

export interface HarborDouble {
  url: string;
  requests: HarborDoubleRequest[];
  close(): Promise<void>;
}

const CREATED = '2024-03-01T10:00:00.000Z';
const CREATED_GO = '2024-03-01T10:00:00.123456Z';
const ZERO_SWAGGER_TIME = '0001-01-01T00:00:00.000Z';
const ZERO_GO_TIME = '0001-01-01T00:00:00Z';

export async function startHarborDouble(opts: HarborDoubleOptions): Promise<HarborDouble> {
  const requests: HarborDoubleRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://double');
    const query = Object.fromEntries(url.searchParams);
    const user = authenticate(req, opts.users);
    const entry: HarborDoubleRequest = { method: req.method ?? 'GET', path: url.pathname, query, user: user?.username, status: 0 };
    requests.push(entry);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}, type = 'application/json') => {
      entry.status = status;
      res.writeHead(status, { 'content-type': type, ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    try {
      if (opts.version === 'v2') serveV2(opts, url, user, send);
      else serveV110(opts, url, user, send);
    } catch (e) {
      send(500, { errors: [{ code: 'UNKNOWN', message: (e as Error).message }] });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

type Send = (status: number, body: unknown, headers?: Record<string, string>, type?: string) => void;

function authenticate(req: IncomingMessage, users: HarborDoubleUser[]): HarborDoubleUser | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  const [username, password] = [decoded.slice(0, i), decoded.slice(i + 1)];
  return users.find((u) => u.username === username && u.password === password);
}

// ---- Harbor 2.x -------------------------------------------------------------------------------

function serveV2(o: HarborDoubleOptions, url: URL, user: HarborDoubleUser | undefined, send: Send): void {
  const p = url.pathname;
  if (p === '/api/v2.0/systeminfo') {
    return send(200, {
      auth_mode: 'db_auth', banner_message: '', current_time: new Date().toISOString(), external_url: 'https://harbor.example.com',
      harbor_version: o.harborVersion ?? 'v2.11.1-6b7ecba1', has_ca_root: false, primary_auth_mode: false, project_creation_restriction: 'adminonly',
      read_only: false, registry_storage_provider_name: 'filesystem', registry_url: 'harbor.example.com', self_registration: false,
    });
  }
  if (p.startsWith('/api/v2.0/projects')) return serveV2Artifacts(o, url, user, send);
  if (p !== '/api/v2.0/replication/policies' && p !== '/api/v2.0/registries') {
    return send(404, { errors: [{ code: 'NOT_FOUND', message: `path ${p} was not found` }] });
  }
  const page = intParam(url, 'page', 1);
  const size = intParam(url, 'page_size', 10);
  if (page === undefined || size === undefined || page < 1 || size < 0) {
    return send(422, { errors: [{ code: 'UNPROCESSABLE_ENTITY', message: 'validation failure list:\npage or page_size is not a valid integer' }] });
  }
  if (size > 100) {
    return send(422, { errors: [{ code: 'UNPROCESSABLE_ENTITY', message: 'validation failure list:\npage_size in query should be less than or equal to 100' }] });
  }
  if (!user) return send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
  if (!user.canReadReplication) return send(403, { errors: [{ code: 'FORBIDDEN', message: 'forbidden' }] });
  const all = p === '/api/v2.0/registries'
    ? o.registries.map(v2Registry)
    : o.policies.map((x) => v2Policy(x, o.registries));
  const items = size === 0 ? all : all.slice((page - 1) * size, page * size);
  const link = v2Links(url, all.length, page, size);
  send(200, items, { 'x-total-count': String(all.length), ...(link ? { link } : {}) });
}

function serveV2Artifacts(o: HarborDoubleOptions, url: URL, user: HarborDoubleUser | undefined, send: Send): void {
  const notFound = (what: string) => send(404, { errors: [{ code: 'NOT_FOUND', message: `${what} not found` }] });
  // The router sees the path decoded once: a repository encoded only once splits into more segments.
  const parts = decodeURIComponent(url.pathname).split('/').slice(3); // after /api/v2.0
  if (!user) return send(401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
  const artifacts = o.artifacts ?? [];
  const projects = [...new Set(artifacts.map((a) => a.repository.split('/')[0]!))].sort();
  const paged = (all: unknown[]) => {
    const page = intParam(url, 'page', 1) ?? 1;
    const size = intParam(url, 'page_size', 10) ?? 10;
    if (size > 100) return send(422, { errors: [{ code: 'UNPROCESSABLE_ENTITY', message: 'validation failure list:\npage_size in query should be less than or equal to 100' }] });
    const link = v2Links(url, all.length, page, size);
    send(200, all.slice((page - 1) * size, page * size), { 'x-total-count': String(all.length), ...(link ? { link } : {}) });
  };
  if (parts.length === 1) return paged(projects.map((name, i) => ({ project_id: i + 1, name })));
  const project = parts[1]!;
  if (!projects.includes(project)) return send(403, { errors: [{ code: 'FORBIDDEN', message: 'forbidden' }] });
  const repos = [...new Set(artifacts.filter((a) => a.repository.startsWith(`${project}/`)).map((a) => a.repository))].sort();
  if (parts.length === 3 && parts[2] === 'repositories') return paged(repos.map((name, i) => ({ id: i + 1, name })));
  if (parts[2] !== 'repositories' || parts[4] !== 'artifacts' || parts.length > 6) return notFound(`path ${url.pathname}`);
  const repository = `${project}/${decodeURIComponent(parts[3]!)}`;
  const withTag = url.searchParams.get('with_tag') !== 'false';
  const withLabel = url.searchParams.get('with_label') === 'true';
  const render = (a: HarborDoubleArtifact, i: number) => ({
    ...omitZero({
      id: i + 1, type: 'IMAGE', media_type: 'application/vnd.oci.image.config.v1+json', manifest_media_type: 'application/vnd.oci.image.manifest.v1+json',
      digest: a.digest, size: 1234, push_time: CREATED, pull_time: ZERO_SWAGGER_TIME, repository_id: 1, project_id: 1,
    }),
    tags: withTag && a.tags.length ? a.tags.map((name, j) => ({ id: j + 1, name, artifact_id: i + 1, repository_id: 1, push_time: CREATED, pull_time: ZERO_SWAGGER_TIME, immutable: false })) : null,
    labels: withLabel && a.labels.length ? a.labels.map((name, j) => ({ id: j + 1, name, description: '', color: '#0095D3', scope: 'g', project_id: 0, creation_time: CREATED, update_time: CREATED })) : null,
  });
  const inRepo = artifacts.filter((a) => a.repository === repository);
  if (parts.length === 5) return paged(inRepo.map(render));
  const ref = parts[5]!;
  const found = inRepo.find((a) => a.digest === ref || a.tags.includes(ref));
  return found ? send(200, render(found, inRepo.indexOf(found))) : notFound(`artifact ${repository}:${ref}`);
}

/** As Harbor's BaseAPI.Links: prev and next with page and page_size set, joined by " , ". */
function v2Links(url: URL, total: number, page: number, size: number): string {
  if (size === 0) return '';
  const links: string[] = [];
  const at = (n: number) => {
    const q = new URLSearchParams(url.searchParams);
    q.set('page', String(n));
    q.set('page_size', String(size));
    return `${url.pathname}?${decodeURIComponent(q.toString())}`;
  };
  if (page > 1 && (page - 1) * size < total) links.push(`<${at(page - 1)}>; rel="prev"`);
  if (size * page < total) links.push(`<${at(page + 1)}>; rel="next"`);
  return links.join(' , ');
}

const LOCAL_V2 = {
  creation_time: ZERO_SWAGGER_TIME,
  credential: { access_secret: '*****', type: 'secret' },
  id: 0,
  insecure: true,
  name: 'Local',
  status: 'healthy',
  type: 'harbor',
  update_time: ZERO_SWAGGER_TIME,
  url: 'http://core:8080',
};

function v2Registry(r: HarborDoubleRegistry): Record<string, unknown> {
  return omitZero({
    creation_time: CREATED,
    credential: omitZero({ access_key: r.accessKey ?? '', access_secret: r.accessSecret ? '*****' : '', type: 'basic' }),
    description: r.description ?? '',
    id: r.id,
    insecure: r.insecure ?? false,
    name: r.name,
    status: 'healthy',
    type: r.type ?? 'docker-registry',
    update_time: CREATED,
    url: r.url,
  }, ['id']);
}

function v2Policy(p: HarborDoublePolicy, registries: HarborDoubleRegistry[]): Record<string, unknown> {
  const reg = (id: number) => (id === 0 ? LOCAL_V2 : v2Registry(registries.find((r) => r.id === id)!));
  const deletion = p.deletion ?? false;
  return omitZero({
    copy_by_chunk: p.copyByChunk ?? false,
    creation_time: CREATED,
    deletion,
    description: p.description ?? '',
    dest_namespace: p.destNamespace ?? '',
    dest_namespace_replace_count: p.destNamespaceReplaceCount ?? -1,
    dest_registry: reg(p.destRegistryId),
    enabled: p.enabled ?? false,
    filters: p.filters?.length ? p.filters.map((f) => omitZero({ decoration: f.decoration ?? '', type: f.type, value: f.value })) : undefined,
    id: p.id,
    name: p.name,
    override: p.override ?? false,
    replicate_deletion: deletion,
    single_active_replication: false,
    speed: p.speed ?? 0,
    src_registry: reg(p.srcRegistryId),
    trigger: p.trigger ? { trigger_settings: omitZero({ cron: p.trigger.cron ?? '' }), type: p.trigger.type } : undefined,
    update_time: CREATED,
  }, ['copy_by_chunk', 'dest_namespace_replace_count', 'speed', 'single_active_replication']);
}

/** go-swagger's `omitempty`: drop false, 0, "" and undefined, except pointer fields (`keep`). */
function omitZero(o: Record<string, unknown>, keep: string[] = []): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => keep.includes(k) || !(v === undefined || v === false || v === 0 || v === '')));
}

// ---- Harbor 1.10 ------------------------------------------------------------------------------

function serveV110(o: HarborDoubleOptions, url: URL, user: HarborDoubleUser | undefined, send: Send): void {
  const p = url.pathname;
  if (p.startsWith('/api/v2.0/')) return send(404, '404 page not found\n', {}, 'text/plain; charset=utf-8');
  if (p === '/api/systeminfo') {
    return send(200, {
      with_notary: false, with_clair: false, with_admiral: false, admiral_endpoint: 'NA', auth_mode: 'db_auth',
      registry_url: 'harbor.example.com', external_url: 'https://harbor.example.com', project_creation_restriction: 'everyone',
      self_registration: false, has_ca_root: false, harbor_version: o.harborVersion ?? 'v1.10.9-7c4dd5a2',
      registry_storage_provider_name: 'filesystem', read_only: false, with_chartmuseum: false, notification_enable: true,
    });
  }
  const text = 'text/plain; charset=utf-8';
  const tags = /^\/api\/repositories\/(.+?)\/tags(?:\/([^/]+))?$/.exec(p);
  if (tags) {
    if (!user) return send(401, JSON.stringify({ code: 401, message: 'UnAuthorized' }) + '\n', {}, text);
    const repository = decodeURIComponent(tags[1]!);
    const project = repository.split('/')[0]!;
    if (!(o.artifacts ?? []).some((a) => a.repository.split('/')[0] === project)) return send(404, JSON.stringify({ code: 404, message: `project ${project} not found` }) + '\n', {}, text);
    const entries = (o.artifacts ?? []).filter((a) => a.repository === repository).flatMap((a) => a.tags.map((tag) => ({ a, tag })));
    const render = ({ a, tag }: { a: HarborDoubleArtifact; tag: string }) => ({
      digest: a.digest, name: tag, size: 1234, architecture: 'amd64', os: 'linux', 'os.version': '', docker_version: '19.03.12', author: '',
      created: CREATED_GO, config: { labels: null }, signature: null, push_time: CREATED_GO, pull_time: ZERO_GO_TIME,
      labels: a.labels.map((name, j) => ({ id: j + 1, name, description: '', color: '', scope: 'g', project_id: 0, creation_time: CREATED_GO, update_time: CREATED_GO, deleted: false })),
    });
    if (tags[2] === undefined) return send(200, entries.map(render));
    const one = entries.find((e) => e.tag === decodeURIComponent(tags[2]!));
    return one ? send(200, render(one)) : send(404, JSON.stringify({ code: 404, message: `resource: ${repository}:${tags[2]} not found` }) + '\n', {}, text);
  }
  if (p === '/api/projects' || p === '/api/repositories') {
    if (!user) return send(401, JSON.stringify({ code: 401, message: 'UnAuthorized' }) + '\n', {}, text);
    const projects = [...new Set((o.artifacts ?? []).map((a) => a.repository.split('/')[0]!))].sort();
    if (p === '/api/projects') return v110Paged(url, projects.map((name, i) => ({ project_id: i + 1, name, owner_id: 1, deleted: false, repo_count: 1, metadata: { public: 'false' } })), send);
    const id = Number(url.searchParams.get('project_id'));
    if (!Number.isInteger(id) || id <= 0) return send(400, JSON.stringify({ code: 400, message: 'invalid project_id' }) + '\n', {}, text);
    const project = projects[id - 1];
    if (project === undefined) return send(404, JSON.stringify({ code: 404, message: `project ${id} not found` }) + '\n', {}, text);
    const repos = [...new Set((o.artifacts ?? []).filter((a) => a.repository.startsWith(`${project}/`)).map((a) => a.repository))].sort();
    return v110Paged(url, repos.map((name, i) => ({ id: i + 1, name, project_id: id, description: '', pull_count: 0, star_count: 0, tags_count: 1, labels: [], creation_time: CREATED_GO, update_time: CREATED_GO })), send);
  }
  if (p !== '/api/replication/policies' && p !== '/api/registries') return send(404, '404 page not found\n', {}, 'text/plain; charset=utf-8');
  if (!user) return send(401, JSON.stringify({ code: 401, message: 'UnAuthorized' }) + '\n', {}, text);
  if (!user.sysadmin) return send(403, JSON.stringify({ code: 403, message: user.username }) + '\n', {}, text);
  if (p === '/api/registries') return send(200, o.registries.map(v110Registry));

  v110Paged(url, o.policies.map((x) => v110Policy(x, o.registries)), send);
}

/** 1.10's BaseAPI paging: `page`, `page_size` (default 500, capped at 500), X-Total-Count and Link. */
function v110Paged(url: URL, all: unknown[], send: Send): void {
  const text = 'text/plain; charset=utf-8';
  const page = intParam(url, 'page', 1);
  let size = intParam(url, 'page_size', 500);
  if (page === undefined || page <= 0) return send(500, JSON.stringify({ code: 500, message: 'invalid page' }) + '\n', {}, text);
  if (size === undefined || size <= 0) return send(500, JSON.stringify({ code: 500, message: 'invalid page_size' }) + '\n', {}, text);
  size = Math.min(size, 500);
  const items = all.slice((page - 1) * size, page * size);
  // As BaseAPI.SetPaginationHeader: only `page` is changed in the request's own URL.
  const links: string[] = [];
  const at = (n: number) => {
    const q = new URLSearchParams(url.searchParams);
    q.set('page', String(n));
    q.sort();
    return `${url.pathname}?${q.toString()}`;
  };
  if (page > 1 && (page - 1) * size <= all.length) links.push(`<${at(page - 1)}>; rel="prev"`);
  if (size * page < all.length) links.push(`<${at(page + 1)}>; rel="next"`);
  send(200, items, { 'x-total-count': String(all.length), ...(links.length ? { link: links.join(', ') } : {}) });
}

const LOCAL_V110 = {
  id: 0, name: 'Local', description: '', type: 'harbor', url: 'http://core:8080', token_service_url: 'http://core:8080/service/token',
  credential: { type: 'secret', access_key: '', access_secret: '*****' }, insecure: true, status: 'healthy',
  creation_time: ZERO_GO_TIME, update_time: ZERO_GO_TIME,
};

function v110Registry(r: HarborDoubleRegistry): Record<string, unknown> {
  return {
    id: r.id, name: r.name, description: r.description ?? '', type: r.type ?? 'docker-registry', url: r.url, token_service_url: '',
    credential: { type: 'basic', access_key: r.accessKey ?? '', access_secret: r.accessSecret ? '*****' : '' },
    insecure: r.insecure ?? false, status: 'healthy', creation_time: CREATED_GO, update_time: CREATED_GO,
  };
}

function v110Policy(p: HarborDoublePolicy, registries: HarborDoubleRegistry[]): Record<string, unknown> {
  const reg = (id: number) => (id === 0 ? LOCAL_V110 : v110Registry(registries.find((r) => r.id === id)!));
  return {
    id: p.id,
    name: p.name,
    description: p.description ?? '',
    creator: 'admin',
    src_registry: reg(p.srcRegistryId),
    dest_registry: reg(p.destRegistryId),
    dest_namespace: p.destNamespace ?? '',
    filters: p.filters?.length ? p.filters.map((f) => ({ type: f.type, value: f.value })) : null,
    trigger: p.trigger ? { type: p.trigger.type, trigger_settings: p.trigger.type === 'scheduled' ? { cron: p.trigger.cron ?? '' } : null } : null,
    deletion: p.deletion ?? false,
    override: p.override ?? false,
    enabled: p.enabled ?? false,
    creation_time: CREATED_GO,
    update_time: CREATED_GO,
  };
}

function intParam(url: URL, name: string, dflt: number): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return dflt;
  return /^-?\d+$/.test(v) ? Number(v) : undefined;
}

