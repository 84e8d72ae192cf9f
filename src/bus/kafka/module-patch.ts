import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Puts `make(original)` in place of one of kafkajs' CommonJS modules in this process's module cache.
 * Only works before `boundBy` (the modules that require it once, at load) are loaded, so callers
 * run on import, ahead of kafkajs. Returns kafkajs' original, or undefined (nothing replaced) when
 * the module is not there, is not a function of `arity` arguments, or `boundBy` already holds it.
 */
export function replaceBeforeLoad<T extends (...args: never[]) => unknown>(target: string, boundBy: string | readonly string[], arity: number, make: (original: T) => T): T | undefined {
  try {
    for (const b of typeof boundBy === 'string' ? [boundBy] : boundBy) if (require.cache[require.resolve(b)]) return undefined;
    const path = require.resolve(target);
    const original = require(path) as unknown;
    const cached = require.cache[path];
    if (typeof original !== 'function' || original.length !== arity || !cached) return undefined;
    cached.exports = make(original as T);
    return original as T;
  } catch {
    return undefined;
  }
}
