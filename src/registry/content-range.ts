// Range headers of the upload protocol. Registries answer `Range: 0-<last byte>` (inclusive;
// some prefix `bytes=`); chunks are sent with `Content-Range: <first>-<last>`.

/** Bytes the registry holds for an upload session (the next offset to send), or undefined. */
export function uploadOffsetFromRange(range: string | undefined): number | undefined {
  if (!range) return undefined;
  const m = /^(?:bytes[= ])?(\d+)-(\d+)$/.exec(range.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (start !== 0 || end < start) return undefined;
  // distribution reports an empty session as 0-0 too; callers treat 0-0 as 0 and let a 416
  // (offset disagreement) restart the session.
  return end === 0 ? 0 : end + 1;
}

export function contentRange(offset: number, length: number): string {
  return `${offset}-${offset + length - 1}`;
}

/** `Content-Range: bytes a-b/total` of a 206 response to a ranged GET. */
export function parseContentRange(v: string | undefined): { start: number; end: number; total?: number } | undefined {
  if (!v) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), ...(m[3] !== '*' ? { total: Number(m[3]) } : {}) };
}
