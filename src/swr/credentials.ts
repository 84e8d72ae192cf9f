import { createHmac } from 'node:crypto';
import { BridgeError } from '../errors.ts';
import { basicSecretOf, registerSecrets } from '../observability/scrub.ts';

export interface SwrLogin {
  username: string;
  password: string;
}

export type SwrLoginInput =
  | { project: string | undefined; accessKey: string; secretKey: string }
  | { username: string; password: string };

/** SWR's long-term login password: lowercase hex HMAC-SHA256 with the SK as key and the AK as message. */
export function swrLoginPassword(accessKey: string, secretKey: string): string {
  return createHmac('sha256', secretKey).update(accessKey, 'utf8').digest('hex');
}

/** Registry login for SWR: `<project>@<AK>` with the derived password, or a ready pair
 * (e.g. a temporary login from SWR's console) passed through unchanged. */
export function swrLogin(input: SwrLoginInput): SwrLogin {
  if ('username' in input) return { username: input.username, password: input.password };
  if (!input.project) {
    throw new BridgeError('HSB_SWR_CONFIG', 'an SWR login from AK/SK needs a project (login prefix) or a region', { retryable: false });
  }
  const login = { username: `${input.project}@${input.accessKey}`, password: swrLoginPassword(input.accessKey, input.secretKey) };
  // Derived here, not in the config: scrubbed from messages like the config's own credentials.
  registerSecrets([login.password, basicSecretOf(login.username, login.password)]);
  return login;
}
