import { BridgeError } from '../errors.ts';
import type { Policy } from './model.ts';
import { validateSwrPath } from '../swr/names.ts';

/**
 * The destination repository for `srcRepo`, as Harbor's replaceNamespace
 * (controller/replication/flow/stage.go). For `a/b/c/image` and namespace `n`:
 * -1 → n/image, 0 → n/a/b/c/image, 1 → n/b/c/image, 2 → n/c/image, 3 → n/image, 4 → error.
 * An empty namespace keeps the source path whatever the count (Harbor returns early).
 */
export function destRepository(srcRepo: string, destNamespace: string, replaceCount: number): string {
  if (destNamespace === '') return srcRepo;
  const parts = srcRepo.split('/');
  const name = parts[parts.length - 1]!;
  const prefixes = parts.slice(0, -1);
  if (replaceCount < 0) return join([destNamespace, name]);
  if (replaceCount > prefixes.length) {
    throw new BridgeError(
      'HSB_POLICY_REWRITE',
      `cannot rewrite "${srcRepo}": it has only ${prefixes.length} path component(s) before the image name` +
        `${prefixes.length ? ` (${prefixes.join('/')})` : ''}, but dest_namespace_replace_count is ${replaceCount}`,
      { retryable: false, context: { repository: srcRepo, destNamespace, replaceCount } },
    );
  }
  return join([destNamespace, ...prefixes.slice(replaceCount), name]);
}

// Like Go's path.Join for clean names: empty pieces and stray slashes vanish.
function join(pieces: string[]): string {
  return pieces.flatMap((p) => p.split('/')).filter((p) => p !== '').join('/');
}

export type TargetKind = 'swr' | 'registry';

/**
 * Where `srcRepo` goes under `policy` on a target of `target.kind`. Throws BridgeError
 * HSB_POLICY_REWRITE (replace count too large) or HSB_SWR_NAME_INVALID (SWR would refuse the name).
 */
export function resolveDestination(
  policy: Pick<Policy, 'dest_namespace' | 'dest_namespace_replace_count'>,
  srcRepo: string,
  target: { kind: TargetKind },
): string {
  const dest = destRepository(srcRepo, policy.dest_namespace, policy.dest_namespace_replace_count);
  if (target.kind === 'swr') validateSwrPath(dest);
  return dest;
}
