import { z } from 'zod'

// A TypeScript API step with a zod schema (zod 4): POST /shapes.
export const config = {
  type: 'api',
  name: 'SubmitShape',
  path: '/shapes',
  method: 'POST',
  emits: ['shapes.sent'],
  bodySchema: z.object({
    id: z.string(),
    kind: z.enum(['circle', 'square']),
    size: z.number().int(),
    label: z.string().nullable(),
    tags: z.array(z.string()),
    meta: z.record(z.string(), z.number()),
    nested: z.object({ deep: z.object({ flag: z.boolean() }) }),
    either: z.union([z.string(), z.number()]),
  }),
  responseSchema: { 202: z.object({ id: z.string() }), 404: z.object({ error: z.string() }) },
}

export const handler = async (req: any, { emit }: any) => {
  await emit({ topic: 'shapes.sent', data: req.body })
  return { status: 202, body: { id: req.body.id } }
}
