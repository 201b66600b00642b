#!/usr/bin/env node
'use strict'
// Steppe's Node.js runner: speaks protocol v1.1 (protocol/SPEC.md) on the pipe pair named in
// STEPPE_RPC_FDS (or stdin/stdout without it), loads JS/TS step files and runs their handlers. The host
// starts it as `node runner.js` with cwd = the project root.

// wire first: it keeps the real process.stdout.write before capture replaces it
const wire = require('./lib/wire')
const capture = require('./lib/capture')
const transpile = require('./lib/transpile')
const loader = require('./lib/loader')
const invoke = require('./lib/invoke')
const depth = require('./lib/depth')
const globals = require('./lib/globals')
const path = require('path')
const { codes, toRpcError, rpcError, thrownText, readOr } = require('./lib/errors')
const { version: RUNNER_VERSION } = require('./package.json')

const PROTOCOL_VERSION = 1
// the registry name the host runs this runner under
const LANGUAGE = process.env.STEPPE_RUNNER_NAME || 'node'

// user frames are often deep under framework code; the runner's own frames are trimmed anyway
Error.stackTraceLimit = Math.max(Error.stackTraceLimit, 30)

// A step's process.exit() would end the runner and every invocation running in it; the same call in
// Python or Ruby (sys.exit, exit) raises in the handler instead. So here it throws: the invocation fails
// with the reason, the runner keeps serving. The runner itself exits through the real one.
const realExit = process.exit.bind(process)

class ProcessExit extends Error {
  constructor(code) {
    super(`process.exit(${code === undefined ? '' : code}) was called by a step: the runner serves other steps ` +
      'too, so it does not exit; this invocation fails instead')
    this.name = 'ProcessExit'
    this.exitCode = code
  }
}

process.exit = function exit(code) {
  throw new ProcessExit(code)
}

let stopping = false
// relative load paths are taken from the project root the host announced (the cwd until then)
let projectRoot = process.cwd()

function exit() {
  // the empty write's callback runs once everything written before it has been flushed
  const timer = setTimeout(() => realExit(0), 2000)
  wire.send('', () => {
    clearTimeout(timer)
    realExit(0)
  })
}

/** `shutdown` (with its request id) or EOF (without): cancel what runs, flush, answer, exit 0. */
function shutdown(id) {
  if (stopping) return
  stopping = true
  invoke.cancelAll()
  capture.flushAll()
  if (id !== undefined) wire.reply(id, null)
  exit()
}

function initialize(id, params) {
  if (params.protocolVersion !== PROTOCOL_VERSION) {
    return wire.replyError(id, rpcError(codes.UNSUPPORTED_VERSION, 'UnsupportedVersion',
      `this runner speaks protocol version ${PROTOCOL_VERSION}, not ${JSON.stringify(params.protocolVersion)}`))
  }
  if (typeof params.projectRoot === 'string') projectRoot = path.resolve(params.projectRoot)
  wire.setMaxLine(params.maxLine)
  wire.reply(id, { protocolVersion: PROTOCOL_VERSION, language: LANGUAGE, runnerVersion: RUNNER_VERSION, pid: process.pid })
}

function load(id, params) {
  if (typeof params.path !== 'string' || !loader.kinds.includes(params.kind)) {
    return wire.replyError(id, rpcError(codes.INVALID_PARAMS, 'InvalidParams',
      `load needs params {path, kind: ${loader.kinds.join(' | ')}}`))
  }
  const failed = (error) => {
    globals.restore()
    wire.replyError(id, toRpcError(codes.LOAD_ERROR, error))
  }
  // a config too long for one line fails the load like a broken file: the file is not kept loaded
  const answer = (r) => {
    const replaced = globals.restore()
    if (replaced.length > 0) {
      loader.forget(params.path)
      return failed(new Error(`the file replaces ${replaced.join(', ')}, which the Node runner uses for every ` +
        'step; it was put back and the file not loaded: leave these globals as they are'))
    }
    if (!wire.reply(id, r, codes.LOAD_ERROR, "the file's load answer")) loader.forget(params.path)
  }
  let result
  try {
    result = loader.load(params.path, path.resolve(projectRoot, params.path), params.kind)
  } catch (error) {
    return failed(error)
  }
  if (result instanceof Promise) result.then(answer, failed)
  else answer(result)
}

function onRequest(id, method, params) {
  switch (method) {
    case 'ping':
      return wire.replyJson(id, '"pong"')
    case 'invoke':
      return invoke.start(id, params)
    case 'load':
      return load(id, params)
    case 'initialize':
      return initialize(id, params)
    case 'shutdown':
      return shutdown(id)
    default:
      return wire.replyError(id, rpcError(codes.METHOD_NOT_FOUND, 'MethodNotFound', `unknown method ${method}`))
  }
}

function onNotification(method, params) {
  if (method === 'cancel' && params !== null && typeof params === 'object') invoke.cancel(params.id)
}

function onLine(buffer) {
  let msg
  try {
    msg = JSON.parse(buffer.toString())
  } catch {
    const text = buffer.toString()
    wire.diagnose(`ignored an unparseable line: ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`)
    return
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    wire.diagnose('ignored a line that is not a JSON-RPC message object')
    return
  }
  if (depth.refuse(buffer, msg, wire.replyError, wire.settle)) return
  const method = msg.method
  if (method === undefined) return wire.settle(msg)
  const id = msg.id
  if (typeof method !== 'string') {
    if (id !== undefined) wire.replyError(id, rpcError(codes.INVALID_REQUEST, 'InvalidRequest', 'method must be a string'))
    return
  }
  const params = msg.params === undefined || msg.params === null ? {} : msg.params
  if (id === undefined) return onNotification(method, params)
  if (stopping) return
  try {
    onRequest(id, method, params)
  } catch (error) {
    // a bug of the runner itself: its frames, trimmed from the answer, matter here
    wire.diagnose(`internal error on ${method}: ${readOr(() => String(error && error.stack), (why) => why)}`)
    wire.replyError(id, toRpcError(codes.INTERNAL_ERROR, error))
  }
}

function main() {
  capture.install()
  transpile.install()
  // A handler's stray timer or promise must not take the runner (and every other handler) down; nor may
  // reading what it threw (thrownText never throws: a throw in these handlers would end the process).
  const report = (what, thrown) => {
    const text = thrownText(thrown)
    capture.sendLog(capture.currentId(), 'error', `${what}: ${text}`, {}, 'stderr')
  }
  process.on('uncaughtException', (error) => report('uncaught exception', error))
  process.on('unhandledRejection', (reason) => report('unhandled promise rejection', reason))
  // The host owns the runner's life: a Ctrl-C aimed at the host's process group must not kill the
  // runner before the host has shut it down cleanly. EOF on the protocol input still ends it.
  process.on('SIGINT', () => {})
  // the host is gone if its end of our protocol output is closed
  wire.output.on('error', () => realExit(0))
  if (wire.output !== process.stdout) process.stdout.on('error', () => {})
  wire.readLines(wire.input(), onLine, () => shutdown(undefined))
}

main()
