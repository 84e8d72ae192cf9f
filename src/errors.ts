import { scrubSecrets } from './observability/scrub.ts';

// One error type for the whole bridge: a stable `code` to match on, whether a retry can help,
// and the context an operator needs to act. Messages never carry secrets: they are scrubbed here,
// since some quote what a server sent.
export type ErrorContext = Record<string, string | number | boolean | undefined>;

export class BridgeError extends Error {
  override name = 'BridgeError';
  readonly code: string;
  readonly retryable: boolean;
  readonly context: ErrorContext;

  constructor(code: string, message: string, opts: { retryable?: boolean; context?: ErrorContext; cause?: unknown } = {}) {
    super(scrubSecrets(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.context = opts.context ?? {};
  }

  toJSON(): { code: string; message: string; retryable: boolean; context: ErrorContext } {
    return { code: this.code, message: this.message, retryable: this.retryable, context: this.context };
  }
}

export function isBridgeError(e: unknown): e is BridgeError {
  return e instanceof BridgeError;
}

/** Normalise anything thrown into a BridgeError; unknown errors are treated as transient. */
export function toBridgeError(e: unknown, code = 'HSB_INTERNAL'): BridgeError {
  if (e instanceof BridgeError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new BridgeError(code, message, { retryable: true, cause: e });
}
