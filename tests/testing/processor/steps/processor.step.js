// The step the tutorial's processor.test.js describes (its printed processor.step.js emits another topic
// and returns nothing, so that test cannot pass against it): the one-argument dialect, as a project
// would write it to satisfy the test.
export default async function processor(event) {
  const { data } = event
  const seen = await event.state.get(`processed:${data.id}`)
  await event.state.set(`processed:${data.id}`, { value: data.value, before: seen ?? null })
  await event.emit('data-processed', { id: data.id })
  return { processed: true }
}
