'use strict'
// The tutorial's one-argument dialect: a step file with no `config` whose default export is
// `async function handler(event)` or `{ schedule, handler }` (a cron step). The file says nothing about
// its trigger: the host completes the config from the project's steppe.toml ([steps."<file>"]).
// Handlers get one `event` object instead of (input, ctx): see docs/steps.md, "The one-argument dialect".

const path = require('path')

// The state group of the dialect's groupless `event.state.*` calls (docs/steps.md).
const DEFAULT_STATE_GROUP = 'default'

const preloaded = new Set()

/**
 * Requires the project's preload modules (steppe.toml `[runners.node] preload`, sent by the host as
 * STEPPE_PRELOAD, a JSON list of absolute paths) once each, before the first step loads: they define
 * the globals that tutorial-style steps call without importing. One that throws fails the load that
 * needed it, naming the file, and is tried again by the next load.
 */
function preload() {
  const raw = process.env.STEPPE_PRELOAD
  if (!raw) return
  for (const file of JSON.parse(raw)) {
    if (preloaded.has(file)) continue
    try {
      require(path.resolve(file))
    } catch (error) {
      error.message = `preload ${file} failed: ${error.message}`
      throw error
    }
    preloaded.add(file)
  }
}

/** The `{schedule, handler}` object or one-argument function the file exports by default, or null. */
function dialectExport(mod) {
  if (mod === null || mod === undefined || mod.config !== undefined) return null
  const def = mod.default
  if (typeof def === 'function') return { handler: def, schedule: null }
  if (def !== null && typeof def === 'object' && def.config === undefined && typeof def.handler === 'function') {
    return { handler: def.handler, schedule: typeof def.schedule === 'string' ? def.schedule : null }
  }
  return null
}

/** The loader's entry for a dialect file; its config JSON is completed by the host. */
function describe(found) {
  const json = { dialect: 'tutorial' }
  if (found.schedule !== null) Object.assign(json, { type: 'cron', cron: found.schedule })
  return {
    kind: 'step', config: json, json, handler: found.handler, middleware: [], canAccess: null,
    authenticate: null, dialect: true,
  }
}

function ttlOf(options) {
  if (options === undefined || options === null) return undefined
  if (typeof options === 'number') return options
  return options.ttl === undefined || options.ttl === null ? undefined : options.ttl
}

function groupless(state) {
  const g = DEFAULT_STATE_GROUP
  return {
    get: (key) => state.get(g, key),
    set: (key, value, options) => state.set(g, key, value, ttlOf(options)),
    update: (key, ops, options) => state.update(g, key, ops, ttlOf(options)),
    delete: (key) => state.delete(g, key),
    getGroup: () => state.getGroup(g),
    clear: () => state.clear(g),
  }
}

let streamSeq = 0

/** `event.stream(name, data)`: a new item in stream `name`, group = the trace id, time-ordered ids. */
function streamAppend(ctx, name, data) {
  const id = `${Date.now().toString().padStart(15, '0')}-${String(++streamSeq).padStart(6, '0')}`
  return ctx.streams[name].set(ctx.traceId, id, data)
}

/** The one argument a dialect handler gets. */
function makeEvent(trigger, input, ctx) {
  const api = trigger === 'api'
  const req = api && input !== null && typeof input === 'object' ? input : null
  const data = req ? req.body : input
  return {
    topic: ctx.topic === undefined ? null : ctx.topic,
    data,
    body: data,
    headers: req ? req.headers : {},
    query: req ? req.queryParams : {},
    params: req ? req.pathParams : {},
    rawBody: req ? req.rawBody : undefined,
    traceId: ctx.traceId,
    attempt: ctx.attempt === undefined ? null : ctx.attempt,
    eventId: ctx.eventId === undefined ? null : ctx.eventId,
    emit: (topic, payload) => (topic !== null && typeof topic === 'object'
      ? ctx.emit(topic)
      : ctx.emit({ topic, data: payload })),
    state: groupless(ctx.state),
    stream: (name, payload) => streamAppend(ctx, name, payload),
    logger: ctx.logger,
    ctx,
  }
}

/** Runs a dialect handler for `trigger`; an API's plain return value is shaped by invoke's apiResponse. */
function run(entry, trigger, input, ctx) {
  return entry.handler(makeEvent(trigger, input, ctx))
}

module.exports = { DEFAULT_STATE_GROUP, preload, dialectExport, describe, run, ttlOf }
