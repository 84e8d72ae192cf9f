// Parses WWW-Authenticate (RFC 7235): one or more challenges, each a scheme and auth-params,
// e.g. `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`.
export interface Challenge { scheme: string; params: Record<string, string> }

export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const input = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = input.length;
  const skipWs = () => { while (i < n && (input[i] === ' ' || input[i] === '\t')) i++; };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(input[i]!)) i++;
    return input.slice(start, i);
  };
  while (i < n) {
    skipWs();
    if (input[i] === ',') { i++; continue; }
    const scheme = token();
    if (!scheme) { i++; continue; }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    // auth-params until the next challenge (a token followed by a space, not '=').
    for (;;) {
      skipWs();
      const save = i;
      const key = token();
      if (!key) break;
      skipWs();
      if (input[i] !== '=') { i = save; break; }
      i++;
      skipWs();
      let value = '';
      if (input[i] === '"') {
        i++;
        while (i < n && input[i] !== '"') {
          if (input[i] === '\\' && i + 1 < n) i++;
          value += input[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && input[i] !== ',' && input[i] !== ' ') i++;
        value = input.slice(start, i);
      }
      ch.params[key.toLowerCase()] = value;
      skipWs();
      if (input[i] === ',') {
        i++;
        // A comma ends a param; the next token decides whether a new challenge starts.
        const look = i;
        skipWs();
        const nextKey = token();
        skipWs();
        const isParam = nextKey !== '' && input[i] === '=';
        i = look;
        if (!isParam) break;
      }
    }
  }
  return out;
}
