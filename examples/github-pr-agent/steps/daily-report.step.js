// daily-report.step.js: the tutorial's daily report, with the read-and-reset made atomic: the counters are
// swapped for zeros only if nobody changed them since they were read (state.update's `expect`), so a PR
// counted while the report runs is in this report or the next, never lost.
const ZERO = { prsOpened: 0, reviewsCompleted: 0, prsMerged: 0 }

export default {
  schedule: '0 9 * * *',
  handler: async function(event) {
    const yesterday = new Date();
    yesterday.setDate(yesterday.getDate() - 1);

    for (;;) {
      const current = await event.state.get('daily-stats')
      try {
        await event.state.update('daily-stats', [{ op: 'expect', value: current }, { op: 'set', value: ZERO }])
      } catch (error) {
        if (error.name === 'StateConflict') continue
        throw error
      }
      await event.emit('report-generated', { date: yesterday.toISOString(), stats: { ...ZERO, ...current } })
      return
    }
  }
};
