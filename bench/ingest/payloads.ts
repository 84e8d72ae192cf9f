// Harbor 2.x Default-format PUSH_ARTIFACT webhooks, shaped as Harbor sends them
// (src/pkg/notifier/model/event.go, formats/default.go): varied repositories (some nested),
// tags and digests, so every request is a distinct event.
import { createHash } from 'node:crypto';

export interface BenchPayload {
  repository: string;
  tag: string;
  body: string;
}

const PROJECTS = ['library', 'platform', 'team-a', 'ml'];
const IMAGES = ['nginx', 'api', 'worker', 'web/frontend', 'tools/ci/runner', 'redis', 'postgres', 'app'];

export function harborPushPayloads(count: number, seed = 'bench'): BenchPayload[] {
  const out: BenchPayload[] = [];
  for (let i = 0; i < count; i++) {
    const project = PROJECTS[i % PROJECTS.length]!;
    const image = IMAGES[Math.floor(i / PROJECTS.length) % IMAGES.length]!;
    const repository = `${project}/${image}`;
    const tag = `v1.${Math.floor(i / 32)}.${i % 32}`;
    const digest = `sha256:${createHash('sha256').update(`${seed}/${i}`).digest('hex')}`;
    const slash = repository.indexOf('/');
    const body = JSON.stringify({
      type: 'PUSH_ARTIFACT',
      occur_at: 1700000000 + i,
      operator: 'robot$ci-pipeline',
      event_data: {
        resources: [{ digest, tag, resource_url: `harbor.example.com/${repository}:${tag}` }],
        repository: {
          date_created: 1699000000,
          name: repository.slice(slash + 1),
          namespace: repository.slice(0, slash),
          repo_full_name: repository,
          repo_type: 'private',
        },
      },
    });
    out.push({ repository, tag, body });
  }
  return out;
}
