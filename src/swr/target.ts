import type { Dispatcher } from 'undici';
import { BridgeError } from '../errors.ts';
import type { LimitsConfig, TargetConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { swrTargetEndpoints } from './endpoints.ts';
import { swrLogin, type SwrLogin } from './credentials.ts';
import { SwrApi, type SwrApiAuth } from './api.ts';
import { defaultManifestFormat, swrLimits, type ManifestFormat } from './limits.ts';

export interface ResolvedSwrTarget {
  id: string;
  edition: TargetConfig['edition'];
  registryUrl: string;
  apiUrl: string;
  /** Login prefix used in the registry username. */
  project: string | undefined;
  login: SwrLogin;
  manifestFormat: ManifestFormat;
  limits: LimitsConfig;
  api: SwrApi;
}

export interface ResolveSwrTargetOptions {
  dispatcher?: Dispatcher;
  logger?: Logger;
  now?: () => Date;
}

/** Everything the replicator needs for one `kind: swr` target, derived in one place. */
export function resolveSwrTarget(t: TargetConfig, opts: ResolveSwrTargetOptions = {}): ResolvedSwrTarget {
  if (t.kind !== 'swr') throw new BridgeError('HSB_SWR_CONFIG', `target ${t.id} is not an swr target`, { retryable: false, context: { target: t.id } });
  const ep = swrTargetEndpoints(t);
  const creds = t.credentials;
  if (!creds) {
    throw new BridgeError('HSB_SWR_CONFIG', `target ${t.id}: an swr target needs credentials (accessKey/secretKey, or username/password)`, {
      retryable: false,
      context: { target: t.id },
    });
  }
  const login = 'accessKey' in creds
    ? swrLogin({ project: ep.project, accessKey: creds.accessKey, secretKey: creds.secretKey })
    : swrLogin({ username: creds.username, password: creds.password });

  // AK/SK signs management calls when configured: it never expires, while an IAM token lasts 24 h.
  // SWR Enterprise instances have a management API of their own, which the bridge does not call.
  const auth: SwrApiAuth = t.edition === 'enterprise'
    ? { kind: 'none', why: 'SWR Enterprise: deleting tags through its management API is not supported; delete in the console, or keep `deletion` off in the policies for this target' }
    : 'accessKey' in creds
      ? { kind: 'aksk', accessKey: creds.accessKey, secretKey: creds.secretKey }
      : t.iamToken
        ? { kind: 'token', token: t.iamToken }
        : { kind: 'none' };

  const api = new SwrApi({
    apiUrl: ep.apiUrl,
    auth,
    tls: t.tls,
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    ...(opts.logger ? { logger: opts.logger.child({ target: t.id }) } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });

  return {
    id: t.id,
    edition: t.edition,
    registryUrl: ep.registryUrl,
    apiUrl: ep.apiUrl,
    project: ep.project,
    login,
    manifestFormat: t.manifestFormat ?? defaultManifestFormat(t.edition),
    limits: swrLimits(t.limits),
    api,
  };
}
