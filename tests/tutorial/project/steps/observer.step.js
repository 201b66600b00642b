// Not a sample: records every event the samples emit, per topic, for the test to read.
exports.config = {
  type: 'event',
  name: 'Observer',
  subscribes: [
    'pr-opened', 'review-completed', 'email-received', 'spam-detected', 'high-priority', 'processing-complete',
    'processing-failed', 'batch-processed', 'order-paid', 'order-shipped', 'order-delivered', 'cleanup-completed',
    'report-generated', 'metrics-collected', 'atomic-batch-processed', 'atomic-order-moved',
  ],
  emits: [],
}

exports.handler = async (data, ctx) => {
  await ctx.state.update('observed', ctx.topic, [{ op: 'append', value: data }])
}
