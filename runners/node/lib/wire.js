'use strict'
// Newline-delimited JSON-RPC 2.0 framing, plus the runner's own requests to the host.
//
// Transport (protocol/SPEC.md): when the host names a private pipe pair in STEPPE_RPC_FDS ("in,out",
// protocol 1.1) the protocol uses it, and fd 1 is left to user code (the host logs what reaches it, so
// `fs.writeSync(1, ...)` or a child with inherited stdio cannot corrupt the protocol). Otherwise it is
// stdin/stdout, and this module must be required before capture.js replaces process.stdout.write: it
// keeps the original so that protocol messages, and only they, reach the real stdout.

const net = require('net')
const limit = require('./linelimit')

const rpcFds = (process.env.STEPPE_RPC_FDS || '').split(',').filter((x) => x !== '').map(Number)
delete process.env.STEPPE_RPC_FDS // a handler's child processes are not runners
const overFds = rpcFds.length === 2 && rpcFds.every((fd) => Number.isInteger(fd) && fd > 2)

const output = overFds ? new net.Socket({ fd: rpcFds[1], readable: false, writable: true }) : process.stdout
const rawWrite = overFds ? output.write : process.stdout.write
const rawStderrWrite = process.stderr.write
const stderr = process.stderr

/** The stream the host's messages arrive on. */
function input() {
  return overFds ? new net.Socket({ fd: rpcFds[0], readable: true, writable: false }) : process.stdin
}

// Lines sent in one turn of the event loop leave in few writes: the first at once (an idle runner adds no
// latency), the rest joined and written by a setImmediate, which runs once the I/O callbacks of this turn
// (and their promise jobs) are done, or as soon as FLUSH_AT characters are held (the host starts on a long
// burst while the rest is being produced). A net.Socket write is a write(2) per call when nothing is
// queued: one per answer under load, on both ends of the pipe.
const FLUSH_AT = 32 * 1024
let held = null // null: nothing written this turn yet
let heldChars = 0

function writeHeld() {
  if (held !== null && held.length !== 0) {
    rawWrite.call(output, held.length === 1 ? held[0] : held.join(''))
    held = []
    heldChars = 0
  }
}

function endTurn() {
  writeHeld()
  held = null
}

// A lone UTF-16 surrogate (half of a pair: '\ud800', or a string cut between the two halves of an emoji) has
// no UTF-8 form. JSON.stringify writes one as the escape \udXXX, which is valid JSON but which the host's
// decoder (orjson) refuses: it dropped the whole line, and with it an invoke's answer (the request hung until
// its timeout, then the runner was killed). So each one is sent as \ufffd, U+FFFD, the replacement character
// a UTF-8 encoder (TextEncoder, Buffer) writes for it. JSON.stringify writes a valid pair raw and escapes only
// lone surrogates, so a line needs repairing only if it holds the text `\ud`: indexOf on the line already
// built is a native scan, a small fraction of the stringify that built it (measured on a 12 kB answer:
// ~0.3 us against ~70 us; ~9 us where every string holds backslashes); a regex test was slower. A line
// without one is sent as it is: the common path adds nothing else.
// The repair reads the escapes in order, so the text `\\ud800` (an escaped backslash, then "ud800") is kept.
const ESCAPE = /\\(?:\\|ud[89a-f][0-9a-f]{2})/g

function wellFormed(line) {
  if (line.indexOf('\\ud') === -1) return line
  return line.replace(ESCAPE, (escape) => (escape.length === 2 ? escape : '\\ufffd')) // same length
}

/**
 * Send one protocol line (already ending in \n); `callback` runs once it (and all before it) is flushed.
 * The caller has checked its length (linelimit.js): the functions below do, for each kind of message.
 */
function send(line, callback) {
  line = wellFormed(line)
  if (held === null) {
    held = []
    setImmediate(endTurn)
    return rawWrite.call(output, line, callback)
  }
  if (callback !== undefined) {
    writeHeld()
    return rawWrite.call(output, line, callback)
  }
  held.push(line)
  heldChars += line.length
  if (heldChars >= FLUSH_AT) writeHeld()
  return true
}

/** Diagnostics of the runner itself: free text on the real stderr, never captured as user output. */
function diagnose(text) {
  rawStderrWrite.call(stderr, `steppe-node-runner: ${text}\n`)
}

const HEAD = '{"jsonrpc":"2.0","id":'

// Replies are built by concatenation so the hot path makes no wrapper object and a single stringify of
// the result. JSON.stringify(id) keeps string ids quoted and integer ids bare.
function encodeResult(id, resultJson) {
  return HEAD + JSON.stringify(id) + ',"result":' + resultJson + '}\n'
}

function encodeError(id, error) {
  return HEAD + JSON.stringify(id === undefined ? null : id) + ',"error":' + JSON.stringify(error) + '}\n'
}

/** The last resort of the fallbacks below, whose lines only an id near the limit could make too long. */
function sendFitting(line, what) {
  const bytes = limit.over(line)
  if (bytes === 0) send(line)
  else diagnose(`dropped ${what}: it is ${limit.overText(bytes)}`)
}

/**
 * Answers request `id` with a result already JSON. An answer too long for a line is sent as an error
 * answer with `code`, naming `what` (e.g. "the handler's result"); returns false then, true when sent.
 */
function replyJson(id, resultJson, code = -32000, what = 'the answer') {
  const line = encodeResult(id, resultJson)
  const bytes = limit.over(line)
  if (bytes === 0) {
    send(line)
    return true
  }
  sendFitting(encodeError(id, limit.tooLarge(code, what, bytes)), `the error answer to request ${id}`)
  return false
}

function reply(id, result, code, what) {
  return replyJson(id, result === undefined ? 'null' : JSON.stringify(result), code, what)
}

/** An error answer; one too long for a line keeps its code and type, with its message and stack cut. */
function replyError(id, error) {
  const line = encodeError(id, error)
  const bytes = limit.over(line)
  if (bytes === 0) send(line)
  else sendFitting(encodeError(id, limit.cutError(error, bytes)), `the error answer to request ${id}`)
}

function notify(method, params) {
  sendFitting('{"jsonrpc":"2.0","method":"' + method + '","params":' + JSON.stringify(params) + '}\n',
    `a ${method} notification`)
}

/**
 * Sends a `log` record (`json`: its params, already encoded and redacted, when the caller has them). A
 * record too long for a line is sent cut (linelimit.cutLog); logging never throws, so this never does.
 */
function log(params, json = JSON.stringify(params)) {
  const line = '{"jsonrpc":"2.0","method":"log","params":' + json + '}\n'
  const bytes = limit.over(line)
  if (bytes === 0) send(line)
  else notify('log', limit.cutLog(params, bytes))
}

/**
 * Calls `onLine(buffer)` for every complete line on `stream`, and `onEnd()` at EOF.
 * An unfinished line is kept as a list of chunks and joined once, when its newline arrives, so a very
 * long line costs O(length) rather than the O(n^2) of repeated string concatenation.
 */
function readLines(stream, onLine, onEnd) {
  let parts = []
  let held = 0 // bytes in parts
  let dropping = false // inside a line over maxLine: skip to its newline
  stream.on('data', (chunk) => {
    const maxLine = limit.getMaxLine()
    let start = 0
    let nl
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      let line
      if (dropping) {
        line = null
        dropping = false
      } else if (parts.length === 0) {
        line = chunk.subarray(start, nl)
      } else {
        parts.push(chunk.subarray(start, nl))
        line = Buffer.concat(parts)
        parts = []
        held = 0
      }
      start = nl + 1
      if (line !== null && line.length > maxLine) diagnose(`dropped a message longer than ${maxLine} bytes`)
      else if (line !== null && line.length !== 0) onLine(line)
    }
    if (start < chunk.length && !dropping) {
      parts.push(start === 0 ? chunk : chunk.subarray(start))
      held += chunk.length - start
      if (held > maxLine) {
        diagnose(`dropped a message longer than ${maxLine} bytes`)
        parts = []
        held = 0
        dropping = true
      }
    }
  })
  let ended = false
  const end = () => {
    if (ended) return
    ended = true
    if (parts.length !== 0) onLine(Buffer.concat(parts))
    parts = []
    onEnd()
  }
  stream.on('end', end)
  stream.on('close', end)
  stream.on('error', end)
}

// ---- requests from the runner to the host (emit, state.*, streams.*) ----

let nextCallId = 0
// call id -> {resolve, reject}, in a plain object's integer-keyed elements rather than a Map: once a Map has
// lived through a full GC it is in old space, and V8 puts each hash table it regrows or shrinks to (every
// batch of calls fills and empties it) in old space too. The discarded tables stay there until the next
// full GC and, meanwhile, keep the settled calls' promises alive through each scavenge, which then moves
// those to old space as well: ~7 MB more RSS after each burst of 20,000 emits (bench S8) where this
// object's elements stay flat.
const pendingCalls = Object.create(null)

/** An error answer from the host, raised in the handler with the host's type and code. */
function hostError(error) {
  const data = (error && error.data) || {}
  const err = new Error(String((error && error.message) || 'host call failed'))
  err.name = typeof data.type === 'string' && data.type ? data.type : 'HostError'
  err.type = err.name
  err.code = error && error.code
  err.data = data
  return err
}

/**
 * Sends a request whose params are already JSON, and returns a promise of the host's answer.
 * The caller stringifies the params so it can name the offending field when that fails.
 */
function call(method, paramsJson) {
  const id = ++nextCallId
  const line = HEAD + id + ',"method":"' + method + '","params":' + paramsJson + '}\n'
  const bytes = limit.over(line)
  if (bytes !== 0) {
    // refused as the host refuses a call it cannot carry: the handler sees the same PayloadTooLarge error
    return Promise.reject(hostError(limit.tooLarge(-32010, `the ${method} message`, bytes)))
  }
  return new Promise((resolve, reject) => {
    pendingCalls[id] = { resolve, reject }
    send(line)
  })
}

/** Settles the pending call a host response answers; answers to nothing we asked are ignored. */
function settle(msg) {
  const pending = typeof msg.id === 'number' ? pendingCalls[msg.id] : undefined
  if (pending === undefined) {
    diagnose(`ignored a response to unknown request id ${JSON.stringify(msg.id)}`)
    return
  }
  delete pendingCalls[msg.id]
  if (msg.error !== undefined) pending.reject(hostError(msg.error))
  else pending.resolve(msg.result === undefined ? null : msg.result)
}

module.exports = {
  input, output, setMaxLine: limit.setMaxLine,
  send, diagnose, reply, replyJson, replyError, notify, log, encodeResult, encodeError, readLines, call, settle,
}
