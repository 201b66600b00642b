# frozen_string_literal: true

# Steppe::Testing (host/testing/ruby/steppe/testing.rb) against a real step file, project/steps/ship_step.rb.
# Run: ruby -I host/testing/ruby tests/testing/ruby/mock_test.rb (tests/testing/test_ruby_helpers.py does).

require 'minitest/autorun'
require 'tmpdir'
require 'steppe/testing'

class MockContextTest < Minitest::Test
  SHIP = File.join(__dir__, 'project', 'steps', 'ship_step.rb')
  UNDECLARED = "step 'Ship' emitted topic 'order.lost', which is not in its config.emits ['order.shipped']; " \
               'the event was not sent'

  def setup
    @step = Steppe::Testing.load_step(SHIP)
    @ctx = Steppe::Testing::MockContext.new(topic: 'order.paid', config: @step.config)
  end

  def ship(input) = @step.handler.call(input, @ctx)

  def test_config_is_what_the_runner_sends_the_host
    assert_equal({ 'type' => 'event', 'name' => 'Ship', 'subscribes' => ['order.paid'], 'emits' => ['order.shipped'] },
                 @step.config)
  end

  def test_records_emits_state_streams_logs_and_calls
    ship({ id: 'o-1', items: ['tea'], group: 'c-1' })
    assert_equal [{ 'topic' => 'order.shipped', 'data' => { 'id' => 'o-1' }, 'messageGroupId' => 'c-1' }], @ctx.emitted
    assert_equal ['order.shipped'], @ctx.topics
    # stored as JSON gives it back: symbol keys and values are strings
    assert_equal({ 'orders' => { 'o-1' => { 'status' => 'shipped', 'items' => ['tea'], 'ship' => { 'by' => 'ruby' } } } },
                 @ctx.state.data)
    assert_equal({ 'all' => { 'o-1' => { 'status' => 'shipped', 'id' => 'o-1' } } }, @ctx.streams.shipments.items)
    assert_same @ctx.streams.shipments, @ctx.streams['shipments']
    assert_equal [['info', 'order shipped', { id: 'o-1' }]], @ctx.logger.records
    assert_equal ['state.set', 'streams.shipments.set', 'emit'], @ctx.calls.map(&:first)
    assert_equal ['orders', 'o-1', { 'status' => 'shipped', 'items' => ['tea'], 'ship' => { 'by' => 'ruby' } }],
                 @ctx.calls[0][1]
    assert_equal 'order.paid', @ctx.topic
    assert_equal @ctx.trace_id, @ctx.traceId
  end

  def test_the_handler_gets_its_input_as_the_runner_parses_it
    seen = nil
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, 'peek_step.rb'), <<~RUBY)
        def config = { type: 'event', name: 'Peek', subscribes: ['x'], emits: [] }
        def handler(input) = input
      RUBY
      seen = Steppe::Testing.load_step(File.join(dir, 'peek_step.rb')).handler.call({ order_id: :o1 }, @ctx)
    end
    assert_kind_of Steppe::Input, seen
    assert_equal 'o1', seen[:order_id]
    assert_equal 'o1', seen['order_id']
    assert_equal 'o1', seen.order_id
  end

  def test_initial_state_and_answers_are_copies
    ctx = Steppe::Testing::MockContext.new(state: { 'orders' => { 'o-1' => { status: :paid } } })
    order = ctx.state.get('orders', 'o-1')
    assert_equal 'paid', order[:status]
    assert_equal 'paid', order.status
    order['status'] = 'changed'
    assert_equal({ 'status' => 'paid' }, ctx.state.data['orders']['o-1'])
    assert_nil ctx.state.get('orders', 'nope')
    assert_equal [{ 'status' => 'paid' }], ctx.state.get_group('orders')
    assert_equal({ 'status' => 'paid' }, ctx.state.delete('orders', 'o-1'))
    assert_equal [], ctx.state.getGroup('orders')
    assert_equal [['state.get', %w[orders o-1]], ['state.get', %w[orders nope]], ['state.get_group', ['orders']],
                  ['state.delete', %w[orders o-1]], ['state.get_group', ['orders']]], ctx.calls
  end

  def test_an_undeclared_topic_is_refused_with_the_steps_config
    ship({ id: 'o-2', topic: 'order.lost' })
    assert_equal [], @ctx.emitted
    # refused, but called (then the handler stored the refusal)
    assert_equal ['emit', 'state.set'], @ctx.calls.last(2).map(&:first)
    # the handler rescued Steppe::HostError, as it would under a host
    assert_equal({ 'class' => 'Steppe::HostError', 'type' => 'UndeclaredTopic', 'message' => UNDECLARED },
                 @ctx.state.data['refusals']['o-2'])

    error = assert_raises(Steppe::HostError) { @ctx.emit({ topic: 'order.lost', data: {} }) }
    assert_equal ['UndeclaredTopic', UNDECLARED, -32_010], [error.type, error.message, error.code]

    without_config = Steppe::Testing::MockContext.new
    without_config.emit(topic: 'order.lost', data: {})
    assert_equal ['order.lost'], without_config.topics
  end

  def test_a_message_group_id_that_is_not_text_is_invalid_params
    ship({ id: 'o-3', group: ['a'] })
    assert_equal 'InvalidParams', @ctx.state.data['refusals']['o-3']['type']

    error = assert_raises(Steppe::HostError) { @ctx.emit(topic: 'order.shipped', data: {}, 'messageGroupId' => ['a']) }
    assert_equal ['InvalidParams', 'emit: messageGroupId must be a string (or a number), got an array'],
                 [error.type, error.message]
    error = assert_raises(Steppe::HostError) { @ctx.emit({ 'topic' => 'order.shipped', 'id' => { a: 1 } }) }
    assert_equal 'emit: id must be a string (or a number), got an object', error.message
    assert_equal [], @ctx.emitted

    @ctx.emit(topic: 'order.shipped', data: {}, message_group_id: 7, id: :e1) # a number, a symbol: text
    assert_equal [{ 'topic' => 'order.shipped', 'data' => {}, 'messageGroupId' => 7, 'id' => 'e1' }], @ctx.emitted
  end

  def test_data_json_cannot_carry_raises_at_the_call
    ship({ id: 'o-4', stamp: true })
    assert_equal({ 'class' => 'TypeError', 'type' => nil,
                   'message' => 'emit data is not JSON-serialisable: cannot encode Time as JSON' },
                 @ctx.state.data['refusals']['o-4'])

    error = assert_raises(TypeError) { @ctx.state.set('orders', 'o-5', { customer: Object.new }) }
    assert_equal 'state.set value is not JSON-serialisable: cannot encode Object as JSON', error.message
    error = assert_raises(TypeError) { @ctx.emit(topic: 'order.shipped', data: { total: Float::NAN }) }
    assert_equal 'emit data is not JSON-serialisable: NaN not allowed in JSON', error.message
    assert_raises(TypeError) { @ctx.streams.shipments.set('all', 'o-5', { at: Time.now }) }
    loop_hash = {}
    loop_hash[:self] = loop_hash
    assert_match(/nested deeper than 512 levels/, assert_raises(TypeError) { @ctx.state.set('g', 'k', loop_hash) }.message)
    # nothing was sent, so nothing was recorded or kept
    refute(@ctx.calls.any? { |_, args| args.include?('o-5') || args.include?('g') })
    assert_nil @ctx.state.data['orders']['o-5']
  end

  def test_values_are_kept_as_json_gives_them_back
    money = Struct.new(:cents) { def to_json(*args) = { cents: cents }.to_json(*args) }
    stored = @ctx.state.set('g', 'k', { a: :b, 1 => [:c, 1.5, nil], price: money.new(250) })
    expected = { 'a' => 'b', '1' => ['c', 1.5, nil], 'price' => { 'cents' => 250 } }
    assert_equal expected, stored
    assert_equal expected, @ctx.state.data['g']['k']
    assert_equal({ 'title' => 'x', 'id' => 'i1' }, @ctx.streams['todos'].set('g', 'i1', { title: :x }))
  end

  def test_the_hosts_checks_of_names_and_stream_calls
    error = assert_raises(Steppe::HostError) { @ctx.state.set('g', 42, 1) }
    assert_equal ['InvalidParams', 'state.set: key must be a string, got an integer'], [error.type, error.message]
    assert_equal 'streams.set: stream item data must be a JSON object, got an array',
                 assert_raises(Steppe::HostError) { @ctx.streams.todos.set('g', 'i', [1]) }.message
    assert_equal ['state.set', ['g', 42, 1]], @ctx.calls.first
    @ctx.state.set(:g, :k, 1, ttl: 60) # symbols are sent as text; ttl as the runner takes it
    assert_equal ['state.set', ['g', 'k', 1, 60]], @ctx.calls.last
    @ctx.streams.todos.send({ group_id: 'g' }, { type: 'ping', data: 1 })
    assert_equal [[{ 'groupId' => 'g' }, { 'type' => 'ping', 'data' => 1 }]], @ctx.streams.todos.sent
    assert_raises(Steppe::HostError) { @ctx.streams.todos.send({ group_id: 'g' }, { data: 1 }) }
  end

  def test_logger_fields_as_the_runner_merges_them
    @ctx.logger.warn('plain')
    @ctx.logger.error('failed', { order: 1 }, retry: true)
    @ctx.logger.debug('value', 42)
    assert_equal [['warn', 'plain', {}], ['error', 'failed', { order: 1, retry: true }], ['debug', 'value', { 'value' => 42 }]],
                 @ctx.logger.records
  end

  def test_each_step_file_is_isolated_and_the_load_path_untouched
    load_path = $LOAD_PATH.dup
    Dir.mktmpdir do |dir|
      %w[a b].each do |name|
        File.write(File.join(dir, "#{name}_step.rb"), <<~RUBY)
          CONFIG = { type: 'event', name: '#{name}', subscribes: ['x'], emits: [] }.freeze
          def handler(_input, context) = context.emit(topic: '#{name}', data: {})
        RUBY
      end
      steps = %w[a b].map { |name| Steppe::Testing.load_step(File.join(dir, "#{name}_step.rb")) }
      ctx = Steppe::Testing::MockContext.new
      steps.each { |step| step.handler.call({}, ctx) }
      assert_equal %w[a b], steps.map { |step| step.config['name'] }
      assert_equal %w[a b], ctx.topics
    end
    assert_equal load_path, $LOAD_PATH
    refute_respond_to Object.new, :handler
  end
end
