// A JavaScript cron step: every 10 seconds (6 fields: the first is seconds), count the beats in state.
export const config = {
  type: 'cron',
  name: 'Heartbeat',
  description: 'Counts beats in state every 10 seconds',
  cron: '*/10 * * * * *',
  emits: [],
  flows: ['hello'],
}

export const handler = async ({ state, logger }) => {
  const beats = ((await state.get('heartbeat', 'beats')) ?? 0) + 1
  await state.set('heartbeat', 'beats', beats)
  logger.debug('beat', { beats })
}
