// Marks each stored order as counted (group "counted"): the last hop of the flow.
exports.config = { type: 'event', name: 'CountOrders', subscribes: ['order.stored'], emits: [] }

exports.handler = async (input, { state }) => {
  await state.set('counted', input.id, true)
}
