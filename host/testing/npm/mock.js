'use strict'
// A handler context for unit tests: records every emit, state, stream and log call, keeps state and
// streams in Maps, needs no host. Same shape as the runner's ctx (docs/steps.md).
// It refuses what a real run refuses, so a unit test cannot pass on a call that fails there: data JSON
// cannot carry rejects with a TypeError, values are kept as JSON gives them back (a Date is its ISO text),
// an emit's id/messageGroupId must be text (or a number), and, given the step's `config`, a topic not in
// its `emits` rejects with an UndeclaredTopic error (the runner's error shape: name, type, code).

function recorder(calls, prefix) {
  return (name, args, value) => {
    calls.push({ name: prefix + name, args })
    return Promise.resolve(value)
  }
}

/** `value` as the host would keep it; throws TypeError (as the runner does) when JSON cannot carry it. */
function asJson(value, what) {
  if (value === undefined) return undefined
  try {
    const json = JSON.stringify(value)
    return json === undefined ? undefined : JSON.parse(json)
  } catch (error) {
    throw new TypeError(`${what} is not JSON-serialisable: ${error.message}`)
  }
}

/** A refusal as the runner raises it in a handler. */
function refusal(type, message) {
  const err = new Error(message)
  err.name = err.type = type
  err.code = -32010
  err.data = { type }
  return err
}

/** A name as the host's messages quote it (Python's repr of text). */
function pyRepr(text) {
  if (typeof text !== 'string') return text == null ? 'None' : String(text)
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'"
  return quote + text.replace(/\\/g, '\\\\').replace(new RegExp(quote, 'g'), `\\${quote}`) + quote
}

/** A value's JSON kind as the host's messages name it ("an array"). */
function kindOf(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'boolean') return 'a boolean'
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number'
  return typeof value === 'string' ? 'a string' : 'an object'
}

/** The host's refusal of an emit (host/calls.py in Steppe), or null. */
function refused(event, config) {
  const declared = ((config && config.emits) || []).map((e) => (typeof e === 'string' ? e : e && e.topic))
  if (!event.topic) return refusal('InvalidParams', 'emit needs {topic: string, data}')
  if (declared.length && !declared.includes(event.topic)) {
    return refusal('UndeclaredTopic', `step ${pyRepr(config.name)} emitted topic ${pyRepr(event.topic)}, ` +
      `which is not in its config.emits [${declared.map(pyRepr).join(', ')}]; the event was not sent`)
  }
  for (const name of ['id', 'messageGroupId']) {
    const value = event[name]
    if (value != null && typeof value !== 'string' && typeof value !== 'number') {
      return refusal('InvalidParams', `emit: ${name} must be a string (or a number), got ${kindOf(value)}`)
    }
  }
  return null
}

/** Runs `fn` and gives its value as a promise: a TypeError it throws becomes a rejection, as in the runner. */
function settle(fn) {
  try {
    return fn()
  } catch (error) {
    return Promise.reject(error)
  }
}

function createMockState(calls, initial) {
  const data = new Map(Object.entries(initial || {}).map(([g, values]) => [g, new Map(Object.entries(values))]))
  const group = (g) => data.get(g) || new Map()
  const call = recorder(calls, 'state.')
  return {
    data,
    get: (g, key) => call('get', [g, key], group(g).has(key) ? group(g).get(key) : null),
    set: (g, key, value, ttl) => settle(() => {
      value = asJson(value, 'state.set value')
      if (!data.has(g)) data.set(g, new Map())
      data.get(g).set(key, value)
      return call('set', ttl === undefined ? [g, key, value] : [g, key, value, ttl], value)
    }),
    // not mocked (its ops are the host's, steppe/state/ops.py): a clear refusal rather than "not a function"
    update: (g, key, ops, ttl) => settle(() => {
      call('update', ttl === undefined ? [g, key, ops] : [g, key, ops, ttl], undefined)
      throw new Error('state.update is not mocked: test it against a host (createTester), or mock it: ' +
        'ctx.state.update = async (group, key, ops) => ...')
    }),
    delete: (g, key) => {
      const old = group(g).has(key) ? group(g).get(key) : null
      group(g).delete(key)
      return call('delete', [g, key], old)
    },
    getGroup: (g) => call('getGroup', [g], [...group(g).values()]),
    clear: (g) => {
      data.delete(g)
      return call('clear', [g], undefined)
    },
    /** A plain object of the state: {group: {key: value}}, for assertions. */
    toJSON: () => Object.fromEntries([...data].map(([g, m]) => [g, Object.fromEntries(m)])),
  }
}

function createMockStream(calls, name) {
  const items = new Map()
  const group = (g) => items.get(g) || new Map()
  const call = recorder(calls, `streams.${name}.`)
  const sent = []
  return {
    items,
    sent,
    get: (g, id) => call('get', [g, id], group(g).has(id) ? group(g).get(id) : null),
    set: (g, id, data) => settle(() => {
      data = asJson(data, 'stream item')
      const item = data && typeof data === 'object' && !Array.isArray(data) ? { ...data, id } : data
      if (!items.has(g)) items.set(g, new Map())
      items.get(g).set(id, item)
      return call('set', [g, id, data], item)
    }),
    delete: (g, id) => {
      const old = group(g).has(id) ? group(g).get(id) : null
      group(g).delete(id)
      return call('delete', [g, id], old)
    },
    getGroup: (g) => call('getGroup', [g], [...group(g).values()]),
    send: (channel, event) => settle(() => {
      event = asJson(event, 'stream event')
      sent.push({ channel, event })
      return call('send', [channel, event], undefined)
    }),
  }
}

function createMockLogger() {
  const records = []
  const log = (level) => (msg, fields) => { records.push({ level, msg, fields: fields || {} }) }
  return { records, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

/**
 * createMockContext({topic, traceId, flows, state, config}) → ctx for `handler(input, ctx)`; `config` is the
 * step's config, whose `emits` a real run holds emits to.
 * ctx.emitted lists emitted events, ctx.calls every call in order, ctx.logger.records the logs.
 */
function createMockContext(options = {}) {
  const calls = []
  const emitted = []
  const streams = new Map()
  const ctx = {
    calls,
    emitted,
    topic: options.topic,
    traceId: options.traceId || `trace-${Math.random().toString(36).slice(2, 12)}`,
    flows: options.flows || [],
    state: createMockState(calls, options.state),
    logger: createMockLogger(),
    streams: new Proxy(Object.create(null), {
      get(_target, name) {
        if (typeof name !== 'string' || name === 'then') return undefined
        if (!streams.has(name)) streams.set(name, createMockStream(calls, name))
        return streams.get(name)
      },
    }),
    emit: (event) => settle(() => {
      if (!event || typeof event !== 'object' || typeof event.topic !== 'string') {
        throw new TypeError(`emit expects {topic, data}, got ${JSON.stringify(event)}`)
      }
      event = 'data' in event ? { ...event, data: asJson(event.data, 'emit data') } : { ...event }
      calls.push({ name: 'emit', args: [event] })
      const error = refused(event, options.config)
      if (error) return Promise.reject(error)
      emitted.push(event)
      return Promise.resolve()
    }),
    /** The topics emitted so far, in order. */
    topics: () => emitted.map((e) => e.topic),
  }
  return ctx
}

/**
 * The one-argument (tutorial) shape: handler(event) with event.data / event.body next to emit, state,
 * logger, traceId. Its emit also takes (topic, data); state.get/set with one key use the group "default".
 */
function createMockEvent(options = {}) {
  const ctx = createMockContext(options)
  const emit = ctx.emit
  const state = ctx.state
  return Object.assign(ctx, {
    data: options.data,
    body: options.body,
    emit: (topicOrEvent, data) => emit(typeof topicOrEvent === 'string' ? { topic: topicOrEvent, data } : topicOrEvent),
    state: {
      ...state,
      get: (a, b) => (b === undefined ? state.get('default', a) : state.get(a, b)),
      set: (a, b, c) => (c === undefined ? state.set('default', a, b) : state.set(a, b, c)),
    },
  })
}

module.exports = { createMockContext, createMockEvent }
