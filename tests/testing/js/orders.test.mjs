// steppe-testing under node:test, against tests/testing/orders (a Node API step → Python → Node).
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createMockContext, createMockEvent, createTester } from 'steppe-testing'

const tester = createTester({ root: process.env.ORDERS_ROOT })
after(() => tester.close())

test('mock context records emits, state and logs of a handler', async () => {
  const { handler } = await import(`${process.env.ORDERS_ROOT}/steps/place_order.step.js`)
  const ctx = createMockContext()
  const answer = await handler({ body: { item: 'tea', qty: 3 } }, ctx)
  assert.deepEqual(answer, { status: 202, body: { id: 'o-tea-3' } })
  assert.deepEqual(ctx.emitted, [{ topic: 'order.placed', data: { id: 'o-tea-3', item: 'tea', qty: 3 } }])
  assert.deepEqual(ctx.logger.records, [{ level: 'info', msg: 'order placed', fields: { id: 'o-tea-3' } }])
  await ctx.state.set('g', 'k', 1)
  assert.equal(await ctx.state.get('g', 'k'), 1)
  assert.deepEqual(ctx.state.toJSON(), { g: { k: 1 } })
  assert.deepEqual(await ctx.streams.todos.set('inbox', 'a', { title: 'x' }), { title: 'x', id: 'a' })
  assert.deepEqual(ctx.calls.map((c) => c.name), ['emit', 'state.set', 'state.get', 'streams.todos.set'])
  await assert.rejects(ctx.emit('no object'), TypeError)
})

test('mock context refuses what a real run refuses', async () => {
  // Seen: a unit test passed for a handler that emitted a topic missing from its config.emits, stored a
  // BigInt and sent messageGroupId: ['a']; in a real run each call rejected in the handler.
  const { config, handler } = await import(`${process.env.ORDERS_ROOT}/steps/place_order.step.js`)
  const ctx = createMockContext({ config: { ...config, emits: ['order.accepted'] } })
  await assert.rejects(handler({ body: { item: 'tea', qty: 3 } }, ctx), (e) =>
    e.name === 'UndeclaredTopic' && e.type === 'UndeclaredTopic' &&
    e.message === "step 'PlaceOrder' emitted topic 'order.placed', which is not in its config.emits " +
      "['order.accepted']; the event was not sent") // the host's words
  await assert.rejects(ctx.emit({ topic: 'order.accepted', data: 1, messageGroupId: ['a'] }),
    (e) => e.type === 'InvalidParams' && /messageGroupId must be a string/.test(e.message))
  await assert.rejects(ctx.state.update('g', 'n', [{ op: 'increment' }]), /state.update is not mocked/)
  await assert.rejects(ctx.state.set('g', 'big', 10n), TypeError)
  await assert.rejects(ctx.emit({ topic: 'order.accepted', data: { n: 10n } }), TypeError)
  assert.deepEqual(ctx.emitted, [])
  // what is kept is what the host would keep: JSON
  await ctx.state.set('g', 'when', new Date(Date.UTC(2026, 10, 29)))
  assert.deepEqual(ctx.state.toJSON(), { g: { when: '2026-11-29T00:00:00.000Z' } })
  await ctx.emit({ topic: 'order.accepted', data: { skip: undefined, n: 1 }, messageGroupId: 7 })
  assert.deepEqual(ctx.emitted, [{ topic: 'order.accepted', data: { n: 1 }, messageGroupId: 7 }])
})

test('mock event: the one-argument shape', async () => {
  const event = createMockEvent({ data: { id: 1 } })
  await event.emit('data-processed', { id: event.data.id })
  await event.state.set('k', 'v')
  assert.deepEqual(event.emitted, [{ topic: 'data-processed', data: { id: 1 } }])
  assert.equal(await event.state.get('k'), 'v')
})

test('callApi, emittedEvents, getState and logs against a real host', async () => {
  const r = await tester.callApi('/orders', { item: 'tea', qty: 2 })
  assert.equal(r.status, 202)
  assert.deepEqual(r.body, { id: 'o-tea-2' })
  await tester.waitIdle()
  const events = await tester.emittedEvents({ traceId: r.headers['x-trace-id'] })
  assert.deepEqual(events.map((e) => [e.topic, e.emittedBy]), [['order.placed', 'PlaceOrder'], ['order.stored', 'StoreOrder']])
  assert.deepEqual(await tester.getState('orders', 'o-tea-2'), { id: 'o-tea-2', item: 'tea', qty: 2, stored: true })
  assert.equal(await tester.getState('orders', 'missing'), null)
  assert.ok((await tester.getState('orders')).some((o) => o.id === 'o-tea-2')) // a group: its values
  const logs = await tester.logs({ step: 'StoreOrder' })
  assert.ok(logs.some((l) => l.msg === 'order stored'))
  assert.equal((await tester.callApi('/orders', { item: 'tea', qty: 0 })).status, 400)
})

test('emit + waitIdle: every hop has run', async () => {
  for (let n = 0; n < 5; n++) await tester.emit('order.placed', { id: `js-${n}`, item: 'cake', qty: 1 })
  await tester.waitIdle()
  for (let n = 0; n < 5; n++) assert.equal(await tester.getState('counted', `js-${n}`), true)
  assert.ok((await tester.getEmittedEvents()).includes('order.stored'))
})

test('waitIdle waits for a handler still running', async () => {
  // seen: waitIdle read an in-flight count the host no longer sends, so a running API call counted as idle
  const call = tester.callApi('/reports/js1', {})
  const deadline = Date.now() + 10000
  while (!(await tester.logs({ step: 'SlowReport' })).some((l) => l.fields?.id === 'js1')) {
    assert.ok(Date.now() < deadline, 'the slow handler started')
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  await tester.waitIdle()
  assert.equal(await tester.getState('reports', 'js1'), 'done')
  assert.equal((await call).status, 201)
})
