import { z } from 'zod';
import { globError } from './glob.ts';
import { replicationCronError } from './cron.ts';
import { platformError } from '../replication/copy-plan.ts';

// Harbor's replication policy shape (field names as Harbor's API uses them), plus the bridge's
// own per-policy options. Owned by src/policy; config and the REST API both validate with it.
// Validation follows Harbor's own (pkg/reg/model Filter.Validate, controller/replication/model
// Policy.Validate) so a policy Harbor accepts is accepted here and vice versa.

/** OCI repository path (Harbor validates dest_namespace with the distribution name regexp). */
const REPOSITORY_PATH = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * Fields Harbor itself serves or accepts that mean something else here: what to say when a policy
 * (config file or API) carries one. The policies topic keeps reading unknown fields (older or newer
 * writers); only what a user writes is held to the known ones, at every level.
 */
export const POLICY_FIELD_HINTS: Readonly<Record<string, string>> = {
  replicate_deletion: 'use "deletion" (Harbor reads "deletion" on create and update)',
  creation_time: 'read-only in Harbor; leave it out',
  update_time: 'read-only in Harbor; leave it out',
};

/** The hint for an unknown field, if any (own keys only: `constructor` is just another unknown field). */
export function policyFieldHint(key: string): string | undefined {
  return Object.hasOwn(POLICY_FIELD_HINTS, key) ? POLICY_FIELD_HINTS[key] : undefined;
}

function unknownFieldMessage(key: string): string {
  const hint = policyFieldHint(key);
  return `unknown field "${key}"${hint ? `: ${hint}` : ''}`;
}

/** For the strict (user-written) variants: one message naming every unknown field. */
const UNKNOWN_FIELDS = {
  error: (iss: { code?: string; keys?: string[] }) => (iss.code === 'unrecognized_keys' ? (iss.keys ?? []).map(unknownFieldMessage).join('; ') : undefined),
};

const filterShape = {
  type: z.enum(['name', 'tag', 'label', 'resource']),
  /** A glob for name/tag, `image`|`artifact` for resource, label names (array, or one string) for label. */
  value: z.union([z.string(), z.array(z.string())]),
  /** Only tag and label filters take a decoration; absent means `matches`. */
  decoration: z.enum(['matches', 'excludes']).optional(),
};

function checkFilter(f: z.infer<z.ZodObject<typeof filterShape>>, ctx: z.RefinementCtx): void {
  if (f.type !== 'label' && typeof f.value !== 'string') {
    ctx.addIssue({ code: 'custom', path: ['value'], message: `a ${f.type} filter takes a string value` });
    return;
  }
  if (f.type === 'resource' && f.value !== 'image' && f.value !== 'artifact') {
    ctx.addIssue({ code: 'custom', path: ['value'], message: `a resource filter is "image" or "artifact", not "${String(f.value)}"` });
  }
  if ((f.type === 'name' || f.type === 'resource') && f.decoration !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['decoration'], message: 'only tag and label filters take a decoration' });
  }
  if ((f.type === 'name' || f.type === 'tag') && typeof f.value === 'string') {
    const why = globError(f.value);
    if (why) ctx.addIssue({ code: 'custom', path: ['value'], message: why });
  }
}

export const FilterSchema = z.object(filterShape).superRefine(checkFilter);
const StrictFilterSchema = z.strictObject(filterShape, UNKNOWN_FIELDS).superRefine(checkFilter);

const triggerType = z.enum(['event_based', 'scheduled', 'manual']);

function checkTrigger(t: { type: z.infer<typeof triggerType>; trigger_settings?: { cron?: string | undefined } | undefined }, ctx: z.RefinementCtx): void {
  if (t.type !== 'scheduled') return;
  const cron = t.trigger_settings?.cron;
  if (!cron) {
    ctx.addIssue({ code: 'custom', path: ['trigger_settings', 'cron'], message: 'a scheduled trigger needs trigger_settings.cron' });
    return;
  }
  const why = replicationCronError(cron);
  if (why) ctx.addIssue({ code: 'custom', path: ['trigger_settings', 'cron'], message: why });
}

export const TriggerSchema = z.object({
  type: triggerType,
  trigger_settings: z.object({ cron: z.string().optional() }).optional(),
}).superRefine(checkTrigger);
const StrictTriggerSchema = z.strictObject({
  type: triggerType,
  trigger_settings: z.strictObject({ cron: z.string().optional() }, UNKNOWN_FIELDS).optional(),
}, UNKNOWN_FIELDS).superRefine(checkTrigger);

export const PolicySchema = z.object({
  id: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, underscore and dash only'),
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  src_registry: z.string().min(1),
  dest_registry: z.string().min(1),
  dest_namespace: z.string().regex(REPOSITORY_PATH, 'a repository path: lowercase letters and digits, separated by ".", "_", "__", "-" or "/"')
    .or(z.literal('')).default(''),
  /** -1 (Harbor's legacy default): keep only the image name; n ≥ 0: drop the first n path components. */
  dest_namespace_replace_count: z.number().int().min(-1).max(127).default(-1),
  filters: z.array(FilterSchema).default([]),
  trigger: TriggerSchema.default({ type: 'event_based' }),
  deletion: z.boolean().default(false),
  override: z.boolean().default(true),
  /** Bandwidth cap in Kbit/s; -1 or 0 means unlimited, as Harbor. */
  speed: z.number().int().min(-1).default(-1),
  copy_by_chunk: z.boolean().default(false),
  /** Checked here as `copy --platform` checks it: a bad entry would fail every copy (not retryable) at run time. */
  platforms: z.array(z.string().superRefine((p, ctx) => {
    const why = platformError(p);
    if (why) ctx.addIssue({ code: 'custom', message: why });
  })).optional(),
  manifestFormat: z.enum(['preserve', 'docker']).optional(),
  referrers: z.boolean().default(false),
});

/** A policy as a user writes it (config file, API): unknown fields are refused at every level, with a hint where one helps. */
export const StrictPolicySchema = z.strictObject({
  ...PolicySchema.shape,
  filters: z.array(StrictFilterSchema).default([]),
  trigger: StrictTriggerSchema.default({ type: 'event_based' }),
}, UNKNOWN_FIELDS);

export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
export type Filter = z.infer<typeof FilterSchema>;
export type Trigger = z.infer<typeof TriggerSchema>;
