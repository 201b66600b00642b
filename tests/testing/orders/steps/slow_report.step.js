// An API step that keeps working for a while before it answers: waitIdle / wait_idle wait for it too.
exports.config = { type: 'api', name: 'SlowReport', path: '/reports/:id', method: 'POST', emits: [] }

exports.handler = async (req, { state, logger }) => {
  logger.info('report started', { id: req.pathParams.id })
  await new Promise((resolve) => setTimeout(resolve, 800))
  await state.set('reports', req.pathParams.id, 'done')
  return { status: 201, body: { id: req.pathParams.id } }
}
