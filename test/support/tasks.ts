// A push task for tests that run the replicator against a config with source `src` and target
// `dst`: the same repository on both sides, tag v1, ids derived from the repository.
import { ReplicationTaskSchema, type ReplicationTask, type ReplicationTaskInput } from '../../src/replication/task.ts';

export function pushTask(repo: string, extra: Partial<ReplicationTaskInput> = {}): ReplicationTask {
  const now = new Date().toISOString();
  return ReplicationTaskSchema.parse({
    schema: 1, id: `t-${repo}`, eventId: `e-${repo}`, action: 'push', sourceId: 'src', repository: repo, tag: 'v1',
    targetId: 'dst', destRepository: repo, policyId: 'p', occurredAt: now, createdAt: now, ...extra,
  });
}
