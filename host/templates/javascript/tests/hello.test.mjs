// Run with `npm test` (node:test). The integration test starts `steppe dev` on this project.
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, test } from 'node:test'
import { createTester } from 'steppe-testing'

const tester = createTester({ root: fileURLToPath(new URL('..', import.meta.url)) })
after(() => tester.close())

test('POST /hello greets, and the name is remembered', async () => {
  const r = await tester.callApi('/hello', { name: 'Ada' })
  assert.equal(r.status, 200)
  assert.deepEqual(r.body, { greeting: 'Hello, Ada!' })
  await tester.waitIdle()
  assert.ok((await tester.getEmittedEvents()).includes('hello.said'))
  assert.equal(await tester.getState('greeted', 'Ada'), 1)
})

test('an empty name is refused', async () => {
  assert.equal((await tester.callApi('/hello', { name: '' })).status, 400)
})

test('unit: Remember counts with a mock context', async () => {
  const { createMockContext } = await import('steppe-testing')
  const { config, handler } = await import('../steps/remember.step.js')
  const ctx = createMockContext({ state: { greeted: { Ada: 2 } }, config }) // config: emits are checked as the host does
  await handler({ name: 'Ada' }, ctx)
  assert.equal(ctx.state.toJSON().greeted.Ada, 3)
})
