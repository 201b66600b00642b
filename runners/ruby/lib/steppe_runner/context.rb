# frozen_string_literal: true

require_relative 'host_calls'
require_relative 'redact'

module SteppeRunner
  # What a handler gets as `context`. Every call blocks the handler's thread until the host answers.
  class Context
    # topic, attempt and event_id: the delivery an event handler runs for (nil for api, cron and hooks)
    attr_reader :trace_id, :flows, :invocation, :topic, :attempt, :event_id

    def initialize(calls, writer, invocation, trace_id, flows, delivery = {})
      @calls = calls
      @writer = writer
      @invocation = invocation
      @trace_id = trace_id
      @flows = flows || []
      @topic = delivery['topic']
      @attempt = delivery['attempt']
      @event_id = delivery['eventId']
    end

    alias traceId trace_id
    alias eventId event_id

    # emit({topic:, data:, messageGroupId:}) or emit(topic: ..., data: ...); returns nil once accepted.
    def emit(event = nil, **keywords)
      event ||= keywords
      raise TypeError, "emit expects a Hash like {topic:, data:}, got #{event.class}" unless event.is_a?(Hash)

      host_call('emit', 'event' => Keys.camel_strings(event))
      nil
    end

    def state
      @state ||= State.new(self)
    end

    def logger
      @logger ||= Logger.new(@writer, @invocation)
    end

    def streams
      @streams ||= Streams.new(self)
    end

    # Every host call carries the invocation id so the host knows the step, trace and flows.
    def host_call(method, params)
      @calls.call(method, params.merge('invocation' => @invocation))
    end

    def inspect = "#<Steppe context trace_id=#{@trace_id.inspect} flows=#{@flows.inspect}>"
  end

  # Top-level keys of user-built payloads (emit events, stream channels) arrive as symbols or strings,
  # in camelCase or snake_case; the wire wants camelCase strings.
  module Keys
    module_function

    def camel_strings(hash)
      hash.to_h { |key, value| [key.to_s.gsub(/_([a-z\d])/) { Regexp.last_match(1).upcase }, value] }
    end
  end

  class State
    def initialize(context)
      @context = context
    end

    def get(group, key) = @context.host_call('state.get', 'group' => group, 'key' => key)

    # ttl: seconds, or `{ ttl: 60 }` as in the tutorial's dialect
    def set(group, key, value, ttl = nil)
      ttl = ttl[:ttl] || ttl['ttl'] if ttl.is_a?(Hash)
      params = { 'group' => group, 'key' => key, 'value' => value }
      params['ttl'] = ttl unless ttl.nil?
      @context.host_call('state.set', params)
    end

    # Atomic read-modify-write (ops as in protocol/SPEC.md); returns the new value. A failed `expect`
    # raises Steppe::StateConflict.
    def update(group, key, ops, ttl = nil)
      ttl = ttl[:ttl] || ttl['ttl'] if ttl.is_a?(Hash)
      params = { 'group' => group, 'key' => key, 'ops' => ops.map { |op| Keys.camel_strings(op) } }
      params['ttl'] = ttl unless ttl.nil?
      @context.host_call('state.update', params)
    end

    def delete(group, key) = @context.host_call('state.delete', 'group' => group, 'key' => key)
    def get_group(group) = @context.host_call('state.getGroup', 'group' => group)
    alias getGroup get_group
    def clear(group) = @context.host_call('state.clear', 'group' => group)
  end

  # context.streams.todos (any stream name; the host refuses unknown ones) or context.streams['todos'].
  class Streams
    def initialize(context)
      @context = context
    end

    def [](name) = StreamClient.new(@context, name.to_s)

    def method_missing(name, *args, &block)
      return super unless args.empty? && block.nil? && stream_name?(name)

      self[name]
    end

    def respond_to_missing?(name, include_private = false)
      stream_name?(name) || super
    end

    private

    # conversion probes (to_ary, to_str...) and predicate/bang/setter names are never stream names
    def stream_name?(name)
      !name.start_with?('to_') && !name.end_with?('?', '!', '=')
    end
  end

  class StreamClient
    attr_reader :name

    def initialize(context, name)
      @context = context
      @name = name
    end

    def get(group_id, id) = call('streams.get', 'groupId' => group_id, 'id' => id)
    def set(group_id, id, data) = call('streams.set', 'groupId' => group_id, 'id' => id, 'data' => data)
    def delete(group_id, id) = call('streams.delete', 'groupId' => group_id, 'id' => id)
    def get_group(group_id) = call('streams.getGroup', 'groupId' => group_id)
    alias getGroup get_group

    # An ephemeral event to the channel's subscribers: send({groupId:, id:}, {type:, data:}).
    # (This shadows Object#send on purpose, as in Motia; use __send__ for reflection.)
    def send(channel, event)
      raise TypeError, 'streams send expects a channel Hash {groupId:, id:}' unless channel.is_a?(Hash)

      call('streams.send', 'channel' => Keys.camel_strings(channel), 'event' => event)
      nil
    end

    private

    def call(method, params)
      @context.host_call(method, params.merge('stream' => @name))
    end
  end

  class Logger
    LEVELS = %w[debug info warn error].freeze

    def initialize(writer, invocation)
      @writer = writer
      @invocation = invocation
    end

    # logger.info('msg'), logger.info('msg', {order: 1}) or logger.info('msg', order: 1)
    LEVELS.each do |level|
      define_method(level) do |msg, fields = nil, **more|
        log(level, msg, fields, more)
      end
    end

    private

    # Never raises: text that is not valid UTF-8 is repaired (String#scrub), a message that is not a
    # String is its inspect, odd fields are sent as text (Writer#log).
    def log(level, msg, fields, more)
      text = msg.is_a?(String) ? Text.utf8(msg) : Text.inspect_of(msg)
      begin
        fields = fields.is_a?(Hash) ? fields : (fields.nil? ? {} : { 'value' => fields })
        fields = Redact.value(more.empty? ? fields : fields.merge(more))
      rescue StandardError, SystemStackError => e # a Hash subclass whose methods raise...
        fields = { 'unreadable' => "the fields could not be read (#{Text.inspect_of(e)})" }
      end
      @writer.log(@invocation, level, Redact.text(text), 'logger', fields)
      nil
    end
  end
end
