// Counts how often each name was greeted (state group "greeted").
export const config = { type: 'event', name: 'Remember', subscribes: ['hello.said'], emits: [] }

export const handler = async (input, { state }) => {
  const times = (await state.get('greeted', input.name)) ?? 0
  await state.set('greeted', input.name, times + 1)
}
