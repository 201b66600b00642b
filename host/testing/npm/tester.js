'use strict'
// A real host for integration tests: `steppe dev` on the project as a child process, with memory stores,
// on a free port, driven over HTTP and its admin API (/__steppe/...). Started on first use, shared by
// every test that uses the same tester, stopped by close() (or when the test process exits).

const { spawn } = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** The command that runs steppe: STEPPE_COMMAND (e.g. "python -m steppe.cli"), else `steppe` on PATH. */
function steppeCommand() {
  const configured = (process.env.STEPPE_COMMAND || '').trim()
  return configured ? configured.split(/\s+/) : ['steppe']
}

class SteppeTester {
  constructor(options = {}) {
    this.root = path.resolve(options.root || process.cwd())
    this.env = options.env || {}
    this.startTimeout = options.startTimeout || 60000
    this.port = options.port
    this.url = null
    this.child = null
    this.started = null
    const token = process.env.STEPPE_ADMIN_TOKEN || this.env.STEPPE_ADMIN_TOKEN
    this.adminHeaders = token ? { authorization: `Bearer ${token}` } : {}
  }

  /** Starts the host (once); every other method calls it first. */
  start() {
    if (!this.started) this.started = this._start()
    return this.started
  }

  async _start() {
    this.port = this.port || await freePort()
    this.url = `http://127.0.0.1:${this.port}`
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'steppe-test-'))
    this.outputPath = path.join(this.tmp, 'host.log')
    const out = fs.openSync(this.outputPath, 'w')
    const [command, ...args] = steppeCommand()
    const env = { ...process.env, STEPPE_BUS: 'memory', STEPPE_STATE: 'memory', STEPPE_STREAMS: 'memory',
      STEPPE_DATA_DIR: path.join(this.tmp, 'data'), STEPPE_PARENT_PID: String(process.pid), ...this.env }
    this.child = spawn(command, [...args, 'dev', '--root', this.root, '--port', String(this.port)],
      { env, stdio: ['ignore', out, out] })
    fs.closeSync(out)
    this.child.unref() // the test process may end without waiting for it: the exit hook stops it
    const child = this.child
    let failed = null
    child.on('error', (error) => { failed = error })
    this._onExit = () => { if (child.exitCode === null) child.kill('SIGTERM') }
    process.once('exit', this._onExit)
    const deadline = Date.now() + this.startTimeout
    while (Date.now() < deadline) {
      if (failed) throw new Error(`could not run ${command} (set STEPPE_COMMAND or put steppe on PATH): ${failed.message}`)
      if (child.exitCode !== null) throw new Error(`steppe dev exited with ${child.exitCode}:\n${this.output()}`)
      try {
        const r = await fetch(`${this.url}/__steppe/health`, { headers: this.adminHeaders })
        if (r.ok) return this
      } catch { /* not listening yet */ }
      await sleep(50)
    }
    await this.close()
    throw new Error(`steppe dev did not answer within ${this.startTimeout} ms:\n${this.output()}`)
  }

  /** Stops the host and removes its temporary data. */
  async close() {
    const child = this.child
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000)
      await exited
      clearTimeout(timer)
    }
    if (this._onExit) process.removeListener('exit', this._onExit)
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true })
    this.child = null
    this.started = null
    this.tmp = null
  }

  /** What the host printed so far. */
  output() {
    try {
      return fs.readFileSync(this.outputPath, 'utf8')
    } catch {
      return ''
    }
  }

  async _admin(method, route, body) {
    await this.start()
    const r = await fetch(this.url + route, {
      method,
      headers: { ...this.adminHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    return { status: r.status, body: await r.json() }
  }

  /**
   * An HTTP request to a step route: POST with a JSON body when `body` is given, else GET.
   * Resolves to {status, headers, body} (body parsed as JSON when it is JSON).
   */
  async callApi(route, body, options = {}) {
    await this.start()
    const method = options.method || (body === undefined ? 'GET' : 'POST')
    const query = options.query ? `?${new URLSearchParams(options.query)}` : ''
    const r = await fetch(this.url + route + query, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(options.headers || {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await r.text()
    let parsed = text
    try {
      parsed = JSON.parse(text)
    } catch { /* not JSON: the text */ }
    return { status: r.status, headers: Object.fromEntries(r.headers), body: parsed }
  }

  /** Emits an event as `steppe emit` does; resolves to {id, traceId, deliveries, duplicate}. */
  async emit(topic, data = null, options = {}) {
    const r = await this._admin('POST', '/__steppe/emit', { topic, data, ...(options.id ? { id: options.id } : {}) })
    if (r.status !== 202) throw new Error(`emit ${topic} refused (${r.status}): ${JSON.stringify(r.body)}`)
    return r.body
  }

  /**
   * Resolves once no delivery is queued or running and no handler runs in any runner (an API call or a
   * cron tick too), seen twice in a row; rejects after `timeout` ms.
   */
  async waitIdle(timeout = 10000) {
    const deadline = Date.now() + timeout
    let quiet = 0
    let last = null
    while (Date.now() < deadline) {
      const { queue, runners } = (await this._admin('GET', '/__steppe/runners')).body // counts and invocations
      const inFlight = Object.values(runners).reduce((sum, runner) => sum + runner.inFlight, 0)
      last = { queue, inFlight }
      quiet = queue.ready === 0 && queue.leased === 0 && !inFlight ? quiet + 1 : 0
      if (quiet >= 2) return
      await sleep(30)
    }
    throw new Error(`the host still had work after ${timeout} ms: ${JSON.stringify(last)}`)
  }

  /** Emitted events, oldest first: {id, topic, data, traceId, emittedBy, deliveries, time}. */
  async emittedEvents(filter = {}) {
    const query = new URLSearchParams({ limit: '2000' })
    if (filter.topic) query.set('topic', filter.topic)
    if (filter.traceId) query.set('traceId', filter.traceId)
    return (await this._admin('GET', `/__steppe/emitted?${query}`)).body
  }

  /** The topics emitted so far (Motia's getEmittedEvents), after waiting for work to settle. */
  async getEmittedEvents() {
    await this.waitIdle()
    return (await this.emittedEvents()).map((e) => e.topic)
  }

  /**
   * getState(group, key): one value (null when absent); getState(group) with no key: the group's values
   * when that group exists, else the value stored under that key in any group (the one-key shape).
   */
  async getState(group, key) {
    if (key !== undefined) {
      const r = await this._admin('GET', `/__steppe/state/${encodeURIComponent(group)}/${encodeURIComponent(key)}`)
      return r.status === 200 ? r.body.value : null
    }
    const { groups } = (await this._admin('GET', '/__steppe/state')).body
    if (groups.includes(group)) return (await this._admin('GET', `/__steppe/state/${encodeURIComponent(group)}`)).body.values
    for (const g of groups) {
      const found = await this.getState(g, group)
      if (found !== null) return found
    }
    return null
  }

  /** getStream(stream, group, id): one item (null when absent); without id: every item of the group. */
  async getStream(stream, group, id) {
    const base = `/__steppe/streams/${encodeURIComponent(stream)}/${encodeURIComponent(group)}`
    if (id === undefined) {
      const r = await this._admin('GET', base)
      if (r.status !== 200) throw new Error(r.body.error)
      return r.body.items
    }
    const r = await this._admin('GET', `${base}/${encodeURIComponent(id)}`)
    if (r.status === 200) return r.body.item
    if (r.status === 404 && /^no item/.test(r.body.error)) return null
    throw new Error(r.body.error)
  }

  /** The host's log records: {time, level, msg, source, step?, traceId?, fields?}. */
  async logs(filter = {}) {
    const query = new URLSearchParams({ limit: '2000' })
    if (filter.step) query.set('step', filter.step)
    if (filter.traceId) query.set('traceId', filter.traceId)
    return (await this._admin('GET', `/__steppe/logs?${query}`)).body
  }
}

/**
 * Stops the tester's host when the test framework says it is done with it: created inside a test, when
 * that test finishes (vitest's onTestFinished); created at the top of a file, after the file's tests
 * (afterAll). Both exist only with the framework's globals; returns whether one was registered.
 */
function closeWithFramework(tester) {
  const hooks = [globalThis.onTestFinished, globalThis.afterAll].filter((hook) => typeof hook === 'function')
  for (const hook of hooks) {
    try {
      hook(() => tester.close())
      return true
    } catch {
      // onTestFinished outside a running test throws: try the next hook
    }
  }
  return false
}

/**
 * createTester({root, env, port, startTimeout}). Under vitest/jest with globals, the host is stopped
 * after the test (or file) that created it; otherwise call `await tester.close()`. A host whose test
 * process is gone stops itself in any case (STEPPE_PARENT_PID).
 */
function createTester(options = {}) {
  const tester = new SteppeTester(options)
  closeWithFramework(tester)
  return tester
}

/** Motia's name and method spellings: callAPI, getEmittedEvents, getState. */
function createMotiaTester(options = {}) {
  const tester = createTester(options)
  tester.callAPI = tester.callApi
  return tester
}

module.exports = { SteppeTester, createTester, createMotiaTester }
