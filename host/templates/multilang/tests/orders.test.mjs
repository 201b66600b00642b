// Run with `npm test` (node:test). The integration test starts `steppe dev` on this project.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import { createMockContext, createTester } from 'steppe-testing'
import { handler as dailyReport } from '../steps/daily_report.step.js'

const tester = createTester({ root: fileURLToPath(new URL('..', import.meta.url)) })
after(() => tester.close())

test('an order goes TypeScript → Python → Ruby', async () => {
  const r = await tester.callApi('/orders', { item: 'tea', qty: 2 })
  assert.equal(r.status, 202)
  await tester.waitIdle()
  const topics = (await tester.emittedEvents({ traceId: r.headers['x-trace-id'] })).map((e) => e.topic)
  assert.deepEqual(topics, ['order.placed', 'order.priced'])
  const order = await tester.getState('orders', r.body.id)
  assert.equal(order.total, 7)
  assert.equal(order.status, 'shipped')
  const shown = await tester.getStream('orders', 'all', r.body.id) // what the Ruby step put in the stream
  assert.deepEqual(shown, { id: r.body.id, item: 'tea', qty: 2, total: 7, status: 'shipped' })
})

test('a quantity of 0 is refused', async () => {
  assert.equal((await tester.callApi('/orders', { item: 'tea', qty: 0 })).status, 400)
})

test('unit: the daily report counts shipped orders', async () => {
  const ctx = createMockContext({ state: { orders: { a: { status: 'shipped' }, b: { status: 'placed' } } } })
  await dailyReport(ctx)
  assert.equal(ctx.state.toJSON().reports.shipped, 1)
})
