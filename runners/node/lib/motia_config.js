'use strict'
// A Motia project's motia.config.ts|js, read for what it means to the backend:
// - streamAuth.authenticate (the project's stream authenticate hook) and streamAuth.contextSchema;
// - each plugin builder is called with a small plugin context: its registerApi(config, handler) routes
//   are kept as API steps, and its returned {dirname, steps} globs name more step files to load;
// - everything else a plugin returns (workbench tabs, adapters) is for Motia's Workbench and is ignored.
// The `@motiadev/*` packages a config imports may be absent: lib/esm_hooks.mjs then gives it stand-ins
// (a plugin builder that adds nothing, an identity defineConfig).

const path = require('path')
const { ConfigError } = require('./errors')
const { convertConfig } = require('./config')

const MOTIA_CONFIG = /^motia\.config\.(ts|mts|js|mjs)$/

function isMotiaConfig(file) {
  return MOTIA_CONFIG.test(path.basename(file))
}

/** What a plugin builder may use of Motia's plugin context, locally: registerApi. */
function pluginContext(apis) {
  return {
    registerApi(config, handler) {
      apis.push({ config, handler })
      return () => {}
    },
  }
}

function callPlugins(builders, warnings) {
  const apis = []
  const plugins = []
  if (builders === undefined) return { apis, plugins }
  if (!Array.isArray(builders)) throw new ConfigError('motia.config plugins must be an array of functions')
  builders.forEach((builder, i) => {
    if (typeof builder !== 'function') throw new ConfigError(`motia.config plugins[${i}] is not a function`)
    const found = []
    let plugin
    try {
      plugin = builder(pluginContext(found))
    } catch (error) {
      // an installed Workbench plugin may need parts of Motia that Steppe does not have: skip it, say so
      warnings.push(`plugins[${i}] (${builder.name || 'anonymous'}) was skipped: ${error.message}`)
      return
    }
    apis.push(...found)
    if (plugin && Array.isArray(plugin.steps) && plugin.steps.length && typeof plugin.dirname === 'string') {
      plugins.push({ dirname: plugin.dirname, steps: plugin.steps.filter((s) => typeof s === 'string') })
    }
  })
  return { apis, plugins }
}

function apiConfig(config, i) {
  if (!config || typeof config.path !== 'string') throw new ConfigError(`registerApi #${i} has no path`)
  const method = String(config.method || 'GET').toUpperCase()
  return { name: `${method} ${config.path}`, flows: ['_plugin'], emits: [], ...config, type: 'api', method }
}

/**
 * The `load` entry of a motia.config file (loaded as kind "auth"): its authenticate hook, and in the
 * JSON the host gets: whether there is one, the context schema, plugin step globs and registered routes.
 * `register(subKey, entry)` keeps each registerApi handler as a step entry the host can invoke.
 */
function describeMotiaConfig(mod, file, key, register) {
  const config = mod && mod.default !== undefined ? mod.default : mod
  if (!config || typeof config !== 'object') throw new ConfigError('motia.config exports no config object')
  const streamAuth = config.streamAuth || {}
  const authenticate = typeof streamAuth.authenticate === 'function' ? streamAuth.authenticate : null
  const warnings = []
  const { apis, plugins } = callPlugins(config.plugins, warnings)
  const routes = apis.map(({ config: routeConfig, handler }, i) => {
    if (typeof handler !== 'function') throw new ConfigError(`registerApi #${i} has no handler function`)
    const stepKey = `${key}#registerApi:${i}`
    const full = apiConfig(routeConfig, i)
    const { json, middleware } = convertConfig(full, file)
    register(stepKey, { kind: 'step', config: full, json, handler, middleware, canAccess: null, authenticate: null })
    return { key: stepKey, config: json }
  })
  const contextSchema = streamAuth.contextSchema === undefined
    ? null
    : convertConfig({ contextSchema: streamAuth.contextSchema }, file).json.contextSchema
  return {
    kind: 'auth',
    config,
    json: { motiaConfig: true, authenticate: authenticate !== null, contextSchema, plugins, routes, warnings },
    handler: null,
    middleware: [],
    canAccess: null,
    authenticate,
  }
}

module.exports = { isMotiaConfig, describeMotiaConfig }
