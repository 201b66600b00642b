// Not a sample: what the test reads (helper calls, observed events, state, streams) and sets up.
exports.config = { type: 'api', name: 'Probe', path: '/probe', method: 'POST', emits: [] }

exports.handler = async (req, ctx) => {
  const { set, topic, stream, trace, key } = req.body || {}
  if (set) for (const [k, v] of Object.entries(set)) await ctx.state.set('default', k, v)
  return {
    status: 200,
    body: {
      calls: globalThis.__tutorialCalls,
      observed: topic ? (await ctx.state.get('observed', topic)) || [] : null,
      stream: stream ? await ctx.streams[stream].getGroup(trace) : null,
      value: key ? await ctx.state.get('default', key) : null,
    },
  }
}
