'use strict'
// The handler's ctx: {emit, traceId, flows, topic?, attempt?, eventId?, state, logger, streams, signal}. Every call is a request to
// the host carrying the invocation id; all of them return promises.

const util = require('util')
const wire = require('./wire')
const { CancelledError, trimStack, messageOf, readOr } = require('./errors')
const { redactingReplacer } = require('./redact')
const { MESSAGE_DEPTH, TOO_DEEP, exceeds } = require('./depth')

/**
 * Sends `method` for invocation `inv`. Data JSON cannot carry is refused here, naming `what` (the call
 * and its user-supplied field), before anything reaches the host.
 */
async function hostCall(inv, method, params, what) {
  if (inv.cancelled) throw new CancelledError(`invocation ${JSON.stringify(inv.id)} was cancelled`)
  let json
  try {
    json = JSON.stringify(params)
  } catch (error) {
    // RangeError: the stack ran out. What a toJSON or getter threw may be unreadable: messageOf never throws.
    const why = readOr(() => (error instanceof RangeError ? TOO_DEEP : messageOf(error)), (reason) => reason)
    throw new TypeError(`${what} is not JSON-serialisable: ${why}`)
  }
  // deeper than the host can decode: refused here rather than sent (the call would never be answered)
  if (json.length > 2 * MESSAGE_DEPTH && exceeds(params, MESSAGE_DEPTH - 1)) {
    throw new TypeError(`${what} is not JSON-serialisable: ${TOO_DEEP}`)
  }
  try {
    return await wire.call(method, json)
  } catch (error) {
    // the host's answer arrived on a fresh stack: point the trace at the awaiting handler instead
    Error.captureStackTrace(error)
    throw error
  }
}

/** A ttl in seconds, given as a number or as the dialect's `{ ttl }` options object. */
function seconds(ttl) {
  return ttl !== null && typeof ttl === 'object' ? ttl.ttl : ttl
}

function makeState(inv) {
  const id = inv.id
  return {
    get: (group, key) => hostCall(inv, 'state.get', { invocation: id, group, key }, 'state.get key'),
    set: (group, key, value, ttl) => {
      ttl = seconds(ttl)
      return hostCall(inv, 'state.set', ttl === undefined || ttl === null
        ? { invocation: id, group, key, value } : { invocation: id, group, key, value, ttl }, 'state.set value')
    },
    /** Atomic read-modify-write: `ops` as in state.update (protocol/SPEC.md); resolves to the new value. */
    update: (group, key, ops, ttl) => {
      ttl = seconds(ttl)
      return hostCall(inv, 'state.update', ttl === undefined || ttl === null
        ? { invocation: id, group, key, ops } : { invocation: id, group, key, ops, ttl }, 'state.update ops')
    },
    delete: (group, key) => hostCall(inv, 'state.delete', { invocation: id, group, key }, 'state.delete key'),
    getGroup: (group) => hostCall(inv, 'state.getGroup', { invocation: id, group }, 'state.getGroup group'),
    clear: (group) => hostCall(inv, 'state.clear', { invocation: id, group }, 'state.clear group'),
  }
}

function makeStream(inv, stream) {
  const id = inv.id
  return {
    get: (groupId, itemId) => hostCall(inv, 'streams.get',
      { invocation: id, stream, groupId, id: itemId }, 'streams.get id'),
    set: (groupId, itemId, data) => hostCall(inv, 'streams.set',
      { invocation: id, stream, groupId, id: itemId, data }, 'streams.set data'),
    delete: (groupId, itemId) => hostCall(inv, 'streams.delete',
      { invocation: id, stream, groupId, id: itemId }, 'streams.delete id'),
    getGroup: (groupId) => hostCall(inv, 'streams.getGroup',
      { invocation: id, stream, groupId }, 'streams.getGroup groupId'),
    send: (channel, event) => hostCall(inv, 'streams.send',
      { invocation: id, stream, channel, event }, 'streams.send event'),
  }
}

/** ctx.streams.<anyName>: the host refuses names it does not know (UnknownStream). */
function makeStreams(inv) {
  return new Proxy(Object.create(null), {
    get(_target, name) {
      // `then` must stay undefined, or awaiting ctx.streams would treat it as a thenable
      if (typeof name !== 'string' || name === 'then') return undefined
      return makeStream(inv, name)
    },
  })
}

// ---- logger ----

/** An Error logged as a field; one whose parts cannot be read (a throwing getter) still logs. */
function errorFields(error) {
  const read = (part) => readOr(part, (reason) => `<unreadable: ${reason}>`)
  return { name: read(() => error.name), message: read(() => error.message), stack: read(() => trimStack(error.stack)) }
}

function logReplacer(_key, value) {
  if (value instanceof Error) return errorFields(value)
  if (typeof value === 'bigint') return value.toString()
  return value
}

/** A replacer for the rare fields JSON refuses: cycles become "[Circular]". */
function safeReplacer() {
  const seen = new WeakSet()
  return (key, value) => {
    value = logReplacer(key, value)
    if (value !== null && typeof value === 'object') {
      if (seen.has(value)) return '[Circular]'
      seen.add(value)
    }
    return value
  }
}

function messageText(msg) {
  if (typeof msg === 'string') return msg
  if (msg instanceof Error) return messageOf(msg)
  return util.inspect(msg, { depth: 4, breakLength: Infinity })
}

function fieldsOf(msg, fields) {
  if (fields === undefined || fields === null) return msg instanceof Error ? { error: errorFields(msg) } : {}
  if (fields instanceof Error) return { error: fields }
  if (typeof fields === 'object' && !Array.isArray(fields)) return fields
  return { value: fields }
}

/** Logging never throws: fields JSON cannot carry are sent in a degraded but readable form. */
function sendLogged(invocation, level, msg, fields) {
  const params = { invocation, level, msg: messageText(msg), fields: fieldsOf(msg, fields), source: 'logger' }
  let json
  try {
    json = JSON.stringify(params, redactingReplacer(logReplacer, params))
  } catch {
    json = JSON.stringify(params, redactingReplacer(safeReplacer(), params))
  }
  wire.log(params, json)
}

function makeLogger(inv) {
  const id = inv.id
  return {
    info: (msg, fields) => sendLogged(id, 'info', msg, fields),
    warn: (msg, fields) => sendLogged(id, 'warn', msg, fields),
    error: (msg, fields) => sendLogged(id, 'error', msg, fields),
    debug: (msg, fields) => sendLogged(id, 'debug', msg, fields),
  }
}

function emitter(inv) {
  return (event) => {
    if (event === null || typeof event !== 'object' || typeof event.topic !== 'string') {
      return Promise.reject(new TypeError('emit expects {topic: string, data, messageGroupId?}'))
    }
    return hostCall(inv, 'emit', { invocation: inv.id, event }, 'emit data')
  }
}

/**
 * The ctx of invocation `inv` ({id, traceId, flows, cancelled, controller}). Its parts are built on
 * first use, as most handlers touch one or two of them (built eagerly, they took over a quarter of the
 * runner's time per invoke). Each part is made of closures, so `const { emit, logger } = ctx` and
 * `promise.catch(logger.error)` work as with a plain object; only `{...ctx}` differs: the parts are
 * prototype getters, so a spread copies just traceId and flows.
 */
class Context {
  #inv
  #emit = null
  #state = null
  #logger = null
  #streams = null

  constructor(inv) {
    this.#inv = inv
    this.traceId = inv.traceId
    this.flows = inv.flows
    if (inv.topic !== null) {
      // the delivery an event handler runs for; absent for api, cron and hooks
      this.topic = inv.topic
      this.attempt = inv.attempt
      this.eventId = inv.eventId
    }
  }

  get emit() {
    return this.#emit ?? (this.#emit = emitter(this.#inv))
  }

  get state() {
    return this.#state ?? (this.#state = makeState(this.#inv))
  }

  get logger() {
    return this.#logger ?? (this.#logger = makeLogger(this.#inv))
  }

  get streams() {
    return this.#streams ?? (this.#streams = makeStreams(this.#inv))
  }

  /** Aborted when the host cancels the invocation. */
  get signal() {
    const inv = this.#inv
    if (inv.controller === null) {
      inv.controller = new AbortController()
      if (inv.cancelled) inv.controller.abort(new CancelledError('the invocation was cancelled'))
    }
    return inv.controller.signal
  }
}

function makeContext(inv) {
  return new Context(inv)
}

module.exports = { makeContext, sendLogged }
