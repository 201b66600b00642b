// Steppe's browser stream client: an ES module with no dependencies, served by every Steppe host at
// /__steppe/client.js.
//
//   import { Stream } from '/__steppe/client.js'
//   const stream = new Stream()                       // ws(s)://<this page's host>/
//   const job = stream.subscribeItem('progress', 'jobs', jobId)
//   job.addChangeListener((item) => render(item))     // the item, or null after a delete
//   job.onEvent('log', (data) => console.log(data))   // streams.progress.send({groupId, id}, {type: 'log', data})
//   job.onError((error) => console.warn(error.code))  // STREAM_ACCESS_DENIED, STREAM_NOT_FOUND, ...
//
// It speaks Motia's stream wire (docs/streams.md). When the socket drops it reconnects with a doubling
// backoff (0.25 s up to 5 s) and joins every live subscription again; their next sync replaces what they
// held. A change older (by the server's timestamp) than the last change applied to the same item is
// dropped as stale. See docs/clients.md.

const MIN_BACKOFF_MS = 250
const MAX_BACKOFF_MS = 5000

function defaultUrl() {
  const location = globalThis.location
  if (!location || !location.host) throw new Error('Stream: pass a url (no page location to derive it from)')
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`
}

function toWebSocketUrl(url) {
  if (url.startsWith('http://')) return 'ws://' + url.slice(7)
  if (url.startsWith('https://')) return 'wss://' + url.slice(8)
  if (url.startsWith('/')) return defaultUrl().replace(/\/$/, '') + url
  return url
}

function withQuery(url, name, value) {
  return url + (url.includes('?') ? '&' : '?') + `${name}=${encodeURIComponent(value)}`
}

function newId() {
  const crypto = globalThis.crypto
  if (crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`
}

function errorOf(event) {
  // {"type": "event", "event": {"type": "error", "data": {"code", "message"}}}
  const inner = event && event.type === 'event' ? event.event : null
  if (inner && inner.type === 'error' && inner.data && typeof inner.data.code === 'string') {
    const error = new Error(inner.data.message || inner.data.code)
    error.code = inner.data.code
    return error
  }
  return null
}

function safely(fn, ...args) {
  try {
    fn(...args)
  } catch (error) {
    setTimeout(() => { throw error })  // report it without breaking the other listeners
  }
}

class Subscription {
  constructor(stream, sub) {
    this.stream = stream
    this.sub = sub  // {streamName, groupId, id?, subscriptionId}: what join and leave send
    this.closed = false
    this.errors = []
    this._changeListeners = new Set()
    this._eventListeners = new Map()
    this._errorListeners = new Set()
    this._lastSync = 0
    this._lastChange = new Map()  // item id -> timestamp of the last change applied
  }

  /** Call `listener(state)` after every sync, create, update and delete. */
  addChangeListener(listener) {
    this._changeListeners.add(listener)
    return () => this.removeChangeListener(listener)
  }

  removeChangeListener(listener) {
    this._changeListeners.delete(listener)
  }

  /** Call `listener(data)` for each custom event of this type (sent with `streams.<name>.send`). */
  onEvent(type, listener) {
    if (!this._eventListeners.has(type)) this._eventListeners.set(type, new Set())
    this._eventListeners.get(type).add(listener)
    return () => this.offEvent(type, listener)
  }

  offEvent(type, listener) {
    this._eventListeners.get(type)?.delete(listener)
  }

  /** Call `listener(error)` when the server refuses this subscription; `error.code` is e.g.
   * STREAM_ACCESS_DENIED or STREAM_NOT_FOUND. */
  onError(listener) {
    this._errorListeners.add(listener)
    return () => this._errorListeners.delete(listener)
  }

  /** The current state: the item (or null) for an item subscription, the array for a group. */
  getState() {
    return this.state
  }

  /** Leave: no more changes or events reach this subscription. */
  close() {
    if (this.closed) return
    this.closed = true
    this.stream._unsubscribe(this)
  }

  // On a new connection: its sync replaces the state whatever its timestamp. A host restarted (or another
  // host behind a balancer) may stamp lower than the last connection did (stamps run ahead of the clock
  // under bursts of more than one change a millisecond): ordering holds within one connection only.
  _rejoined() {
    this._lastSync = 0
    this._lastChange.clear()
  }

  _receive(message) {
    const event = message.event
    const timestamp = typeof message.timestamp === 'number' ? message.timestamp : 0
    if (event.type === 'event') {
      const inner = event.event || {}
      for (const listener of [...(this._eventListeners.get(inner.type) || [])]) safely(listener, inner.data)
      return
    }
    if (event.type === 'sync') {
      if (timestamp < this._lastSync) return  // older than the sync already applied on this connection
      // not a staleness barrier for the changes after it: a change published while the snapshot was
      // read may carry an earlier timestamp and still be missing from the snapshot
      this._lastSync = timestamp
      this._lastChange.clear()
      this._applySync(event.data)
      this._changed()
      return
    }
    if (event.type !== 'create' && event.type !== 'update' && event.type !== 'delete') return
    const item = event.data
    if (!item || typeof item !== 'object') return
    const key = String(item.id ?? message.id)
    if (timestamp < (this._lastChange.get(key) || 0)) return  // stale
    this._lastChange.set(key, timestamp)
    this._applyChange(event.type, key, item)
    this._changed()
  }

  _changed() {
    const state = this.state
    for (const listener of [...this._changeListeners]) safely(listener, state)
  }

  _error(error) {
    this.errors.push(error)
    for (const listener of [...this._errorListeners]) safely(listener, error)
  }
}

export class StreamItemSubscription extends Subscription {
  constructor(stream, sub) {
    super(stream, sub)
    this.state = null
  }

  _applySync(data) {
    this.state = data && typeof data === 'object' && !Array.isArray(data) ? data : null
  }

  _applyChange(type, key, item) {
    this.state = type === 'delete' ? null : item
  }
}

export class StreamGroupSubscription extends Subscription {
  constructor(stream, sub) {
    super(stream, sub)
    this._items = new Map()  // id -> item, in the order ids first appeared
    this.state = []
  }

  _applySync(data) {
    this._items = new Map()
    for (const item of Array.isArray(data) ? data : []) {
      if (item && typeof item === 'object') this._items.set(String(item.id), item)
    }
    this.state = [...this._items.values()]
  }

  _applyChange(type, key, item) {
    if (type === 'delete') this._items.delete(key)
    else this._items.set(key, item)  // an existing id keeps its place
    this.state = [...this._items.values()]
  }
}

export class Stream {
  /**
   * @param {string} [url] ws://, wss://, http(s):// or a path; default: this page's host
   * @param {{authToken?: string, tokenInQuery?: boolean, protocols?: string[], WebSocket?: any}} [options]
   *   authToken goes out as the protocols ['Authorization', token] (or as ?authToken= with tokenInQuery,
   *   or when it is not a valid protocol name); protocols replaces the offered protocols altogether.
   */
  constructor(url, options = {}) {
    this.url = toWebSocketUrl(url || defaultUrl())
    this.options = options
    this.connected = false
    this.connections = 0
    this._WebSocket = options.WebSocket || globalThis.WebSocket
    if (!this._WebSocket) throw new Error('Stream: no WebSocket implementation (pass options.WebSocket)')
    this._rooms = new Map()  // room key -> Set of subscriptions
    this._connectionListeners = new Set()
    this._backoff = MIN_BACKOFF_MS
    this._closing = false
    this._timer = null
    this._connect()
  }

  /** Subscribe to one item: its state is the item, or null (missing, or deleted). */
  subscribeItem(streamName, groupId, id) {
    return this._subscribe(new StreamItemSubscription(this, { streamName, groupId, id, subscriptionId: newId() }))
  }

  /** Subscribe to a group: its state is the array of its items, one per id, in order of arrival. */
  subscribeGroup(streamName, groupId) {
    return this._subscribe(new StreamGroupSubscription(this, { streamName, groupId, subscriptionId: newId() }))
  }

  /** Call `listener(connected)` whenever the socket opens or closes. */
  onConnectionChange(listener) {
    this._connectionListeners.add(listener)
    return () => this._connectionListeners.delete(listener)
  }

  /** Close the socket and stop reconnecting. */
  close() {
    this._closing = true
    clearTimeout(this._timer)
    this._rooms.clear()
    if (this._ws) this._ws.close()
  }

  _connect() {
    const { authToken, tokenInQuery, protocols } = this.options
    let url = this.url
    let offered = protocols
    if (authToken && !protocols) {
      if (tokenInQuery) url = withQuery(url, 'authToken', authToken)
      else offered = ['Authorization', authToken]
    }
    let ws
    try {
      ws = offered ? new this._WebSocket(url, offered) : new this._WebSocket(url)
    } catch (error) {
      if (authToken && offered && error && error.name === 'SyntaxError') {
        // a token that is not a valid protocol name: send it in the query instead
        ws = new this._WebSocket(withQuery(url, 'authToken', authToken))
      } else {
        this._retry()
        return
      }
    }
    this._ws = ws
    ws.onopen = () => {
      if (ws !== this._ws) return
      this.connected = true
      this.connections += 1
      this._backoff = MIN_BACKOFF_MS
      for (const subs of this._rooms.values()) for (const sub of subs) {
        sub._rejoined()
        this._send('join', sub)
      }
      for (const listener of [...this._connectionListeners]) safely(listener, true)
    }
    ws.onmessage = (event) => {
      if (ws === this._ws) this._dispatch(event.data)
    }
    // browsers follow an error with a close; some WebSocket implementations (Node 20's) do not when
    // the connection fails, so either one counts as the end of this socket
    ws.onerror = () => this._lost(ws)
    ws.onclose = () => this._lost(ws)
  }

  _lost(ws) {
    if (ws !== this._ws) return
    this._ws = null
    try {
      ws.close()
    } catch {}
    const was = this.connected
    this.connected = false
    if (was) for (const listener of [...this._connectionListeners]) safely(listener, false)
    if (!this._closing) this._retry()
  }

  _retry() {
    const delay = this._backoff
    this._backoff = Math.min(this._backoff * 2, MAX_BACKOFF_MS)
    this._timer = setTimeout(() => this._connect(), delay)
  }

  _send(type, sub) {
    if (this._ws && this.connected) this._ws.send(JSON.stringify({ type, data: sub.sub }))
  }

  _key(streamName, groupId, id) {
    return JSON.stringify(id === undefined || id === null ? [streamName, groupId] : [streamName, groupId, id])
  }

  _subscribe(sub) {
    const key = this._key(sub.sub.streamName, sub.sub.groupId, sub.sub.id)
    if (!this._rooms.has(key)) this._rooms.set(key, new Set())
    this._rooms.get(key).add(sub)
    this._send('join', sub)
    return sub
  }

  _unsubscribe(sub) {
    const key = this._key(sub.sub.streamName, sub.sub.groupId, sub.sub.id)
    const subs = this._rooms.get(key)
    if (subs) {
      subs.delete(sub)
      if (!subs.size) this._rooms.delete(key)
    }
    this._send('leave', sub)
  }

  _dispatch(text) {
    let message
    try {
      message = JSON.parse(typeof text === 'string' ? text : String(text))
    } catch {
      return
    }
    if (!message || typeof message !== 'object' || !message.event) return
    const { streamName, groupId, id } = message
    const room = this._rooms.get(this._key(streamName, groupId, id))
    const error = errorOf(message.event)
    if (error) {  // errors go to the subscriptions of the room that caused them
      for (const sub of [...(room || [])]) sub._error(error)
      return
    }
    const targets = [...(room || [])]
    if (id !== undefined && id !== null && message.event.type !== 'sync') {
      targets.push(...(this._rooms.get(this._key(streamName, groupId)) || []))  // an item's group
    }
    for (const sub of targets) if (!sub.closed) sub._receive(message)
  }
}

export default Stream
