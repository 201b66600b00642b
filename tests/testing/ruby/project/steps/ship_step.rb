# frozen_string_literal: true

# Ships an order: stores it, shows it in the `shipments` stream, logs, and emits `order.shipped`. Run by the
# mock (tests/testing/ruby/mock_test.rb) and by a real host (tests/testing/test_ruby_helpers.py), which must
# agree. The input can make the emit one a real run refuses: `topic` (an undeclared one), `group` (a
# messageGroupId that is not text), `stamp` (a Time in the data, which JSON cannot carry). The refusal is
# kept in state `refusals`, so a test can read what the handler was told.
def config
  { type: 'event', name: 'Ship', subscribes: ['order.paid'], emits: ['order.shipped'] }
end

def handler(input, context)
  id = input.id
  context.state.set('orders', id, { status: :shipped, items: input[:items], ship: { by: 'ruby' } })
  context.streams.shipments.set('all', id, { status: 'shipped' })
  context.logger.info('order shipped', { id: id })
  begin
    context.emit(topic: input[:topic] || 'order.shipped', data: shipment(input), message_group_id: input[:group])
  rescue Steppe::HostError, TypeError => e
    context.state.set('refusals', id, { class: e.class.name, type: e.respond_to?(:type) ? e.type : nil,
                                        message: e.message })
  end
end

def shipment(input)
  data = { id: input.id }
  data[:at] = Time.at(0).utc if input[:stamp]
  data
end
