// Compiled with `tsc --noEmit --strict` against the generated types.d.ts: the correct uses compile, and
// each @ts-expect-error line must be an error (so no type there is `any`).
import type { Handlers } from './types'

export const submit: Handlers['SubmitShape'] = async (req, ctx) => {
  const kind: 'circle' | 'square' = req.body.kind
  const label: string | null = req.body.label
  const meta: Record<string, number> = req.body.meta
  const flag: boolean = req.body.nested.deep.flag
  const either: string | number = req.body.either
  // @ts-expect-error kind is an enum
  const wrongKind: 'triangle' = req.body.kind
  // @ts-expect-error label may be null
  const notNull: string = req.body.label
  await ctx.emit({ topic: 'shapes.sent', data: { id: 'a', kind, size: 1, tags: [], owner: { name: 'x' }, shape: { r: 1 } } })
  // @ts-expect-error a topic this step does not emit
  await ctx.emit({ topic: 'shapes.done', data: { id: 'a' } })
  // @ts-expect-error the data of shapes.sent needs its required fields
  await ctx.emit({ topic: 'shapes.sent', data: { id: 'a' } })
  void [label, meta, flag, either, wrongKind, notNull]
  if (kind === 'circle') return { status: 404, body: { error: 'no' } }
  return { status: 202, body: { id: req.body.id } }
}

// @ts-expect-error 202 answers {id}, not {error}
export const badAnswer: Handlers['SubmitShape'] = async () => ({ status: 202, body: { error: 'x' } })

export const shapes: Handlers['Shapes'] = async (input, ctx) => {
  const size: number = input.size
  const ratio: number | null | undefined = input.ratio
  const radius: number = 'r' in input.shape ? input.shape.r : input.shape.side
  const point: [number, number] | undefined = input.point
  const child: string | undefined = input.children?.[0]?.id
  const mode: 'fast' | undefined = input.mode
  // @ts-expect-error tags are strings
  const tag: number = input.tags[0]
  // @ts-expect-error owner.name is a string
  const owner: number = input.owner.name
  await ctx.emit({ topic: 'shapes.done', data: { id: input.id } })
  // @ts-expect-error shapes.done data has a string id
  await ctx.emit({ topic: 'shapes.done', data: { id: 1 } })
  const item = await ctx.streams.items.get('all', 'x')
  const title: string | undefined = item?.title
  void [size, ratio, radius, point, child, mode, tag, owner, title]
}

export const tick: Handlers['Tick'] = async (ctx) => {
  await ctx.emit({ topic: 'anything', data: 1 }) // no emits declared: any topic
}

export const invoice: Handlers['MakeInvoice'] = async (input) => {
  const status: 'draft' | 'sent' = input.status
  const qty: number = input.lines[0].qty
  const discount: number | null | undefined = input.discount
  const extra: Record<string, string> | undefined = input.extra
  // @ts-expect-error sku is a string
  const sku: number = input.lines[0].sku
  void [status, qty, discount, extra, sku]
}
