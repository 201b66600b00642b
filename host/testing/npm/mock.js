'use strict'
// A handler context for unit tests: records every emit, state, stream and log call, keeps state and
// streams in Maps, needs no host. Same shape as the runner's ctx (docs/steps.md).

function recorder(calls, prefix) {
  return (name, args, value) => {
    calls.push({ name: prefix + name, args })
    return Promise.resolve(value)
  }
}

function createMockState(calls, initial) {
  const data = new Map(Object.entries(initial || {}).map(([g, values]) => [g, new Map(Object.entries(values))]))
  const group = (g) => data.get(g) || new Map()
  const call = recorder(calls, 'state.')
  return {
    data,
    get: (g, key) => call('get', [g, key], group(g).has(key) ? group(g).get(key) : null),
    set: (g, key, value, ttl) => {
      if (!data.has(g)) data.set(g, new Map())
      data.get(g).set(key, value)
      return call('set', ttl === undefined ? [g, key, value] : [g, key, value, ttl], value)
    },
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
    set: (g, id, data) => {
      const item = data && typeof data === 'object' && !Array.isArray(data) ? { ...data, id } : data
      if (!items.has(g)) items.set(g, new Map())
      items.get(g).set(id, item)
      return call('set', [g, id, data], item)
    },
    delete: (g, id) => {
      const old = group(g).has(id) ? group(g).get(id) : null
      group(g).delete(id)
      return call('delete', [g, id], old)
    },
    getGroup: (g) => call('getGroup', [g], [...group(g).values()]),
    send: (channel, event) => {
      sent.push({ channel, event })
      return call('send', [channel, event], undefined)
    },
  }
}

function createMockLogger() {
  const records = []
  const log = (level) => (msg, fields) => { records.push({ level, msg, fields: fields || {} }) }
  return { records, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
}

/**
 * createMockContext({topic, traceId, flows, state}) → ctx for `handler(input, ctx)`.
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
    emit: (event) => {
      if (!event || typeof event !== 'object' || typeof event.topic !== 'string') {
        return Promise.reject(new TypeError(`emit expects {topic, data}, got ${JSON.stringify(event)}`))
      }
      emitted.push(event)
      calls.push({ name: 'emit', args: [event] })
      return Promise.resolve()
    },
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
