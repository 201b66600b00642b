// S10's Motia peer: the JS API step of bench/projects.py (api_step("js")), the same file Steppe runs
exports.config = { type: 'api', name: 'HelloJs', path: '/js', method: 'POST', emits: [] }
exports.handler = async (req) => ({ status: 200, body: { hello: req.body.name, v: 0 } })
