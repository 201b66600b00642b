'use strict'
// The protocol's line limit (protocol/SPEC.md, "Line limit"): the longest line either side may send, in
// bytes with its newline (STEPPE_MAX_LINE, or maxLine in initialize). The host restarts a runner that
// sends a longer line, and every invocation in flight in it fails with it; so a handler that makes this
// runner produce one (a 20 MB state value, result or log record) must fail alone. wire.js measures every
// line where it is encoded, before writing it, and sends what this module builds instead: a host call
// fails in its handler, an answer becomes an error answer, a log record is cut.

const { redactText } = require('./redact')

let maxLine = Number(process.env.STEPPE_MAX_LINE) > 0 ? Number(process.env.STEPPE_MAX_LINE) : 64 * 1024 * 1024

// characters of an oversized log message or error kept when it is cut
const CUT_AT = 4096

function setMaxLine(value) {
  if (Number.isInteger(value) && value > 0) maxLine = value
}

function getMaxLine() {
  return maxLine
}

/**
 * The length in bytes of `line` (newline included) when it is over the limit, else 0. UTF-8 takes at
 * most 3 bytes per UTF-16 code unit, so a line of up to maxLine / 3 units is not measured: the hot path
 * is one multiplication and comparison on the string already built.
 */
function over(line) {
  if (line.length * 3 <= maxLine) return 0
  const bytes = Buffer.byteLength(line)
  return bytes > maxLine ? bytes : 0
}

/** The reason a line of `bytes` bytes was not sent, naming the limit and its setting: "<N> bytes, over ...". */
function overText(bytes) {
  return `${bytes} bytes, over the protocol's ${maxLine}-byte line limit (max_line)`
}

/** The error object sent (or raised in the handler) instead of a message too long for a line. */
function tooLarge(code, what, bytes) {
  return { code, message: `${what} is ${overText(bytes)}`, data: { type: 'PayloadTooLarge' } }
}

/** The first CUT_AT characters of `text`, without splitting a surrogate pair. */
function cut(text) {
  if (text.length <= CUT_AT) return text
  const code = text.charCodeAt(CUT_AT - 1)
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? CUT_AT - 1 : CUT_AT)
}

/**
 * An error answer's error that was `bytes` long as a line (a handler threw with megabytes in its
 * message): its code and type kept, its message and stack cut, the message saying so.
 */
function cutError(error, bytes) {
  const data = error !== null && typeof error === 'object' && error.data !== null && typeof error.data === 'object'
    ? error.data : {}
  return {
    code: Number.isInteger(error && error.code) ? error.code : -32000,
    message: `${cut(String(error && error.message))}… (cut: the error is ${overText(bytes)})`,
    data: { type: cut(String(data.type || 'Error')), stack: cut(String(data.stack || '')) },
  }
}

/**
 * The params of a `log` record that was `bytes` long as a line: its msg cut (and redacted again, as the
 * replacer that redacted it is not run on the cut copy), its fields replaced by the reason. The record
 * is kept rather than dropped, so the log still shows that the handler logged it and where.
 */
function cutLog(params, bytes) {
  return {
    ...params,
    msg: `${redactText(cut(String(params.msg)))}…`,
    fields: { truncated: `the record was ${overText(bytes)}` },
  }
}

module.exports = { setMaxLine, getMaxLine, over, overText, tooLarge, cutError, cutLog }
