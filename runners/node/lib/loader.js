'use strict'
// `load`: executes a step, stream or auth file fresh and keeps what invoke needs from it.

const fs = require('fs')
const path = require('path')
const { pathToFileURL } = require('url')
const { convertConfig } = require('./config')
const { ConfigError } = require('./errors')
const dialect = require('./dialect')
const esm = require('./esm')
const { isMotiaConfig, describeMotiaConfig } = require('./motia_config')

/** path -> {kind, config, handler, middleware, canAccess, authenticate} for every loaded file. */
const loaded = new Map()

let importVersion = 0
const packageTypes = new Map()

/** The "type" of the package.json nearest to `file` ("module" or "commonjs"). */
function packageType(file) {
  let dir = path.dirname(file)
  const seen = []
  let type = 'commonjs'
  for (;;) {
    if (packageTypes.has(dir)) {
      type = packageTypes.get(dir)
      break
    }
    seen.push(dir)
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
      type = pkg.type === 'module' ? 'module' : 'commonjs'
      break
    } catch {
      // no (readable) package.json here: look further up
    }
    const parent = path.dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  for (const d of seen) packageTypes.set(d, type)
  return type
}

/**
 * V8 puts a syntax error's place only in the stack's first line ("/path/file.js:4"); the message
 * gets it too, so that a host showing just the message still says where.
 */
function withLocation(error) {
  if (!(error instanceof SyntaxError) || typeof error.stack !== 'string') return error
  const first = error.stack.slice(0, error.stack.indexOf('\n'))
  if (/^\S.*:\d+$/.test(first) && !error.message.includes(first)) error.message += ` (${first})`
  return error
}

/** Whether a failed require of `file` should be retried as a real ES module through import(). */
function wantsImport(file, error) {
  if (!/\.m?js$/.test(file)) return false
  const esmOnly = error && (error.code === 'ERR_REQUIRE_ESM' || error.code === 'ERR_REQUIRE_ASYNC_MODULE' ||
    error.name === 'SyntaxError')
  return Boolean(esmOnly) && (file.endsWith('.mjs') || packageType(file) === 'module')
}

/**
 * Requires `file` anew (its previous evaluation is dropped from require.cache). The transpile hooks
 * let it use TypeScript and ESM syntax; a file of a "type": "module" package that CommonJS cannot
 * run (top-level await, import.meta) is imported as a real ES module instead. Returns `{exports}`, or
 * `{pending}` (a promise of the exports) in that asynchronous import() case.
 */
function evaluate(file) {
  packageTypes.clear()
  if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile()) throw new Error(`${file} is not a file`)
  const resolved = require.resolve(file)
  if (esm.isEsm(resolved, packageType(resolved))) {
    return { pending: esm.importFresh(resolved).catch((e) => { throw withLocation(e) }) }
  }
  delete require.cache[resolved]
  try {
    return { exports: require(resolved) }
  } catch (error) {
    if (!wantsImport(resolved, error)) throw withLocation(error)
    // the query makes a fresh module instance; ES modules cannot be evicted from their cache
    const pending = import(`${pathToFileURL(resolved).href}?steppe-load=${++importVersion}`)
    return { pending: pending.catch((e) => { throw withLocation(e) }) }
  } finally {
    // reloads would otherwise pile old module objects up in this module's children
    const fresh = require.cache[resolved]
    module.children = module.children.filter((child) => child.filename !== resolved || child === fresh)
  }
}

/** An export by name, or the same name on the default export (`export default {config, handler}`). */
function pick(mod, name) {
  if (mod === null || mod === undefined) return undefined
  if (mod[name] !== undefined) return mod[name]
  const def = mod.default
  if (def !== null && (typeof def === 'object' || typeof def === 'function') && def[name] !== undefined) {
    return def[name]
  }
  return undefined
}

function requireConfig(mod) {
  const config = pick(mod, 'config')
  if (config === undefined) throw new ConfigError('the file exports no config')
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new ConfigError('the exported config is not an object')
  }
  return config
}

function optionalFunction(value, what) {
  if (value === undefined || value === null) return null
  if (typeof value !== 'function') throw new ConfigError(`${what} is not a function`)
  return value
}

function describeStep(mod, file) {
  const oneArgument = dialect.dialectExport(mod)
  if (oneArgument !== null) return dialect.describe(oneArgument)
  const config = requireConfig(mod)
  const handler = optionalFunction(pick(mod, 'handler'), 'the exported handler')
  const { json, middleware } = convertConfig(config, file)
  return { kind: 'step', config, json, handler, middleware, canAccess: null, authenticate: null }
}

function describeStream(mod, file) {
  const config = requireConfig(mod)
  const canAccess = optionalFunction(
    config.canAccess !== undefined ? config.canAccess : pick(mod, 'canAccess'), 'canAccess')
  const { json } = convertConfig(config, file)
  return { kind: 'stream', config, json, handler: null, middleware: [], canAccess, authenticate: null }
}

function describeAuth(mod) {
  let authenticate = pick(mod, 'authenticate')
  if (authenticate === undefined && typeof mod.default === 'function') authenticate = mod.default
  if (typeof authenticate !== 'function') throw new ConfigError('the file defines no authenticate(request)')
  return { kind: 'auth', config: {}, json: {}, handler: null, middleware: [], canAccess: null, authenticate }
}

const describers = { step: describeStep, stream: describeStream, auth: describeAuth }

/**
 * Loads `file` as `kind` and returns the `load` result, or a promise of it when the file had to be
 * imported as an ES module. Synchronous otherwise, so that an invoke sent right after the load answer
 * was written always finds the file. The entry is kept under `key`, the path exactly as the host
 * wrote it, which its invokes repeat. A failed reload forgets the old version; while an ES module's
 * reload is under way, the old version keeps answering.
 */
function load(key, file, kind) {
  let evaluated
  try {
    dialect.preload()
    evaluated = evaluate(file)
  } catch (error) {
    forget(key)
    throw error
  }
  const { exports: mod, pending } = evaluated
  if (pending === undefined) {
    forget(key)
    return register(key, file, kind, mod)
  }
  // an ES module imports asynchronously: invokes keep reaching the old version until the new one is ready
  return pending.then(
    (ns) => { forget(key); return register(key, file, kind, ns) },
    (error) => { forget(key); throw error })
}

function forget(key) {
  loaded.delete(key)
  for (const sub of loaded.keys()) if (sub.startsWith(`${key}#`)) loaded.delete(sub) // registerApi routes
}

function register(key, file, kind, mod) {
  const entry = kind === 'auth' && isMotiaConfig(file)
    ? describeMotiaConfig(mod, file, key, (subKey, sub) => loaded.set(subKey, sub))
    : describers[kind](mod, file)
  loaded.set(key, entry)
  return {
    config: entry.json,
    handler: entry.handler !== null,
    middleware: entry.middleware.length,
    canAccess: entry.canAccess !== null,
  }
}

module.exports = { load, forget, loaded, kinds: Object.keys(describers) }
