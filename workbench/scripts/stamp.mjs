// Records a hash of the Workbench's sources next to the build, so CI can tell when the shipped build is
// older than the sources (tests/workbench/test_build.py computes the same hash).
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const here = new URL('..', import.meta.url).pathname
const inputs = ['index.html', 'package.json', 'package-lock.json', 'vite.config.js', 'src']

function files(path) {
  if (statSync(path).isDirectory()) return readdirSync(path).sort().flatMap((name) => files(join(path, name)))
  return [path]
}

const hash = createHash('sha256')
for (const file of inputs.flatMap((name) => files(join(here, name)))) {
  hash.update(relative(here, file).split('\\').join('/'))
  hash.update('\0')
  hash.update(readFileSync(file))
  hash.update('\0')
}
const out = join(here, '..', 'host', 'static', 'workbench', 'build.json')
writeFileSync(out, JSON.stringify({ sources: hash.digest('hex') }, null, 2) + '\n')
console.log(`stamped ${relative(join(here, '..'), out)}`)
