// The Kafka bus's TLS and SASL settings (`bus.tls`, `bus.sasl`). Files are read when the config
// loads, so a wrong path or a file of the wrong kind is reported at its field before anything
// starts; the password is a secret (inline, `${ENV}` or `file:`) and never echoed.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { busSecretString } from './secret.ts';

type PemKind = 'CA' | 'certificate' | 'key';

/** Why `text` is not a usable PEM of this kind, if it is not. */
export function pemProblem(kind: PemKind, path: string, text: string): string | undefined {
  if (kind !== 'key') return text.includes('-----BEGIN CERTIFICATE-----') ? undefined : `${path} holds no PEM certificate`;
  // Node takes no passphrase from the bridge's config: an encrypted key could never be used.
  if (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,ENCRYPTED/.test(text)) return `${path} is an encrypted private key; give an unencrypted PEM key (readable by the bridge only)`;
  return /-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text) ? undefined : `${path} holds no PEM private key`;
}

/** A PEM file's path, read when the config loads so a wrong path or kind is reported at its field. */
export function pemFile(kind: PemKind) {
  return z.string().min(1).superRefine((path, ctx) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `cannot read ${kind} file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})` });
      return;
    }
    const problem = pemProblem(kind, path, text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** Present: the bus speaks TLS. As a registry's `tls`, plus a client certificate for mutual TLS. */
export const KafkaTlsSchema = z.object({
  /** Turns certificate verification off for this bus only. */
  insecure: z.boolean().default(false),
  /** PEM of extra CA certificates, added to Node's roots (not used instead of them). */
  caFile: pemFile('CA').optional(),
  /** Client certificate and its key, for brokers that require mutual TLS; both or neither. */
  certFile: pemFile('certificate').optional(),
  keyFile: pemFile('key').optional(),
}).strict().superRefine((t, ctx) => {
  if (t.certFile && !t.keyFile) ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'a client certificate (certFile) needs its private key (keyFile)' });
  if (t.keyFile && !t.certFile) ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'a client key (keyFile) needs its certificate (certFile)' });
});

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const KafkaSaslSchema = z.object({
  /** Kafka's own spelling (`SCRAM-SHA-512`) is taken too. */
  mechanism: z.preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(SASL_MECHANISMS)),
  username: z.string().min(1),
  password: busSecretString,
}).strict();

export type KafkaTlsConfig = z.infer<typeof KafkaTlsSchema>;
export type KafkaSaslConfig = z.infer<typeof KafkaSaslSchema>;
