// JavaScript cron step: once a day (at midnight), count the shipped orders into state.
export const config = { type: 'cron', name: 'DailyReport', flows: ['orders'], cron: '0 0 * * *', emits: [] }

export const handler = async ({ state, logger }) => {
  const orders = await state.getGroup('orders')
  const shipped = orders.filter((o) => o.status === 'shipped').length
  await state.set('reports', 'shipped', shipped)
  logger.info('daily report', { shipped })
}
