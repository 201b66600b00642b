import { z } from 'zod'
import type { Handlers } from '../types'

// TypeScript API step: POST /orders {"item": "tea", "qty": 2} → order.placed (priced by Python).
// `Handlers` comes from types.d.ts, written by `steppe generate types` (steppe dev keeps it up to date).
export const config = {
  type: 'api',
  name: 'PlaceOrder',
  path: '/orders',
  method: 'POST',
  flows: ['orders'],
  emits: ['order.placed'],
  bodySchema: z.object({ item: z.string().min(1), qty: z.number().int().min(1) }),
}

export const handler: Handlers['PlaceOrder'] = async (req, { emit, streams }) => {
  const id = Math.random().toString(36).slice(2, 10)
  await streams.orders.set('all', id, { item: req.body.item, qty: req.body.qty, status: 'placed' })
  await emit({ topic: 'order.placed', data: { id, ...req.body } })
  return { status: 202, body: { id } }
}
