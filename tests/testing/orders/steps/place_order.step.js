// POST /orders {"item": "tea", "qty": 2}: answers 202 with the order id and hands it to the Python step.
exports.config = {
  type: 'api',
  name: 'PlaceOrder',
  path: '/orders',
  method: 'POST',
  emits: ['order.placed'],
  bodySchema: {
    type: 'object',
    properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 } },
    required: ['item', 'qty'],
  },
}

exports.handler = async (req, { emit, logger }) => {
  const id = `o-${req.body.item}-${req.body.qty}`
  logger.info('order placed', { id })
  await emit({ topic: 'order.placed', data: { id, item: req.body.item, qty: req.body.qty } })
  return { status: 202, body: { id } }
}
