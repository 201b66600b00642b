'use strict'
// The helpers the tutorial's steps call (analyzeSpam, moveToSpam, generateEmailStats,
// permanentlyDeleteSpam, sendPushNotification, sendSlackNotification), preloaded as globals
// (steppe.toml [runners.node] preload). Each calls the real HTTP API of its service (Gmail API v1,
// an OpenAI-compatible chat endpoint, ntfy, Slack Web API) at the base URL the environment names.

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

function gmail(path, init = {}) {
  return call(`${env('GMAIL_API_URL')}/gmail/v1/users/me${path}`, {
    ...init,
    headers: { authorization: `Bearer ${env('GMAIL_ACCESS_TOKEN')}`, 'content-type': 'application/json' },
  }, `Gmail ${path}`)
}

/** How many messages a Gmail search finds, following pages; their ids when `ids` is set. */
async function search(q, ids = false) {
  const found = []
  let total = 0
  let page = ''
  do {
    const res = await gmail(`/messages?q=${encodeURIComponent(q)}&maxResults=500${page ? `&pageToken=${page}` : ''}`)
    const answer = await res.json()
    const messages = answer.messages || []
    total += messages.length
    if (ids) found.push(...messages.map((m) => m.id))
    page = answer.nextPageToken || ''
  } while (page)
  return ids ? found : total
}

/** A spam probability from 0 to 1, asked of an OpenAI-compatible chat model as JSON. */
async function analyzeSpam(subject, body, from) {
  const res = await call(`${env('OPENAI_BASE_URL')}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('OPENAI_API_KEY')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: process.env.OPENAI_MODEL || 'gpt-4o-mini',
      response_format: { type: 'json_object' },
      messages: [
        { role: 'system', content: 'You are a spam filter. Answer JSON: {"spam_probability": number from 0 to 1}' },
        { role: 'user', content: `From: ${from}\nSubject: ${subject}\n\n${String(body).slice(0, 8000)}` },
      ],
    }),
  }, 'chat completion')
  const answer = await res.json()
  return Number(JSON.parse(answer.choices[0].message.content).spam_probability)
}

async function moveToSpam(messageId) {
  await gmail(`/messages/${encodeURIComponent(messageId)}/modify`, {
    method: 'POST', body: JSON.stringify({ addLabelIds: ['SPAM'], removeLabelIds: ['INBOX'] }),
  })
}

async function generateEmailStats(day) {
  const since = day.replace(/-/g, '/')
  return { date: day, received: await search(`after:${since}`), spam: await search(`in:spam after:${since}`) }
}

async function permanentlyDeleteSpam(days) {
  const ids = await search(`in:spam older_than:${days}d`, true)
  for (let i = 0; i < ids.length; i += 1000) {
    await gmail('/messages/batchDelete', { method: 'POST', body: JSON.stringify({ ids: ids.slice(i, i + 1000) }) })
  }
  return ids.length
}

/** ntfy's JSON publish API: POST <server>/ with {topic, title, message, priority (1-5)}. */
async function sendPushNotification({ title, body, priority }) {
  await call(`${env('NTFY_URL')}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ topic: env('NTFY_TOPIC'), title, message: body, priority: priority === 'high' ? 4 : 3 }),
  }, 'ntfy publish')
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

Object.assign(globalThis, {
  analyzeSpam, moveToSpam, generateEmailStats, permanentlyDeleteSpam, sendPushNotification, sendSlackNotification,
})
