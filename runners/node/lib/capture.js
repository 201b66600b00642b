'use strict'
// User output (console.*, process.stdout/stderr writes) becomes `log` notifications, one per line, tied
// to the invocation that wrote it. The invocation is found through AsyncLocalStorage, which follows
// the handler across awaits, timers and callbacks.

const { AsyncLocalStorage } = require('async_hooks')
const util = require('util')
const wire = require('./wire')
const { redactText } = require('./redact')

/** The running invocation (`{id, ...}`) of the current async context, or undefined outside handlers. */
const invocations = new AsyncLocalStorage()

// An unfinished line is sent anyway once it grows past this, so a writer that never ends its line
// cannot grow the buffer without bound.
const MAX_PARTIAL = 64 * 1024

function currentId() {
  const inv = invocations.getStore()
  return inv === undefined ? null : inv.id
}

function sendLog(invocation, level, msg, fields, source) {
  wire.log({ invocation, level, msg, fields, source })
}

const EMPTY = Object.freeze({})

function makeSink(source, level) {
  // unfinished line per invocation id (null for output outside any invocation)
  const partial = new Map()

  function line(id, text) {
    sendLog(id, level, redactText(text.endsWith('\r') ? text.slice(0, -1) : text), EMPTY, source)
  }

  function write(chunk, encoding, callback) {
    if (typeof encoding === 'function') {
      callback = encoding
      encoding = undefined
    }
    let text
    if (typeof chunk === 'string') text = chunk
    else if (chunk instanceof Uint8Array) {
      text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8')
    } else text = String(chunk)
    const id = currentId()
    let start = 0
    let nl
    while ((nl = text.indexOf('\n', start)) !== -1) {
      let piece = text.slice(start, nl)
      if (start === 0 && partial.size !== 0 && partial.has(id)) {
        piece = partial.get(id) + piece
        partial.delete(id)
      }
      line(id, piece)
      start = nl + 1
    }
    if (start < text.length) {
      const rest = start === 0 && partial.has(id) ? partial.get(id) + text : text.slice(start)
      if (rest.length > MAX_PARTIAL) {
        partial.delete(id)
        line(id, rest)
      } else partial.set(id, rest)
    }
    if (typeof callback === 'function') process.nextTick(callback)
    return true
  }

  function flush(id) {
    if (partial.size === 0 || !partial.has(id)) return
    const rest = partial.get(id)
    partial.delete(id)
    line(id, rest)
  }

  function flushAll() {
    for (const id of [...partial.keys()]) flush(id)
  }

  return { write, flush, flushAll }
}

const out = makeSink('stdout', 'info')
const err = makeSink('stderr', 'warn')
const errors = makeSink('stderr', 'error') // console.error: an error, not a warning like other stderr output

/** Routes process.stdout/stderr writes (and so console.*) into log notifications. */
function install() {
  process.stdout.write = out.write
  process.stderr.write = err.write
  console.error = (...args) => { errors.write(util.format(...args) + '\n') }
}

/** Sends what an invocation printed without a final newline, once it has finished. */
function flush(id) {
  out.flush(id)
  err.flush(id)
  errors.flush(id)
}

function flushAll() {
  out.flushAll()
  err.flushAll()
  errors.flushAll()
}

module.exports = { invocations, currentId, sendLog, install, flush, flushAll }
