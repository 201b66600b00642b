'use strict'
// TypeScript and ESM-syntax JavaScript without a build step: require hooks that run sucrase.
//
// Sucrase strips types with TypeScript's semantics (an import used only as a type disappears, so
// `import { ApiRouteConfig } from 'motia'` needs no `motia` package) and turns ES module syntax into
// CommonJS. It keeps line numbers, so stack traces point at the user's lines without source maps.

const fs = require('fs')
const Module = require('module')
const path = require('path')
const { RUNNER_DIR } = require('./errors')

const TS_TRANSFORMS = ['typescript', 'imports']
const JS_TRANSFORMS = ['imports']

// An import or export statement at the start of a line. A false positive only costs a transform
// (sucrase leaves CommonJS code alone apart from adding "use strict").
const ESM_SYNTAX = /^[ \t]*(?:import[\s{*'"\w$]|export[\s{*])/m

function stripBom(source) {
  return source.charCodeAt(0) === 0xfeff ? source.slice(1) : source
}

/** A sucrase parse error as the SyntaxError Node itself would show: file, line, caret, message. */
function syntaxError(error, source, filename) {
  let message = String(error.message)
  const prefix = `Error transforming ${filename}: `
  if (message.startsWith(prefix)) message = message.slice(prefix.length)
  const loc = error.loc
  if (!loc) return new SyntaxError(`${message} in ${filename}`)
  message = message.replace(/ \(\d+:\d+\)$/, '')
  const where = `${filename}:${loc.line}:${loc.column}`
  const err = new SyntaxError(`${message} (${where})`)
  const text = source.split('\n')[loc.line - 1] || ''
  const caret = ' '.repeat(Math.max(0, loc.column - 1)) + '^'
  err.stack = `${filename}:${loc.line}\n${text}\n${caret}\n\nSyntaxError: ${err.message}`
  return err
}

// required on first use: it is most of the runner's start-up time, and a JS-only project may not need it
let sucrase = null

function transpile(source, filename, transforms) {
  if (sucrase === null) sucrase = require('sucrase')
  try {
    return sucrase.transform(source, { transforms, filePath: filename, disableESTransforms: true }).code
  } catch (error) {
    throw syntaxError(error, source, filename)
  }
}

/** The user's own code, as opposed to installed packages and the runner itself. */
function isUserFile(filename) {
  return !filename.includes(`${path.sep}node_modules${path.sep}`) && !filename.startsWith(RUNNER_DIR)
}

function compileTs(module, filename) {
  const source = stripBom(fs.readFileSync(filename, 'utf8'))
  module._compile(transpile(source, filename, TS_TRANSFORMS), filename)
}

let installed = false

function install() {
  if (installed) return
  installed = true
  for (const ext of ['.ts', '.mts', '.cts']) Module._extensions[ext] = compileTs
  const compileJs = Module._extensions['.js']
  Module._extensions['.js'] = function (module, filename) {
    if (!isUserFile(filename)) return compileJs.call(this, module, filename)
    const source = stripBom(fs.readFileSync(filename, 'utf8'))
    module._compile(ESM_SYNTAX.test(source) ? transpile(source, filename, JS_TRANSFORMS) : source, filename)
  }
}

module.exports = { install, transpile, isUserFile }
