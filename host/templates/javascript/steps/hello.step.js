import { z } from 'zod'

// POST /hello {"name": "Ada"}: answers at once, and hands the name to the Remember step.
export const config = {
  type: 'api',
  name: 'SayHello',
  path: '/hello',
  method: 'POST',
  emits: ['hello.said'],
  bodySchema: z.object({ name: z.string().min(1) }),
}

export const handler = async (req, { emit, logger }) => {
  logger.info('hello', { name: req.body.name })
  await emit({ topic: 'hello.said', data: { name: req.body.name } })
  return { status: 200, body: { greeting: `Hello, ${req.body.name}!` } }
}
