import { ApiRouteConfig, Handlers } from 'motia'
import { z } from 'zod'

// POST /hello {"name": "Ada"} starts the flow: TypeScript → Python → Ruby.
export const config: ApiRouteConfig = {
  type: 'api',
  name: 'SayHello',
  description: 'Ask for a greeting; it is made by a Python step and archived by a Ruby step',
  path: '/hello',
  method: 'POST',
  flows: ['hello'],
  emits: ['greeting.requested'],
  bodySchema: z.object({ name: z.string().min(1) }),
  responseSchema: {
    202: z.object({ requestId: z.string(), traceId: z.string() }),
  },
}

export const handler: Handlers['SayHello'] = async (req, { emit, logger, traceId }) => {
  const requestId = Math.random().toString(36).slice(2, 10)
  logger.info('greeting requested', { name: req.body.name, requestId })
  await emit({ topic: 'greeting.requested', data: { name: req.body.name, requestId } })
  return { status: 202, body: { requestId, traceId } }
}
