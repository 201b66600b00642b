// Module hooks (module.register) for step files loaded as real ES modules: TypeScript without a build
// step, and the extensionless relative imports a bundler or tsx would accept. They run on Node's hooks
// thread; see lib/esm.js for when a file is loaded this way and how a reload gets a fresh copy.

import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const require = createRequire(import.meta.url)
const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts', '.tsx'])
// tried in order for a relative import that names no existing file (`./services/pet-store`)
const SUFFIXES = ['.ts', '.tsx', '.mts', '.js', '.mjs', '.cjs', '.json', '/index.ts', '/index.js', '/index.mjs']
const ESM_SYNTAX = /^[ \t]*(?:import[\s{*'"\w$]|export[\s{*])/m
const CJS_SYNTAX = /\bmodule\.exports\b|\bexports\.\w+\s*=|\brequire\s*\(/

let sucrase = null

// import.meta.dirname / filename (Node >= 20.11) for an older Node (nodejs-bin ships 18.4): set at the start
// of each step module, on its first line (after a #! line) so that line numbers stay as written
const META_PRELUDE = 'dirname' in import.meta ? '' :
  'import.meta.filename ??= decodeURIComponent(new URL(import.meta.url).pathname); ' +
  "import.meta.dirname ??= import.meta.filename.slice(0, import.meta.filename.lastIndexOf('/')); "

function withMeta(source) {
  if (!META_PRELUDE) return source
  const text = typeof source === 'string' ? source : Buffer.from(source).toString('utf8')
  if (!text.startsWith('#!')) return META_PRELUDE + text
  const end = text.indexOf('\n') + 1 || text.length
  return text.slice(0, end) + META_PRELUDE + text.slice(end)
}

async function resolveLoosely(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (error) {
    const relative = specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('file:')
    if (!relative || !['ERR_MODULE_NOT_FOUND', 'ERR_UNSUPPORTED_DIR_IMPORT'].includes(error.code)) throw error
    // TypeScript's own convention: `./x.js` in a .ts file names ./x.ts
    const candidates = /\.(m|c)?js$/.test(specifier)
      ? [specifier.replace(/\.(m|c)?js$/, '.$1ts'), ...SUFFIXES.map((s) => specifier + s)]
      : SUFFIXES.map((s) => specifier.replace(/\/$/, '') + s)
    for (const candidate of candidates) {
      try {
        return await nextResolve(candidate, context)
      } catch {
        // try the next spelling
      }
    }
    throw error
  }
}

// Stand-in for a Motia package (Workbench plugins, @motiadev/core's defineConfig) that a motia.config
// imports but the project does not have installed: a plugin builder that adds nothing.
const ABSENT_MOTIA_PACKAGE = 'data:text/javascript,' + encodeURIComponent(
  'export default function absentMotiaPlugin() { return { workbench: [] } }\n' +
  'export const defineConfig = (config) => config\n')

function fromMotiaConfig(parentURL) {
  return Boolean(parentURL) && /\/motia\.config\.[a-z]+(\?|$)/.test(parentURL)
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await resolveLoosely(specifier, context, nextResolve)
  } catch (error) {
    const motiaPackage = specifier.startsWith('@motiadev/') || specifier === 'motia'
    if (!motiaPackage || !fromMotiaConfig(context.parentURL) || error.code !== 'ERR_MODULE_NOT_FOUND') throw error
    return { url: ABSENT_MOTIA_PACKAGE, format: 'module', shortCircuit: true }
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:')) return nextLoad(url, context)
  const file = fileURLToPath(url)
  const ext = path.extname(file)
  if (!TS_EXTENSIONS.has(ext)) {
    const loaded = await nextLoad(url, context)
    return loaded.format === 'module' && loaded.source != null ? { ...loaded, source: withMeta(loaded.source) } : loaded
  }
  const source = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '')
  const commonjs = ext === '.cts' || (ext !== '.mts' && !ESM_SYNTAX.test(source) && CJS_SYNTAX.test(source))
  if (commonjs) return nextLoad(url, { ...context, format: 'commonjs' })
  if (sucrase === null) sucrase = require('sucrase')
  const transforms = ext === '.tsx' ? ['typescript', 'jsx'] : ['typescript']
  const code = sucrase.transform(source, { transforms, filePath: file, disableESTransforms: true }).code
  return { format: 'module', source: withMeta(code), shortCircuit: true }
}
