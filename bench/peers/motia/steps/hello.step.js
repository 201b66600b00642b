exports.config = { type: 'api', name: 'HelloJs', path: '/js', method: 'POST', emits: [] }
exports.handler = async (req) => ({ status: 200, body: { hello: req.body.name } })
