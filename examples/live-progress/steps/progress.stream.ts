// The `progress` stream: one group per job, with the item "progress" ({done, total, percent}) that the
// Node step updates as it goes, and the item "result" ({status, summary}) that the Ruby step writes.
export const config = {
  name: 'progress',
  schema: {
    type: 'object',
    properties: {
      done: { type: 'integer' },
      total: { type: 'integer' },
      percent: { type: 'integer' },
      status: { type: 'string' },
      summary: { type: 'string' },
    },
  },
}
