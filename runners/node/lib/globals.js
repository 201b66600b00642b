'use strict'
// Globals the runner itself uses for every step. A step file that replaces one at its top level would break
// the whole language (seen: `globalThis.setImmediate = () => {}` stopped the runner answering; it was killed
// after the ping timeout, loaded the same file again and crash-looped, the file never named; a replaced
// JSON.stringify, or an Object.prototype.toJSON, garbled every message). After each load the runner puts
// its own back and fails that file, naming what it replaced.

const NEEDED = [
  [globalThis, 'globalThis.', 'JSON'], // first: the checks below are on the runner's own JSON object
  [JSON, 'JSON.', 'stringify'],
  [JSON, 'JSON.', 'parse'],
  [globalThis, 'globalThis.', 'setImmediate'],
  [globalThis, 'globalThis.', 'setTimeout'],
  [globalThis, 'globalThis.', 'clearTimeout'],
  [globalThis, 'globalThis.', 'Promise'],
  [Buffer, 'Buffer.', 'from'],
  [Buffer, 'Buffer.', 'byteLength'],
].map(([owner, prefix, key]) => ({ owner, key, name: prefix + key, value: owner[key] }))

// prototypes JSON.stringify consults on every value: a toJSON there would answer for every object
const PROTOTYPES = [[Object.prototype, 'Object.prototype'], [Array.prototype, 'Array.prototype'],
  [String.prototype, 'String.prototype'], [Number.prototype, 'Number.prototype']]

/** Put back what a step file replaced; the names of what it had replaced ([] when nothing). */
function restore() {
  const replaced = []
  for (const g of NEEDED) {
    if (g.owner[g.key] !== g.value) {
      replaced.push(g.name)
      try {
        g.owner[g.key] = g.value
      } catch {
        Object.defineProperty(g.owner, g.key, { value: g.value, writable: true, configurable: true })
      }
    }
  }
  for (const [proto, name] of PROTOTYPES) {
    if (Object.prototype.hasOwnProperty.call(proto, 'toJSON')) {
      replaced.push(`${name}.toJSON`)
      delete proto.toJSON
    }
  }
  return replaced
}

module.exports = { restore }
