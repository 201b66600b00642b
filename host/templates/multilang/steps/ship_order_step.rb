# Ruby event step: marks the priced order as shipped, in state and in the `orders` stream.
def config
  {
    type: 'event', name: 'ShipOrder', flows: ['orders'], subscribes: ['order.priced'], emits: [],
    input: {
      type: 'object',
      properties: { id: { type: 'string' }, total: { type: 'number' } },
      required: %w[id total]
    }
  }
end

def handler(input, context)
  order = context.state.get('orders', input['id'])
  context.state.set('orders', input['id'], order.merge('status' => 'shipped'))
  context.streams.orders.set('all', input['id'], { item: order['item'], qty: order['qty'], total: input['total'],
                                                   status: 'shipped' })
end
