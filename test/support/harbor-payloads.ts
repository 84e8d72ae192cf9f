// Webhook bodies shaped as Harbor 2.x sends them with its Default payload format.
export function harborV2Payload(type: 'PUSH_ARTIFACT' | 'DELETE_ARTIFACT', repository: string, ref: { tag?: string; digest: string }, occurAt = Math.floor(Date.now() / 1000)) {
  const [namespace, ...rest] = repository.split('/');
  return {
    type,
    occur_at: occurAt,
    operator: 'admin',
    event_data: {
      resources: [{ digest: ref.digest, tag: ref.tag ?? ref.digest, resource_url: `harbor.example.com/${repository}:${ref.tag ?? ref.digest}` }],
      repository: { date_created: occurAt - 60, name: rest.join('/'), namespace, repo_full_name: repository, repo_type: 'private' },
    },
  };
}

export async function postWebhook(bridgeUrl: string, sourceId: string, body: unknown, authorization?: string, contentType = 'application/json'): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (authorization !== undefined) headers.authorization = authorization;
  return fetch(`${bridgeUrl}/webhooks/harbor/${sourceId}`, { method: 'POST', headers, body: JSON.stringify(body) });
}
