'use strict'
// The helpers the tutorial's steps call (fetchPRDiff, performAIReview, postReviewComments,
// sendSlackNotification, verifySignature), preloaded as globals (steppe.toml [runners.node] preload).
// Each talks to the real HTTP API of its service, at the base URL the environment names (.env.example).
const crypto = require('crypto')

function env(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set (see .env.example)`)
  return value.replace(/\/$/, '')
}

async function call(url, init, what) {
  const res = await fetch(url, init)
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`)
  return res
}

function github(path, init = {}) {
  return call(`${env('GITHUB_API_URL')}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${env('GITHUB_TOKEN')}`,
      'x-github-api-version': '2022-11-28',
      accept: 'application/vnd.github+json',
      ...(init.body ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  }, `GitHub ${path}`)
}

/** GitHub's X-Hub-Signature-256: sha256=HMAC(secret, raw body), compared in constant time. */
function verifySignature(rawBody, header) {
  const expected = 'sha256=' + crypto.createHmac('sha256', env('GITHUB_WEBHOOK_SECRET')).update(rawBody, 'utf8').digest('hex')
  const given = Buffer.from(String(header || ''))
  return given.length === expected.length && crypto.timingSafeEqual(given, Buffer.from(expected))
}

async function fetchPRDiff(repository, prNumber) {
  const res = await github(`/repos/${repository}/pulls/${prNumber}`, { headers: { accept: 'application/vnd.github.diff' } })
  return res.text()
}

/** An OpenAI-compatible chat completion asked for {score: 1-10, summary, comments: [string]} as JSON. */
async function performAIReview(diff) {
  const res = await call(`${env('OPENAI_BASE_URL')}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('OPENAI_API_KEY')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: process.env.OPENAI_MODEL || 'gpt-4o-mini',
      response_format: { type: 'json_object' },
      messages: [
        { role: 'system', content: 'You review pull requests. Answer JSON: {"score": 1-10, "summary": string, "comments": [string]}' },
        { role: 'user', content: diff.slice(0, 20000) },
      ],
    }),
  }, 'chat completion')
  const answer = await res.json()
  const review = JSON.parse(answer.choices[0].message.content)
  return { score: Number(review.score), summary: String(review.summary || ''), comments: review.comments || [] }
}

async function postReviewComments(repository, prNumber, review) {
  const body = [`**AI review: ${review.score}/10**`, review.summary, ...review.comments.map((c) => `- ${c}`)].join('\n')
  await github(`/repos/${repository}/issues/${prNumber}/comments`, { method: 'POST', body: JSON.stringify({ body }) })
}

async function sendSlackNotification({ channel, message }) {
  const res = await call(`${env('SLACK_API_URL')}/chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('SLACK_BOT_TOKEN')}`, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ channel, text: message }),
  }, 'Slack chat.postMessage')
  const answer = await res.json()
  if (!answer.ok) throw new Error(`Slack chat.postMessage: ${answer.error}`)
}

Object.assign(globalThis, { verifySignature, fetchPRDiff, performAIReview, postReviewComments, sendSlackNotification })
