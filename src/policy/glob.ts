import { BridgeError } from '../errors.ts';

// Harbor matches replication filters with github.com/bmatcuk/doublestar v1 (via
// src/pkg/reg/util.Match). Patterns compile once to an anchored RegExp with these rules:
// - a path is split on `/`; a component that is exactly `**` matches zero or more whole
//   components in front of or between others (`a/**/b` matches `a/b`), and one or more at the
//   end (`a/**` matches `a/b` and `a/b/c`, not `a`); `**` alone matches anything, even "";
// - `*` is any run of non-`/` characters (so `*` matches "" and an untagged artifact);
// - `?` one non-`/` character; `[a-z]`, `[^x]` one character from a class (as in Harbor's
//   doublestar v1, `!` is an ordinary character there, not a negation);
// - `{a,b}` alternation (nestable here; doublestar v1 only nests one level);
// - `\x` the literal x;
// - `regex:<re>` is an unanchored regular expression: the bridge's own extension (Harbor's
//   util.Match has no such prefix; there the pattern matches nothing, `:` being in no name).
// An empty pattern matches everything, as in Harbor's util.Match.

export type GlobMatcher = (name: string) => boolean;

const CACHE_MAX = 1024;
const cache = new Map<string, GlobMatcher | BridgeError>();

/** True when `name` matches `pattern`; an invalid pattern matches nothing (Harbor fails the filter). */
export function globMatch(pattern: string, name: string): boolean {
  const m = cached(pattern);
  return typeof m === 'function' ? m(name) : false;
}

/** Compile a pattern, throwing BridgeError HSB_POLICY_PATTERN_INVALID when it is malformed. */
export function compileGlob(pattern: string): GlobMatcher {
  const m = cached(pattern);
  if (typeof m !== 'function') throw m;
  return m;
}

/** The reason a pattern is malformed, or undefined when it is fine (for schema validation). */
export function globError(pattern: string): string | undefined {
  const m = cached(pattern);
  return typeof m === 'function' ? undefined : m.message;
}

function cached(pattern: string): GlobMatcher | BridgeError {
  let m = cache.get(pattern);
  if (m === undefined) {
    try {
      m = build(pattern);
    } catch (e) {
      m = e instanceof BridgeError ? e : invalid(pattern, e instanceof Error ? e.message : String(e));
    }
    // Patterns come from a handful of policies; the bound only guards against API abuse.
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, m);
  }
  return m;
}

function invalid(pattern: string, why: string): BridgeError {
  return new BridgeError('HSB_POLICY_PATTERN_INVALID', `invalid filter pattern "${pattern}": ${why}`, {
    retryable: false,
    context: { pattern },
  });
}

function build(pattern: string): GlobMatcher {
  if (pattern === '') return () => true;
  if (pattern.startsWith('regex:')) {
    const re = new RegExp(pattern.slice('regex:'.length), 'u');
    return (name) => re.test(name);
  }
  const re = new RegExp(`^(?:${toRegExpSource(pattern)})$`, 'su');
  return (name) => re.test(name);
}

/** Split on `/` outside braces and classes, keeping escapes in place. */
function splitComponents(pattern: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') { i++; continue; }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') inClass = true;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === '/' && depth === 0) { out.push(pattern.slice(start, i)); start = i + 1; }
  }
  out.push(pattern.slice(start));
  return out;
}

function toRegExpSource(pattern: string): string {
  const parts = splitComponents(pattern);
  let src = '';
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (part === '**') {
      // Leading/middle: zero or more whole components (each ends with its `/`).
      // Trailing: whatever follows the preceding `/`, or everything when alone.
      src += last ? '.*' : '(?:[^/]*/)*';
      return;
    }
    src += component(pattern, part);
    if (!last) src += '/';
  });
  return src;
}

/** One path component (may contain braces whose options hold `/`, matched literally). */
function component(pattern: string, s: string): string {
  let out = '';
  let i = 0;
  const n = s.length;
  // Parses a brace group starting after `{`; returns [regex, index after `}`].
  const brace = (from: number): [string, number] => {
    const options: string[] = [];
    let cur = '';
    let j = from;
    while (j < n) {
      const c = s[j]!;
      if (c === '}') { options.push(cur); return [`(?:${options.join('|')})`, j + 1]; }
      if (c === ',') { options.push(cur); cur = ''; j++; continue; }
      const [frag, next] = atom(j);
      cur += frag;
      j = next;
    }
    throw invalid(pattern, 'unclosed "{"');
  };
  const atom = (j: number): [string, number] => {
    const c = s[j]!;
    switch (c) {
      case '\\': {
        const cp = s.codePointAt(j + 1);
        if (cp === undefined) throw invalid(pattern, 'trailing "\\"');
        return [literal(String.fromCodePoint(cp)), j + 1 + (cp > 0xffff ? 2 : 1)];
      }
      case '*': return ['[^/]*', j + 1];
      case '?': return ['[^/]', j + 1];
      case '[': return charClass(pattern, s, j + 1);
      case '{': return brace(j + 1);
      case '}': throw invalid(pattern, 'unmatched "}"');
      default: {
        const cp = s.codePointAt(j)!;
        return [literal(String.fromCodePoint(cp)), j + (cp > 0xffff ? 2 : 1)];
      }
    }
  };
  while (i < n) {
    const [frag, next] = atom(i);
    out += frag;
    i = next;
  }
  return out;
}

/** A class body starting after `[`; returns [regex, index after `]`]. */
function charClass(pattern: string, s: string, from: number): [string, number] {
  let j = from;
  let negate = false;
  if (s[j] === '^') { negate = true; j++; }
  const items: string[] = [];
  const readChar = (): number => {
    let cp = s.codePointAt(j);
    if (cp === undefined) throw invalid(pattern, 'unclosed "["');
    if (cp === 0x5c /* \ */) {
      j++;
      cp = s.codePointAt(j);
      if (cp === undefined) throw invalid(pattern, 'unclosed "["');
    }
    j += cp > 0xffff ? 2 : 1;
    return cp;
  };
  while (true) {
    if (j >= s.length) throw invalid(pattern, 'unclosed "["');
    if (s[j] === ']') break;
    if (s[j] === '-') throw invalid(pattern, 'misplaced "-" in a character class');
    const lo = readChar();
    let hi = lo;
    if (s[j] === '-' && s[j + 1] !== ']' && j + 1 < s.length) {
      j++;
      hi = readChar();
      if (hi < lo) throw invalid(pattern, 'character range out of order');
    }
    items.push(lo === hi ? cpEscape(lo) : `${cpEscape(lo)}-${cpEscape(hi)}`);
  }
  if (items.length === 0) throw invalid(pattern, 'empty character class');
  const body = items.join('');
  // Classes never match `/`: a name component cannot contain one.
  return [negate ? `[^/${body}]` : `(?!/)[${body}]`, j + 1];
}

function cpEscape(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function literal(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}
