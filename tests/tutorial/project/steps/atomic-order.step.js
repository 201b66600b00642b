// Not a sample: state-machine.step.js made safe under concurrent deliveries: each transition is a
// compare-and-set from the state it read, retried from the new state when another delivery moved first.
const NEXT = { pending: 'paid', paid: 'shipped', shipped: 'delivered' }

export default async function atomicOrder(event) {
  const key = `order:${event.data.orderId}:state`
  for (;;) {
    const current = (await event.state.get(key)) || 'pending'
    const next = NEXT[current]
    if (!next) return
    try {
      await event.state.update(key, [{ op: 'expect', value: current === 'pending' ? null : current }, { op: 'set', value: next }])
    } catch (error) {
      if (error.name === 'StateConflict') continue
      throw error
    }
    await event.emit('atomic-order-moved', { orderId: event.data.orderId, from: current, to: next })
    return
  }
}
