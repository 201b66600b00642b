'use strict'
// JSON-RPC error objects `{code, message, data: {type, stack}}` (protocol/SPEC.md, "Error codes").

const path = require('path')

const codes = Object.freeze({
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  HANDLER_ERROR: -32000,
  LOAD_ERROR: -32001,
  CANCELLED: -32002,
  NOT_LOADED: -32003,
  UNSUPPORTED_VERSION: -32004,
})

// Frames from this directory (runner code and its node_modules, e.g. sucrase) and Node's own internals
// tell the user nothing about their handler.
const RUNNER_DIR = path.resolve(__dirname, '..') + path.sep

function isNoiseFrame(line) {
  // a "Require stack:" entry of MODULE_NOT_FOUND errors
  if (line.startsWith(`- ${RUNNER_DIR}`)) return true
  const at = line.indexOf('at ')
  if (at === -1 || line.slice(0, at).trim() !== '') return false
  return line.includes(RUNNER_DIR) || line.includes('node:internal') || /[( ]node:[a-z_]/.test(line)
}

function trimStack(stack) {
  if (typeof stack !== 'string') return ''
  return stack.split('\n').filter((line) => !isNoiseFrame(line)).join('\n')
}

/** A named error class without boilerplate: `new (named('ConfigError'))(msg)` has name ConfigError. */
function named(name) {
  return class extends Error {
    constructor(message) {
      super(message)
      this.name = name
    }
  }
}

const ConfigError = named('ConfigError')
const CancelledError = named('CancelledError')

/**
 * `what` (a function reading a thrown value) or, when reading throws, `fallback(reason)`. Anything may be
 * thrown, and reading it can run user code: a Proxy's traps, a throwing `message` or `stack` getter, a
 * throwing `Error.prepareStackTrace` (V8 formats a stack on first read). Describing an error must never
 * throw, or the invocation is never answered.
 */
function readOr(what, fallback) {
  try {
    return what()
  } catch (reason) {
    return fallback(reasonOf(reason))
  }
}

/** Why reading a value threw, as text; never throws (the reason itself may be unreadable). */
function reasonOf(reason) {
  try {
    // name and message, not the stack: formatting it is what may throw again
    if (reason instanceof Error) return `${String(reason.name)}: ${String(reason.message)}`
    return typeof reason === 'string' ? reason : String(reason)
  } catch {
    return 'an unreadable value'
  }
}

/** The fixed description of a thrown value whose message cannot be read. */
function unreadable(reason) {
  return `<unreadable thrown value: ${reason}>`
}

function describeThrown(code, thrown) {
  if (thrown instanceof Error || (thrown !== null && typeof thrown === 'object' && 'message' in thrown)) {
    const type = readOr(() => (typeof thrown.name === 'string' && thrown.name
      ? thrown.name
      : (thrown.constructor && thrown.constructor.name) || 'Error'), () => 'Error')
    const message = readOr(() => (thrown.code === 'MODULE_NOT_FOUND'
      ? trimStack(String(thrown.message)) : String(thrown.message)), unreadable)
    // problems the runner finds itself (a missing config, ...) have no stack worth showing
    const stack = thrown instanceof ConfigError ? ''
      : readOr(() => trimStack(thrown.stack), (reason) => `${type}: ${message}\n    <unreadable stack: ${reason}>`)
    return { code, message: String(message), data: { type: String(type), stack } }
  }
  let message
  try {
    message = typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown)
  } catch {
    message = String(thrown)
  }
  return { code, message, data: { type: 'Error', stack: '' } }
}

/** Anything thrown (Error or not) as an error object with the given code; never throws. */
function toRpcError(code, thrown) {
  return readOr(() => describeThrown(code, thrown),
    (reason) => ({ code, message: unreadable(reason), data: { type: 'Error', stack: '' } }))
}

/** A thrown value as text for a log: an Error's stack, anything else as a string; never throws. */
function thrownText(thrown) {
  return readOr(() => {
    if (!(thrown instanceof Error)) return String(thrown)
    const { message, data } = toRpcError(0, thrown)
    return data.stack || `${data.type}: ${message}`
  }, unreadable)
}

/** An Error's message, anything else as text: what a JSON.stringify call threw, for one; never throws. */
function messageOf(thrown) {
  return readOr(() => (thrown instanceof Error ? String(thrown.message) : String(thrown)), unreadable)
}

/** An error object for failures of the runner's own making (bad params, unknown path, ...). */
function rpcError(code, type, message) {
  return { code, message, data: { type, stack: '' } }
}

module.exports = {
  codes, trimStack, toRpcError, thrownText, messageOf, readOr, rpcError, ConfigError, CancelledError, RUNNER_DIR }
