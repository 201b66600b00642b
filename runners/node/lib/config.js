'use strict'
// A step's exported config as the JSON the host receives: zod schemas become JSON Schema, functions are
// dropped (config.middleware is counted and kept for invoke time), and anything JSON cannot carry is a
// load error naming the field.

const Module = require('module')
const { ConfigError } = require('./errors')
const { isZod3, zod3ToJsonSchema } = require('./zod')

// Fields whose schema describes data coming in, so defaults make a property optional (zod's io: 'input').
const INPUT_SCHEMAS = new Set(['bodySchema', 'input'])

// Built-ins that JSON.stringify would silently turn into {} (or worse) rather than carry.
const NOT_DATA = [Map, Set, WeakMap, WeakSet, RegExp, Promise, ArrayBuffer, Error]

function isZod(value) {
  return value._zod !== undefined && typeof value._zod === 'object' && value._zod.def !== undefined
}

/** zod's toJSONSchema from the zod that the step file itself resolves (zod/mini schemas have no method). */
function projectToJsonSchema(file) {
  const req = Module.createRequire(file)
  for (const id of ['zod', 'zod/v4/core']) {
    try {
      const mod = req(id)
      const fn = mod.toJSONSchema || (mod.z && mod.z.toJSONSchema)
      if (typeof fn === 'function') return fn
    } catch {
      // try the next entry point
    }
  }
  return null
}

function zodToJsonSchema(schema, io, file, where) {
  const params = { io, unrepresentable: 'any' }
  try {
    if (typeof schema.toJSONSchema === 'function') return schema.toJSONSchema(params)
    const fn = projectToJsonSchema(file)
    if (fn === null) throw new Error('zod cannot be resolved from the step file')
    return fn(schema, params)
  } catch (error) {
    throw new ConfigError(`${where}: cannot convert the zod schema to JSON Schema: ${error.message}`)
  }
}

function describe(value) {
  if (typeof value === 'bigint') return 'a BigInt'
  if (typeof value === 'symbol') return 'a Symbol'
  if (typeof value === 'number') return String(value)
  return `a ${(value.constructor && value.constructor.name) || 'value'}`
}

/**
 * Converts `value` (found at `where`, e.g. "config.bodySchema") to plain JSON data.
 * `ancestors` holds the objects on the current path, to tell a cycle from a shared reference.
 */
function toJson(value, where, io, file, ancestors) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (Number.isFinite(value)) return value
      throw new ConfigError(`${where} is ${value}, which JSON cannot encode`)
    case 'undefined':
    case 'function':
      return undefined
    case 'bigint':
    case 'symbol':
      throw new ConfigError(`${where} is ${describe(value)}, which JSON cannot encode`)
  }
  if (value === null) return null
  if (isZod(value)) return zodToJsonSchema(value, io, file, where)
  if (isZod3(value)) {
    try {
      return zod3ToJsonSchema(value, io)
    } catch (error) {
      throw new ConfigError(`${where}: cannot convert the zod 3 schema to JSON Schema: ${error.message}`)
    }
  }
  if (ancestors.has(value)) throw new ConfigError(`${where} refers back to itself (a circular structure)`)
  if (typeof value.toJSON === 'function') return toJson(value.toJSON(), where, io, file, ancestors)
  if (NOT_DATA.some((cls) => value instanceof cls) || ArrayBuffer.isView(value)) {
    throw new ConfigError(`${where} is ${describe(value)}, which JSON cannot encode`)
  }
  ancestors.add(value)
  let out
  if (Array.isArray(value)) {
    out = value.map((item, i) => {
      const json = toJson(item, `${where}[${i}]`, io, file, ancestors)
      return json === undefined ? null : json
    })
  } else {
    out = {}
    for (const key of Object.keys(value)) {
      const json = toJson(value[key], `${where}.${key}`, io, file, ancestors)
      if (json !== undefined) out[key] = json
    }
  }
  ancestors.delete(value)
  return out
}

/**
 * Returns `{json, middleware}` for a step's config: the JSON to send, and the middleware functions.
 * `file` is the step file's path, from which zod is resolved when a schema has no method of its own.
 */
function convertConfig(config, file) {
  let middleware = []
  if (config.middleware !== undefined) {
    if (!Array.isArray(config.middleware)) throw new ConfigError('config.middleware must be an array of functions')
    config.middleware.forEach((fn, i) => {
      if (typeof fn !== 'function') throw new ConfigError(`config.middleware[${i}] is not a function`)
    })
    middleware = config.middleware.slice()
  }
  const json = {}
  const ancestors = new Set([config])
  for (const key of Object.keys(config)) {
    if (key === 'middleware') continue
    const io = INPUT_SCHEMAS.has(key) ? 'input' : 'output'
    const value = toJson(config[key], `config.${key}`, io, file, ancestors)
    if (value !== undefined) json[key] = value
  }
  return { json, middleware }
}

module.exports = { convertConfig }
