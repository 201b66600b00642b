import type { Handlers } from '../types'

// Counts how often each name was greeted (state group "greeted").
export const config = {
  type: 'event',
  name: 'Remember',
  subscribes: ['hello.said'],
  emits: [],
  input: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
}

export const handler: Handlers['Remember'] = async (input, { state }) => {
  const times = (await state.get<number>('greeted', input.name)) ?? 0
  await state.set('greeted', input.name, times + 1)
}
