'use strict'
// The JSON nesting limit every Steppe runner enforces: 512 levels for a value (a request body, event
// data, a state or stream value, a result), 520 for a whole protocol message (the value plus its
// envelope, e.g. {"params": {"input": {"body": ...}}}). Deeper data is refused with an error naming
// the limit: a message from the host is answered with InvalidParams (an answer to a host call fails
// that call), a value a handler sends raises in the handler before anything is written (the host
// could not decode it, and the call would hang).

const MAX_DEPTH = 512
const MESSAGE_DEPTH = MAX_DEPTH + 8
const TOO_DEEP = `nested deeper than ${MAX_DEPTH} levels (the JSON nesting limit of Steppe runners)`

/** True when `value` nests arrays/objects more than `limit` levels; iterative, so any depth is safe. */
function exceeds(value, limit = MAX_DEPTH) {
  if (value === null || typeof value !== 'object') return false
  const stack = [value]
  const depths = [1]
  while (stack.length !== 0) {
    const v = stack.pop()
    const depth = depths.pop()
    if (depth > limit) return true
    const children = Array.isArray(v) ? v : Object.values(v)
    for (const c of children) {
      if (c !== null && typeof c === 'object') {
        stack.push(c)
        depths.push(depth + 1)
      }
    }
  }
  return false
}

/** For the decoder: a line this short cannot nest deeper than a message may (each level takes 2 bytes). */
function mayExceed(line) {
  return line.length > 2 * MESSAGE_DEPTH
}

/**
 * For the decoder, given a decoded message: true when it was too deep and has been dealt with, a
 * request answered through `answer(id, error)`, an answer to a host call failed through `failCall(msg)`.
 */
function refuse(line, msg, answer, failCall) {
  if (!mayExceed(line) || !exceeds(msg, MESSAGE_DEPTH)) return false
  const error = { code: -32602, message: `message ${TOO_DEEP}`, data: { type: 'InvalidParams' } }
  if (msg.id === undefined || msg.id === null) return true // a notification: nobody to answer
  if (msg.method !== undefined) answer(msg.id, error)
  else failCall({ jsonrpc: '2.0', id: msg.id, error: { ...error, message: `the host's answer is ${TOO_DEEP}` } })
  return true
}

module.exports = { MAX_DEPTH, MESSAGE_DEPTH, TOO_DEEP, exceeds, refuse }
