// Drives a real headless Chromium (Debian's, never a downloaded one) through the live-progress example page:
// open it, click Start, wait for the bar to reach 100 % and the result to appear, save a screenshot, and
// print one JSON line describing what the page showed. Used by tests/streams/test_browser.py.
//
//   node tests/js/browser_check.mjs --url http://127.0.0.1:3000/ --screenshot test-artifacts/live-progress.png
//     [--items 20] [--timeout 30000] [--chromium /usr/bin/chromium]
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1'
const { chromium } = await import('playwright-core')

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    screenshot: { type: 'string' },
    items: { type: 'string', default: '20' },
    timeout: { type: 'string', default: '30000' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
  },
})
if (!opts.url || !opts.screenshot) {
  console.error('usage: browser_check.mjs --url URL --screenshot PATH [--items N] [--timeout MS]')
  process.exit(64)
}
const timeout = Number(opts.timeout)
const screenshot = resolve(opts.screenshot)

// never hang a test run: the whole check has a hard deadline
const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: `browser check still running after ${timeout * 2} ms` }))
  process.exit(3)
}, timeout * 2)

const report = { ok: false, consoleErrors: [], pageErrors: [], failedRequests: [] }
const userDataDir = mkdtempSync(join(tmpdir(), 'steppe-chromium-'))
let context
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 900, height: 560 },
    timeout,
  })
  report.browser = context.browser()?.version() ?? null
  const page = context.pages()[0] ?? await context.newPage()
  page.setDefaultTimeout(timeout)
  page.on('console', (msg) => { if (msg.type() === 'error') report.consoleErrors.push(msg.text()) })
  page.on('pageerror', (err) => report.pageErrors.push(String(err)))
  page.on('requestfailed', (req) => report.failedRequests.push(`${req.url()}: ${req.failure()?.errorText}`))
  page.on('response', (res) => { if (res.status() >= 400) report.failedRequests.push(`${res.url()}: ${res.status()}`) })

  const response = await page.goto(opts.url, { waitUntil: 'load' })
  report.pageStatus = response?.status() ?? null
  report.title = await page.title()
  report.initial = await page.locator('#bar').getAttribute('aria-valuenow')

  // record every value the bar shows, as the page updates it
  await page.evaluate(() => {
    const bar = document.getElementById('bar')
    window.__barValues = [bar.getAttribute('aria-valuenow')]
    new MutationObserver(() => {
      const value = bar.getAttribute('aria-valuenow')
      if (window.__barValues[window.__barValues.length - 1] !== value) window.__barValues.push(value)
    }).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] })
  })

  await page.fill('#items', opts.items)
  const started = Date.now()
  await page.click('#start')
  // best effort, for people looking at the artifacts: the bar on its way (not checked)
  const midway = screenshot.replace(/(\.png)?$/, '-midway.png')
  try {
    await page.waitForFunction(() => {
      const value = Number(document.getElementById('bar').getAttribute('aria-valuenow'))
      return value >= 40 && value < 100
    }, null, { timeout: 5000, polling: 'raf' })
    mkdirSync(dirname(midway), { recursive: true })
    await page.screenshot({ path: midway })
    report.midwayScreenshot = midway
  } catch {
    report.midwayScreenshot = null
  }
  await page.waitForSelector('#bar[aria-valuenow="100"]')
  report.barMs = Date.now() - started
  await page.waitForFunction(() => document.getElementById('result').textContent.trim() !== '')
  report.resultMs = Date.now() - started

  report.values = (await page.evaluate(() => window.__barValues)).map(Number)
  report.bar = await page.locator('#bar').evaluate((el) => ({
    valuenow: el.getAttribute('aria-valuenow'),
    text: el.textContent.trim(),
    width: el.style.width,
    visibleWidth: el.getBoundingClientRect().width,
    trackWidth: el.parentElement.getBoundingClientRect().width,
  }))
  report.result = (await page.locator('#result').textContent()).trim()
  report.resultStatus = await page.locator('#result').getAttribute('data-status')
  report.status = (await page.locator('#status').textContent()).trim()
  report.startEnabled = await page.locator('#start').isEnabled()

  mkdirSync(dirname(screenshot), { recursive: true })
  await page.screenshot({ path: screenshot, fullPage: true })
  report.screenshot = screenshot
  report.ok = true
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error)
} finally {
  if (context) await context.close().catch(() => {})
  rmSync(userDataDir, { recursive: true, force: true })
  clearTimeout(watchdog)
}
console.log(JSON.stringify(report))
process.exit(report.ok ? 0 : 1)
