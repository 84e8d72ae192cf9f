import { hash } from 'node:crypto';

// Event ids must be stable across the sender's retries so the bus consumers can drop duplicates.

export interface EventIdParts {
  sourceId: string;
  /** Sender's type string, e.g. PUSH_ARTIFACT. */
  type: string;
  repository: string;
  digest?: string | undefined;
  tag?: string | undefined;
  /** Sender's occur_at (unix seconds) as given; absent when the sender gave none. */
  occurAt?: number | string | undefined;
}

/** sha256 hex of (sourceId, type, repository, digest, tag, occurAt) joined with NUL; absent parts are "". */
export function eventIdOf(parts: EventIdParts): string {
  const fields = [parts.sourceId, parts.type, parts.repository, parts.digest ?? '', parts.tag ?? '', parts.occurAt === undefined ? '' : String(parts.occurAt)];
  // One-shot hash: no Hash object per webhook (same digest as createHash).
  return hash('sha256', fields.join('\0'), 'hex');
}

/** Id of the i-th event made from one sender event that already has an id (CloudEvents): the first keeps it. */
export function indexedEventId(id: string, index: number): string {
  return index === 0 ? id : `${id}#${index}`;
}
