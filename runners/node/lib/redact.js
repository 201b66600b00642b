'use strict'
// Secrets never leave the runner in a log. The same rules as the host's (host/redact.py), with the
// keys the host passes in STEPPE_REDACT_KEYS (the defaults when it is unset):
// a key is secret when its name, lower-cased and without `-`/`_`, contains a secret word
// (`authorization` and `cookie` always; `password`, `token`, ... by default); text loses
// `Bearer <token>` / `Basic <credentials>` and `<secret key>=<value>` / `"<secret key>": "<value>"`.

const MASK = '[REDACTED]'
const ALWAYS_SECRET = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie']
const DEFAULT_REDACT_KEYS = 'password,passwd,secret,token,api_key,apikey,access_key,private_key'

const SCHEME = /\b(Bearer|Basic|Digest)(\s+)([A-Za-z0-9\-._~+/]+=*)/gi
const PAIR = new RegExp(
  String.raw`(["']?)([A-Za-z0-9_\-.]+)\1(\s*[:=]\s*)` +
  String.raw`(?!\[REDACTED\])("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:(?:Bearer|Basic|Digest)\s+)?[^\s,;&}\]"']+)`,
  'gi')

const norm = (name) => name.toLowerCase().replace(/[-_]/g, '')

function parseKeys(keys) {
  return keys.split(',').map((k) => k.trim()).filter(Boolean)
}

const env = process.env.STEPPE_REDACT_KEYS
const WORDS = [...new Set([...ALWAYS_SECRET, ...parseKeys(env === undefined ? DEFAULT_REDACT_KEYS : env)]
  .map(norm).filter(Boolean))]

function isSecretKey(name) {
  const n = norm(name)
  return WORDS.some((w) => n.includes(w))
}

function looksBasic(cred) {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(cred)) return false
  return Buffer.from(cred, 'base64').toString('latin1').includes(':')
}

function redactText(s) {
  const lowered = s.toLowerCase()
  const n = norm(lowered)
  if (WORDS.some((w) => n.includes(w))) {
    // first: it takes `authorization: Bearer x` whole
    s = s.replace(PAIR, (all, q, key, sep, value) => {
      if (!isSecretKey(key)) return all
      const quote = value[0] === '"' || value[0] === "'" ? value[0] : ''
      return `${q}${key}${q}${sep}${quote}${MASK}${quote}`
    })
  }
  if (lowered.includes('bearer') || lowered.includes('basic') || lowered.includes('digest')) {
    s = s.replace(SCHEME, (all, scheme, space, cred) =>
      scheme.toLowerCase() === 'basic' && !looksBasic(cred) ? all : `${scheme}${space}${MASK}`)
  }
  return s
}

/**
 * Wraps a JSON.stringify replacer so that values under secret keys and credentials in strings are
 * masked at any depth; `root` (the log params object) keeps its own keys as they are.
 */
function redactingReplacer(inner, root) {
  return function (key, value) {
    value = inner.call(this, key, value)
    if (this !== root && typeof key === 'string' && key !== '' && isSecretKey(key) &&
        value !== null && value !== undefined) return MASK
    return typeof value === 'string' ? redactText(value) : value
  }
}

module.exports = { MASK, redactText, redactingReplacer, isSecretKey }
