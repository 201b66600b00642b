# frozen_string_literal: true

# Unit-test helpers for Ruby steps (docs/testing.md): `Steppe::Testing.load_step(path)` evaluates a step file as
# the Ruby runner does (runners/ruby/lib/steppe_runner/loader.rb); `Steppe::Testing::MockContext` is a handler's
# `context` that records every call, needs no host, and refuses what a real run refuses (the runner's strict
# JSON, the host's checks in host/calls.py), so a unit test cannot pass on a call that fails under the host.

require 'json'

# The runner's own classes a handler sees (Steppe::HostError and its subclasses, Steppe::Input) and its JSON
# codec, from beside this file: an installed Steppe keeps the runners in steppe/_runners, a checkout in runners/.
runner_lib = [File.expand_path('../../../_runners/ruby/lib', __dir__),
              File.expand_path('../../../../runners/ruby/lib', __dir__)].find { |dir| File.directory?(dir) }
raise LoadError, "steppe/testing: the Ruby runner's files are not beside #{__dir__}" unless runner_lib

require File.join(runner_lib, 'steppe_runner/errors')

module Steppe
  module Testing
    # how the runner names a payload it cannot encode (host_calls.rb); other calls say "<method> params"
    PAYLOAD_NAMES = { 'emit' => 'emit data', 'state.set' => 'state.set value', 'streams.set' => 'streams.set data',
                      'streams.send' => 'streams.send event' }.freeze
    # a value's JSON kind as the host's messages name it (schema_messages.kind_of)
    KINDS = { Hash => 'an object', Array => 'an array', String => 'a string', Integer => 'an integer',
              Float => 'a number', TrueClass => 'a boolean', FalseClass => 'a boolean', NilClass => 'null' }.freeze

    module_function

    # The step file at `path`: `.config` (string keys, as the host gets it) and `.handler`.
    def load_step(path) = Step.new(path)

    # `value` as the host gets it back (symbols as strings; a Steppe::Input per object when asked), encoded by the
    # runner's own codec: TypeError with the runner's message when JSON cannot carry it (an object, a Time, a Set,
    # NaN, text that is not UTF-8, nesting past the limit).
    def as_json(value, what, object_class: Hash)
      JSON.parse(SteppeRunner::Codec.dump(value), object_class: object_class, create_additions: false)
    rescue TypeError => e
      raise TypeError, "#{what} is not JSON-serialisable: #{e.message}"
    end

    # What a call answers: a fresh copy, so changing it cannot change what is stored.
    def reply(value) = value.nil? ? nil : as_json(value, 'answer', object_class: Input)

    # A config's callables (middleware, canAccess) run in the runner and never reach the host.
    def without_callables(value)
      callable = ->(v) { v.is_a?(Proc) || v.is_a?(Method) }
      case value
      when Hash then value.reject { |_, v| callable[v] }.to_h { |k, v| [k.to_s, without_callables(v)] }
      when Array then value.reject(&callable).map { |v| without_callables(v) }
      else value
      end
    end

    # Top-level keys as the runner sends an emit or a channel: strings, camelCase (`message_group_id:`).
    def camel_keys(hash) = hash.to_h { |k, v| [k.to_s.gsub(/_([a-z\d])/) { Regexp.last_match(1).upcase }, v] }

    # The error the runner raises when the host refuses a call (code -32010, HOST_REFUSED).
    def refusal(type, message)
      HostError.for({ 'code' => -32_010, 'message' => message, 'data' => { 'type' => type } })
    end
    def invalid(message) = refusal('InvalidParams', message)

    def kind_of(value) = KINDS.find { |klass, _| value.is_a?(klass) }&.last || 'an object'

    # Python's repr, as the host's messages quote names, topics and lists.
    def py_repr(value)
      return "[#{value.map { |v| py_repr(v) }.join(', ')}]" if value.is_a?(Array)
      return { nil => 'None', true => 'True', false => 'False' }.fetch(value) { value.to_s } unless value.is_a?(String)

      quote = value.include?("'") && !value.include?('"') ? '"' : "'"
      "#{quote}#{value.gsub('\\') { '\\\\' }.gsub(quote) { "\\#{quote}" }.gsub("\n", '\n').gsub("\t", '\t')}#{quote}"
    end

    # One step file, evaluated into its own anonymous Module as the runner does, so two files' `handler` methods
    # never clash and `require_relative` resolves against the file. Like the runner, it adds nothing to
    # $LOAD_PATH: a bare `require 'lib/x'` fails here as it fails under the host.
    class Step
      attr_reader :path, :config

      # made in a method without locals: string evals see their caller's, and the file must not
      def self.fresh_scope = Module.new.module_eval('::Kernel.binding', __FILE__, __LINE__)

      def initialize(path)
        @path = File.expand_path(path.to_s)
        scope = Step.fresh_scope
        eval(File.read(@path, encoding: 'UTF-8'), scope, @path, 1) # rubocop:disable Security/Eval
        @target = Object.new.extend(scope.receiver)
        @config = read_config(scope, scope.receiver)
      end

      # `.call(input, context)` (a cron step: `.call(context)`), as the runner calls it: the input arrives
      # through JSON (a Steppe::Input), and the handler gets as many arguments as it takes. nil for a noop step.
      def handler = @target.respond_to?(:handler) ? method(:run) : nil

      def run(*args)
        args[0] = Testing.as_json(args[0], 'handler input', object_class: Input) unless @config['type'] == 'cron'
        callable = @target.method(:handler)
        args = args.first(callable.arity) if callable.arity >= 0 && callable.arity < args.size
        callable.call(*args)
      end

      private

      def read_config(scope, mod)
        config = if @target.respond_to?(:config) then @target.config
                 elsif scope.local_variable_defined?(:config) then scope.local_variable_get(:config)
                 elsif mod.const_defined?(:CONFIG, false) then mod.const_get(:CONFIG, false)
                 elsif @target.respond_to?(:handler) && @target.method(:handler).arity == 1
                   # the tutorial's dialect (dialect.rb): config from steppe.toml, one event argument
                   raise Steppe::ConfigError, "#{@path} is a one-argument step: the mock does not run those"
                 else raise Steppe::ConfigError, "#{@path} defines no config (expected `def config` returning a Hash)"
                 end
        raise Steppe::ConfigError, "#{@path}: config must be a Hash, not #{config.class}" unless config.is_a?(Hash)

        json = Testing.without_callables(config)
        %w[middleware canAccess can_access].each { |key| json.delete(key) }
        Testing.as_json(json, 'config')
      rescue TypeError => e
        raise Steppe::ConfigError, "#{@path}: config is not JSON-serialisable: #{e.message}"
      end
    end

    # Each call: its arguments through JSON (TypeError: nothing is recorded, as the runner sends nothing), then
    # recorded in `calls`, then the host's checks (a refusal raises), then its effect on the stored data.
    class Recorder
      def initialize(calls, prefix, wire, names)
        @calls, @prefix, @wire, @names = calls, prefix, wire, names
      end

      private

      # `names`: how many leading arguments the host requires to be strings (group, key / groupId, id)
      def call(name, args, names, wire_name = name)
        wire = "#{@wire}#{wire_name}"
        args = Testing.as_json(args, PAYLOAD_NAMES.fetch(wire) { "#{wire} params" })
        @calls << ["#{@prefix}#{name}", args]
        @names.first(names).each_with_index do |what, i|
          next if args[i].is_a?(String)

          raise Testing.invalid("#{wire}: #{what} must be a string, got #{Testing.kind_of(args[i])}")
        end
        Testing.reply(yield(*args))
      end
    end

    # `context.state`; `data` is {group => {key => value}}. `update` (state/ops.py's ops) is not mocked.
    class MockState < Recorder
      attr_reader :data

      def initialize(calls, initial)
        super(calls, 'state.', 'state.', %w[group key])
        @data = Testing.as_json(initial || {}, 'initial state')
      end

      def get(group, key) = call('get', [group, key], 2) { |g, k| @data.dig(g, k) }

      # ttl: seconds, or `{ ttl: 60 }` / `ttl: 60` as the runner takes it; returns the value
      def set(group, key, value, ttl = nil)
        ttl = ttl[:ttl] || ttl['ttl'] if ttl.is_a?(Hash)
        call('set', [group, key, value, ttl].first(ttl.nil? ? 3 : 4), 2) do |g, k, v, t|
          ok = t.nil? || (t.is_a?(Numeric) && t.positive? && t.finite?)
          why = "ttl must be a positive number of seconds, got #{Testing.py_repr(t)}"
          raise Testing.invalid("state.set: #{why}") unless ok

          (@data[g] ||= {})[k] = v
        end
      end

      def update(*) = raise(NotImplementedError, 'state.update is not mocked: test it under a host (HostTester)')
      def delete(group, key) = call('delete', [group, key], 2) { |g, k| @data[g]&.delete(k) }
      def get_group(group) = call('get_group', [group], 1, 'getGroup') { |g| (@data[g] || {}).values }
      alias getGroup get_group
      def clear(group) = call('clear', [group], 1) { |g| @data.delete(g).then { nil } }
    end

    # `context.streams.<name>`: `items` is {group_id => {id => item}}, `sent` the [channel, event] of each send.
    class MockStream < Recorder
      attr_reader :name, :items, :sent

      def initialize(calls, name)
        super(calls, "streams.#{name}.", 'streams.', %w[groupId id])
        @name, @items, @sent = name, {}, []
      end

      def get(group_id, id) = call('get', [group_id, id], 2) { |g, i| @items.dig(g, i) }

      def set(group_id, id, data) # returns the item: the data with its id
        call('set', [group_id, id, data], 2) do |g, i, d|
          why = "stream item data must be a JSON object, got #{Testing.kind_of(d)}"
          raise Testing.invalid("streams.set: #{why}") unless d.is_a?(Hash)

          (@items[g] ||= {})[i] = d.merge('id' => i)
        end
      end

      def delete(group_id, id) = call('delete', [group_id, id], 2) { |g, i| @items[g]&.delete(i) }
      def get_group(group_id) = call('get_group', [group_id], 1, 'getGroup') { |g| (@items[g] || {}).values }
      alias getGroup get_group

      # send({groupId:, id:}, {type:, data:}); shadows Object#send as the runner's does (use __send__)
      def send(channel, event)
        raise TypeError, 'streams send expects a channel Hash {groupId:, id:}' unless channel.is_a?(Hash)

        call('send', [Testing.camel_keys(channel), event], 0) do |c, e|
          group, id = c['groupId'], c['id']
          why = if !group.is_a?(String) then "groupId must be a string, got #{Testing.kind_of(group)}"
                elsif !id.nil? && !id.is_a?(String) then "id must be a string, got #{Testing.kind_of(id)}"
                elsif !e.is_a?(Hash) || !e['type'].is_a?(String)
                  'event must be an object {type, data} with a string type'
                end
          raise Testing.invalid("streams.send: #{why}") if why

          @sent << [c, e]
          nil
        end
      end
    end

    # `context.streams`: `.todos` or `["todos"]`, one MockStream per name. The host refuses a name that has no
    # stream file (UnknownStream); the mock takes any.
    class MockStreams
      def initialize(calls)
        @calls, @streams = calls, {}
      end

      def [](name) = @streams[name.to_s] ||= MockStream.new(@calls, name.to_s)
      def method_missing(name, *args, &block) = args.empty? && block.nil? && stream_name?(name) ? self[name] : super
      def respond_to_missing?(name, include_private = false) = stream_name?(name) || super

      private

      # conversion probes (to_ary, to_str...) and predicate/bang/setter names are never stream names
      def stream_name?(name) = !name.start_with?('to_') && !name.end_with?('?', '!', '=')
    end

    # `context.logger`; `records` holds [level, msg, fields], the fields merged as the runner merges them.
    class MockLogger
      attr_reader :records

      def initialize = @records = []

      %w[debug info warn error].each do |level|
        define_method(level) do |msg, fields = nil, **more|
          fields = fields.is_a?(Hash) ? fields : (fields.nil? ? {} : { 'value' => fields })
          @records << [level, msg, more.empty? ? fields : fields.merge(more)]
          nil
        end
      end
    end

    # A handler's `context`. `config`: the step's own (load_step(path).config), whose non-empty `emits` the host
    # holds emits to. `emitted`: the accepted emits; `calls`: every call in order, refused ones too.
    class MockContext
      attr_reader :topic, :trace_id, :flows, :attempt, :event_id, :config, :calls, :emitted, :state, :streams,
                  :logger
      alias traceId trace_id
      alias eventId event_id

      def initialize(topic: nil, trace_id: nil, flows: [], state: {}, config: nil, attempt: nil, event_id: nil)
        @topic, @attempt, @event_id, @flows = topic, attempt, event_id, flows || []
        @trace_id = trace_id || format('%032x', rand(2**128))
        @config = config && Testing.as_json(Testing.without_callables(config), 'config')
        @calls, @emitted = [], []
        @state = MockState.new(@calls, state)
        @streams = MockStreams.new(@calls)
        @logger = MockLogger.new
      end

      # emit({topic:, data:, messageGroupId:, id:}) or emit(topic: ..., data: ...); nil once accepted.
      def emit(event = nil, **keywords)
        event ||= keywords
        raise TypeError, "emit expects a Hash like {topic:, data:}, got #{event.class}" unless event.is_a?(Hash)

        event = Testing.as_json(Testing.camel_keys(event), 'emit data')
        @calls << ['emit', [event]]
        why = refused(event)
        raise why if why

        @emitted << event
        nil
      end

      def topics = @emitted.map { |e| e['topic'] }

      private

      # The host's refusal of this emit (host/calls.py: its order, its words), or nil.
      def refused(event)
        topic = event['topic']
        return Testing.invalid('emit needs {topic: string, data}') unless topic.is_a?(String) && !topic.empty?

        emits = @config && @config['emits'].is_a?(Array) ? @config['emits'] : []
        declared = emits.filter_map { |e| e.is_a?(Hash) ? e['topic'].to_s : (e if e.is_a?(String)) }
        if !declared.empty? && !declared.include?(topic)
          return Testing.refusal('UndeclaredTopic', "step #{Testing.py_repr(@config['name'])} emitted topic " \
                                 "#{Testing.py_repr(topic)}, which is not in its config.emits " \
                                 "#{Testing.py_repr(declared)}; the event was not sent")
        end
        %w[id messageGroupId].each do |field|
          value = event[field]
          next if value.nil? || value.is_a?(String) || value.is_a?(Integer) || value.is_a?(Float)

          return Testing.invalid("emit: #{field} must be a string (or a number), got #{Testing.kind_of(value)}")
        end
        nil
      end
    end
  end
end
