import { z } from 'zod';

// Harbor's replication policy shape (field names as Harbor's API uses them), plus the bridge's
// own per-policy options. Owned by src/policy; config and the REST API both validate with it.
export const FilterSchema = z.object({
  type: z.enum(['name', 'tag', 'label', 'resource']),
  value: z.union([z.string(), z.array(z.string())]),
  decoration: z.enum(['matches', 'excludes']).optional(),
});

export const TriggerSchema = z.object({
  type: z.enum(['event_based', 'scheduled', 'manual']),
  trigger_settings: z.object({ cron: z.string().optional() }).optional(),
});

export const PolicySchema = z.object({
  id: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, underscore and dash only'),
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  src_registry: z.string().min(1),
  dest_registry: z.string().min(1),
  dest_namespace: z.string().default(''),
  dest_namespace_replace_count: z.number().int().min(-1).default(-1),
  filters: z.array(FilterSchema).default([]),
  trigger: TriggerSchema.default({ type: 'event_based' }),
  deletion: z.boolean().default(false),
  override: z.boolean().default(true),
  speed: z.number().int().min(-1).default(-1),
  copy_by_chunk: z.boolean().default(false),
  platforms: z.array(z.string()).optional(),
  manifestFormat: z.enum(['preserve', 'docker']).optional(),
  referrers: z.boolean().default(false),
});

export type Policy = z.infer<typeof PolicySchema>;
export type PolicyInput = z.input<typeof PolicySchema>;
