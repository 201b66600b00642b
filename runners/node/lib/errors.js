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

/** Anything thrown (Error or not) as an error object with the given code. */
function toRpcError(code, thrown) {
  if (thrown instanceof Error || (thrown !== null && typeof thrown === 'object' && 'message' in thrown)) {
    const type = typeof thrown.name === 'string' && thrown.name
      ? thrown.name
      : (thrown.constructor && thrown.constructor.name) || 'Error'
    const message = thrown.code === 'MODULE_NOT_FOUND' ? trimStack(String(thrown.message)) : String(thrown.message)
    // problems the runner finds itself (a missing config, ...) have no stack worth showing
    const stack = thrown instanceof ConfigError ? '' : trimStack(thrown.stack)
    return { code, message, data: { type, stack } }
  }
  let message
  try {
    message = typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown)
  } catch {
    message = String(thrown)
  }
  return { code, message, data: { type: 'Error', stack: '' } }
}

/** An error object for failures of the runner's own making (bad params, unknown path, ...). */
function rpcError(code, type, message) {
  return { code, message, data: { type, stack: '' } }
}

module.exports = { codes, trimStack, toRpcError, rpcError, ConfigError, CancelledError, RUNNER_DIR }
