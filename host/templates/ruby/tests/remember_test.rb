# frozen_string_literal: true

# A unit test of steps/remember_step.rb with Steppe's mock context: no host runs. From the project folder:
#   ruby -I "$(.venv/bin/python -c 'import steppe.testing as t; print(t.RUBY_LIB)')" tests/remember_test.rb
# (any Python that has Steppe installed will do in place of .venv/bin/python).

require 'minitest/autorun'
require 'steppe/testing'

class RememberTest < Minitest::Test
  STEP = Steppe::Testing.load_step(File.expand_path('../steps/remember_step.rb', __dir__))

  def test_counts_the_greetings_of_each_name
    # config: the step's own, so an emit its config.emits does not declare fails here as under the host
    ctx = Steppe::Testing::MockContext.new(topic: 'hello.said', config: STEP.config,
                                           state: { 'greeted' => { 'Ada' => 1 } })
    STEP.handler.call({ name: 'Ada' }, ctx)
    STEP.handler.call({ name: 'Bo' }, ctx)
    assert_equal({ 'greeted' => { 'Ada' => 2, 'Bo' => 1 } }, ctx.state.data)
    assert_equal [['state.get', %w[greeted Ada]], ['state.set', ['greeted', 'Ada', 2]],
                  ['state.get', %w[greeted Bo]], ['state.set', ['greeted', 'Bo', 1]]], ctx.calls
    assert_empty ctx.emitted
  end
end
