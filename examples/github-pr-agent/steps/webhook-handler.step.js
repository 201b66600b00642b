// webhook-handler.step.js: the tutorial's sample, with GitHub's signature check in front and the merged
// PR case added. POST /webhook/github (declared in steppe.toml).
export default async function handleGitHubWebhook(event) {
  if (!verifySignature(event.rawBody, event.headers['x-hub-signature-256'])) {
    return { status: 401, body: { error: 'invalid X-Hub-Signature-256' } }
  }
  if (event.headers['x-github-event'] === 'ping') return { status: 'pong' }

  const { action, pull_request } = event.body

  if (action === 'opened') {
    await event.emit('pr-opened', {
      prNumber: pull_request.number,
      repository: pull_request.base.repo.full_name,
      author: pull_request.user.login,
      title: pull_request.title
    });
  }

  if (action === 'closed' && pull_request.merged) {
    await event.emit('pr-merged', {
      prNumber: pull_request.number,
      repository: pull_request.base.repo.full_name,
      mergedBy: 'github'
    });
  }

  return { status: 'processed' };
}
