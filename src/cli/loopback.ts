/**
 * Whether `host[:port]` is this machine. Loopback registries are reached over plain HTTP without
 * asking (as docker and skopeo do), and only there may a credential go over plain HTTP.
 */
export function isLoopbackHost(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
