// Every call the Workbench makes: same-origin, with the admin cookie, JSON bodies for every change.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? `${status}: ${body.error}${body.message ? ' — ' + body.message : ''}` : `HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } }
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const res = await fetch(path, init)
  const text = await res.text()
  let data = null
  try {
    data = text ? JSON.parse(text) : null
  } catch {
    data = text
  }
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

export const api = {
  get: (path) => call('GET', path),
  post: (path, body = {}) => call('POST', path, body),
  put: (path, body) => call('PUT', path, body),
  del: (path) => call('DELETE', path),
}

export function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}

// One EventSource for the page, shared by every view that listens.
const listeners = new Map()
let source = null

function connect() {
  source = new EventSource('/__steppe/api/live', { withCredentials: true })
  for (const kind of ['log', 'state', 'tick']) {
    source.addEventListener(kind, (e) => {
      const data = JSON.parse(e.data)
      for (const fn of listeners.get(kind) || []) fn(data)
    })
  }
}

export function onLive(kind, fn) {
  if (!source) connect()
  if (!listeners.has(kind)) listeners.set(kind, new Set())
  listeners.get(kind).add(fn)
  return () => listeners.get(kind).delete(fn)
}
