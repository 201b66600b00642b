'use strict'
// `invoke` and `cancel`: runs handlers as concurrent promises, each inside its own AsyncLocalStorage
// context so that its output and host calls carry its invocation id.

const { types } = require('util')
const wire = require('./wire')
const capture = require('./capture')
const { MESSAGE_DEPTH, TOO_DEEP, exceeds } = require('./depth')
const { loaded } = require('./loader')
const { makeContext } = require('./context')
const dialect = require('./dialect')
const { codes, toRpcError, rpcError, messageOf, readOr, CancelledError } = require('./errors')

/**
 * invoke request id -> invocation, while its handler runs and has not been cancelled. A plain object, not a
 * Map, for the reason wire.js gives for its pending calls: a Map in old space leaves each hash table it
 * regrows or shrinks to there, and those keep finished invocations alive until the next full GC.
 */
const running = Object.create(null)

// the loaded file's function that each trigger calls
const TARGET = { api: 'handler', event: 'handler', cron: 'handler', canAccess: 'canAccess', authenticate: 'authenticate' }

/**
 * What a step's function returned, refused when it is a generator object: a generator function (`function*`,
 * `async function*`) runs none of its body when called, so taken as a result it would count as a success
 * with nothing done. An async function returns a promise, so the check costs one instanceof on the hot path.
 */
function ran(value, what) {
  if (value instanceof Promise || value === null || typeof value !== 'object' || !types.isGeneratorObject(value)) {
    return value
  }
  throw new TypeError(`the ${what} is a generator function: calling it returned a generator and ran none of ` +
    'its body; write it as an `async function` (or a plain function) that returns its result')
}

/** Middleware first (first is outermost, each may short-circuit), then the handler. */
function runApi(entry, req, ctx) {
  const { middleware, handler } = entry
  if (middleware.length === 0) return ran(handler(req, ctx), 'handler')
  const layer = (i) => (i === middleware.length
    ? ran(handler(req, ctx), 'handler')
    : ran(middleware[i](req, ctx, async () => layer(i + 1)), 'middleware'))
  return layer(0)
}

function isBinary(body) {
  return body instanceof Uint8Array || body instanceof ArrayBuffer
}

const RESPONSE_KEYS = new Set(['status', 'body', 'headers', 'bodyBase64'])

/**
 * Whether a handler's return value is an HTTP response: an object with only status/body/headers/bodyBase64
 * keys, with an integer `status` or one of the other keys. Anything else is a plain value, answered 200
 * as the body: `{ status: 'processed' }` is a body (docs/steps.md, "HTTP: requests and answers"). The host
 * refuses a response whose status is not an integer 100-599 (500, with the reason in the step's log).
 */
function isResponse(res) {
  if (res === null || typeof res !== 'object' || Array.isArray(res) || isBinary(res)) return false
  const keys = Object.keys(res)
  if (!keys.every((k) => RESPONSE_KEYS.has(k))) return false
  if (Number.isInteger(res.status)) return true
  return keys.some((k) => k !== 'status')
}

/** The handler's `{status, body, headers}`, with a binary body sent as base64; a plain value is the body. */
function apiResponse(res) {
  if (res === undefined || res === null) return { status: 204, headers: {} }
  if (!isResponse(res)) res = { status: 200, body: res }
  const out = { status: res.status === undefined ? 200 : res.status }
  const body = res.body
  if (isBinary(body)) {
    const bytes = body instanceof ArrayBuffer ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    out.bodyBase64 = bytes.toString('base64')
  } else if (body !== undefined) {
    out.body = body
  } else if (res.bodyBase64 !== undefined) {
    out.bodyBase64 = res.bodyBase64 // bytes the handler encoded itself: the host decodes them
  }
  out.headers = res.headers === undefined || res.headers === null ? {} : res.headers
  return out
}

async function dispatch(entry, params, inv) {
  const input = params.input
  if (entry.dialect) {
    const result = await ran(dialect.run(entry, params.trigger, input, makeContext(inv)), 'handler')
    return params.trigger === 'api' ? apiResponse(result) : null
  }
  switch (params.trigger) {
    case 'api':
      return apiResponse(await runApi(entry, input, makeContext(inv)))
    case 'event':
      await ran(entry.handler(input, makeContext(inv)), 'handler')
      return null
    case 'cron':
      await ran(entry.handler(makeContext(inv)), 'handler')
      return null
    case 'canAccess': {
      const { subscription, authContext } = input || {}
      const allowed = entry.canAccess(subscription, authContext === undefined ? null : authContext)
      return Boolean(await ran(allowed, 'canAccess'))
    }
    case 'authenticate': {
      const auth = await ran(entry.authenticate(input), 'authenticate')
      return auth === undefined ? null : auth
    }
  }
  return null
}

function finish(inv, result) {
  if (running[inv.id] !== inv) return // cancelled: its answer was already sent
  delete running[inv.id]
  capture.flush(inv.id)
  let json
  try {
    json = JSON.stringify(result)
    if (json !== undefined && json.length > 2 * MESSAGE_DEPTH && exceeds(result, MESSAGE_DEPTH - 2)) {
      throw new RangeError(TOO_DEEP)
    }
  } catch (error) {
    // RangeError: also when the stack ran out. What a toJSON or getter threw can be anything, even a value
    // whose reading throws: instanceof on a Proxy can, messageOf never does.
    const why = readOr(() => (error instanceof RangeError ? TOO_DEEP : messageOf(error)), (reason) => reason)
    const err = new TypeError(`the ${inv.trigger} result is not JSON-serialisable: ${why}`)
    wire.replyError(inv.id, toRpcError(codes.HANDLER_ERROR, err))
    return
  }
  // a result too long for one line fails this invocation alone (500), not the runner with all in flight
  wire.replyJson(inv.id, json === undefined ? 'null' : json, codes.HANDLER_ERROR, "the handler's result")
}

function fail(inv, error) {
  if (running[inv.id] !== inv) return
  delete running[inv.id]
  capture.flush(inv.id)
  wire.replyError(inv.id, toRpcError(codes.HANDLER_ERROR, error))
}

function invalid(id, message) {
  wire.replyError(id, rpcError(codes.INVALID_PARAMS, 'InvalidParams', message))
}

/** Starts invocation `id`; its answer is sent when the handler settles. */
function start(id, params) {
  if (params === null || typeof params !== 'object' || typeof params.path !== 'string') {
    return invalid(id, 'invoke needs params {path, step, trigger, input, traceId, flows}')
  }
  const trigger = params.trigger
  const target = TARGET[trigger]
  if (target === undefined) return invalid(id, `unknown trigger ${JSON.stringify(trigger)}`)
  const entry = loaded.get(params.path)
  if (entry === undefined) {
    return wire.replyError(id, rpcError(codes.NOT_LOADED, 'NotLoaded', `${params.path} is not loaded`))
  }
  if (typeof entry[target] !== 'function') {
    return invalid(id, `${params.path} (${entry.kind}) defines no ${target} for trigger ${trigger}`)
  }
  const inv = {
    id,
    trigger,
    traceId: params.traceId === undefined ? null : params.traceId,
    flows: Array.isArray(params.flows) ? params.flows : [],
    // event deliveries only (optional in the protocol): ctx.topic, ctx.attempt, ctx.eventId
    topic: typeof params.topic === 'string' ? params.topic : null,
    attempt: Number.isInteger(params.attempt) ? params.attempt : null,
    eventId: typeof params.eventId === 'string' ? params.eventId : null,
    cancelled: false,
    controller: null,
  }
  running[id] = inv
  capture.invocations.run(inv, dispatch, entry, params, inv).then(
    (result) => finish(inv, result),
    (error) => fail(inv, error))
}

/** Answers invocation `id` with CANCELLED now and drops whatever its handler does later. */
function cancel(id) {
  if (typeof id !== 'number' && typeof id !== 'string') return
  const inv = running[id]
  if (inv === undefined) return
  delete running[id]
  id = inv.id // the invoke's id as the host sent it, a number or a string
  inv.cancelled = true
  if (inv.controller !== null) inv.controller.abort(new CancelledError('the invocation was cancelled'))
  capture.flush(id)
  wire.replyError(id, rpcError(codes.CANCELLED, 'Cancelled', 'the invocation was cancelled'))
}

function cancelAll() {
  for (const inv of Object.values(running)) cancel(inv.id)
}

module.exports = { start, cancel, cancelAll, running }
