'use strict'
// Which step files run as real ES modules, and importing them.
//
// A file is an ES module when its extension says so (.mjs, .mts), when the nearest package.json has
// "type": "module" (as under tsx or Node itself), or when it uses what only an ES module can:
// `import.meta`, or `await` at the top level (at the start of a line); and a project's motia.config. Everything else takes the faster
// CommonJS path of lib/transpile.js (.cjs and .cts always do).

const fs = require('fs')
const path = require('path')
const { pathToFileURL } = require('url')

const IMPORT_META = /\bimport\.meta\b/
const TOP_LEVEL_AWAIT = /^(?:export\s+)?(?:(?:const|let|var)\s+[^\n=]+=\s*)?await[\s(]|^for\s+await\b/m

let hooksRegistered = false
let importVersion = 0

// A Node without module.register gets the hooks on its command line, with --no-warnings so that its
// "Custom ESM Loaders is an experimental feature" at start does not read like a problem in the log
// (host/runners/registry.py); every later warning is printed as Node would have.
if (process.execArgv.includes('--experimental-loader') && process.execArgv.includes('--no-warnings')) {
  process.on('warning', (w) => {
    process.stderr.write(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ''}${w.name}: ${w.message}\n`)
  })
}

/** Whether `file` (of package type `packageType`) is loaded as an ES module. */
function isEsm(file, packageType) {
  const ext = path.extname(file)
  if (ext === '.mjs' || ext === '.mts') return true
  if (ext === '.cjs' || ext === '.cts') return false
  if (!['.js', '.ts', '.jsx', '.tsx'].includes(ext)) return false
  // motia.config.* too: lib/esm_hooks.mjs stands in for the Workbench-only packages it may import
  if (packageType === 'module' || /^motia\.config\./.test(path.basename(file))) return true
  let source
  try {
    source = fs.readFileSync(file, 'utf8')
  } catch {
    return false
  }
  return IMPORT_META.test(source) || TOP_LEVEL_AWAIT.test(source)
}

function registerHooks() {
  if (hooksRegistered) return
  hooksRegistered = true
  const { register } = require('module')
  // a Node without module.register (< 18.19) was started with --experimental-loader esm_hooks.mjs instead
  // (host/runners/registry.py)
  if (typeof register === 'function') register(pathToFileURL(path.join(__dirname, 'esm_hooks.mjs')).href)
}

/**
 * A promise of `file`'s module namespace, evaluated anew: a new URL query is a new module instance (ES
 * modules cannot be evicted from Node's cache, so each reload's old copy stays in memory). The modules
 * it imports keep their plain URLs, so steps share them (and their state), as in the CommonJS path; an
 * edit to one of them restarts the runner (host/reload.py).
 */
function importFresh(file) {
  registerHooks()
  return import(`${pathToFileURL(file).href}?steppe-load=${++importVersion}`)
}

module.exports = { isEsm, importFresh }
