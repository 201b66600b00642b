// Not a sample: batch-processor.step.js made safe under concurrent deliveries with state.update.
// Appending is atomic; taking the batch is a compare-and-set that retries when another delivery won.
export default async function atomicBatch(event) {
  let pending = await event.state.update('atomic-pending', [{ op: 'append', value: event.data }])
  while (pending.length >= 100) {
    try {
      await event.state.update('atomic-pending', [{ op: 'expect', value: pending }, { op: 'set', value: [] }])
    } catch (error) {
      if (error.name !== 'StateConflict') throw error
      pending = await event.state.get('atomic-pending')
      continue
    }
    await processBatch(pending)
    await event.emit('atomic-batch-processed', { itemCount: pending.length })
    return
  }
}
