# POST /hello {"name": "Ada"}: answers at once, and hands the name to the Remember step.
def config
  {
    type: 'api',
    name: 'SayHello',
    path: '/hello',
    method: 'POST',
    emits: ['hello.said'],
    bodySchema: {
      type: 'object',
      properties: { name: { type: 'string', minLength: 1 } },
      required: ['name']
    }
  }
end

def handler(req, context)
  name = req.body['name']
  context.logger.info('hello', { name: name })
  context.emit({ topic: 'hello.said', data: { name: name } })
  { status: 200, body: { greeting: "Hello, #{name}!" } }
end
