# frozen_string_literal: true

require 'json'

module SteppeRunner
  # The tutorial's one-argument dialect for Ruby steps: a file with no config whose `def handler(event)`
  # takes one argument (a `SCHEDULE = '0 9 * * *'` constant makes it a cron step). The host completes
  # its config from steppe.toml (`[steps."<file>"]`); see docs/steps.md.
  module Dialect
    MARK = 'tutorial'
    DEFAULT_STATE_GROUP = 'default' # the group of the dialect's groupless state calls

    @preload_lock = Mutex.new
    @preloaded = {}

    # Runs the project's preload files (steppe.toml `[runners.ruby] preload`, sent by the host as
    # STEPPE_PRELOAD, a JSON list of absolute paths) once each, before the first step loads. One that
    # raises fails the load that needed it and is tried again by the next load.
    def self.preload
      @preload_lock.synchronize do
        JSON.parse(ENV.fetch('STEPPE_PRELOAD', '[]')).each do |path|
          next if @preloaded[path]

          Kernel.load(path)
          @preloaded[path] = true
        end
      end
    end

    # The config to report for a dialect file, or nil when the file is not one.
    def self.config_of(target, mod)
      return nil unless target.respond_to?(:handler) && target.method(:handler).arity == 1

      config = { 'dialect' => MARK }
      schedule = mod.const_defined?(:SCHEDULE, false) ? mod.const_get(:SCHEDULE, false) : nil
      config.update('type' => 'cron', 'cron' => schedule) if schedule.is_a?(String)
      config
    end

    def self.seconds(options)
      options.is_a?(Hash) ? (options[:ttl] || options['ttl']) : options
    end

    # `event.state`: the context's state calls on the default group.
    class GrouplessState
      def initialize(state)
        @state = state
      end

      def get(key) = @state.get(DEFAULT_STATE_GROUP, key)
      def set(key, value, options = nil, ttl: nil) = @state.set(DEFAULT_STATE_GROUP, key, value, ttl || Dialect.seconds(options))

      def update(key, ops, options = nil, ttl: nil)
        @state.update(DEFAULT_STATE_GROUP, key, ops, ttl || Dialect.seconds(options))
      end

      def delete(key) = @state.delete(DEFAULT_STATE_GROUP, key)
      def get_group = @state.get_group(DEFAULT_STATE_GROUP)
      alias getGroup get_group
      def clear = @state.clear(DEFAULT_STATE_GROUP)
    end

    # The one argument of a dialect handler (event.data, event.topic, event.emit(topic, data)...).
    class Event
      attr_reader :data, :headers, :query, :params, :raw_body, :ctx, :state

      @seq = 0
      @seq_lock = Mutex.new
      def self.next_id
        n = @seq_lock.synchronize { @seq += 1 }
        format('%015d-%06d', (Time.now.to_f * 1000).to_i, n)
      end

      def initialize(trigger, input, ctx)
        req = trigger == 'api' && input.is_a?(Hash) ? input : nil
        @data = req ? req['body'] : input
        @headers = req ? req['headers'] || {} : {}
        @query = req ? req['queryParams'] || {} : {}
        @params = req ? req['pathParams'] || {} : {}
        @raw_body = req ? req['rawBody'] : nil
        @ctx = ctx
        @state = GrouplessState.new(ctx.state)
      end

      alias body data
      alias rawBody raw_body
      def topic = @ctx.topic
      def attempt = @ctx.attempt
      def event_id = @ctx.event_id
      alias eventId event_id
      def trace_id = @ctx.trace_id
      alias traceId trace_id
      def logger = @ctx.logger

      # emit(topic, data), or emit({topic:, data:}) as the context takes it.
      def emit(topic, data = nil)
        @ctx.emit(topic.is_a?(Hash) ? topic : { 'topic' => topic, 'data' => data })
      end

      # A new item in stream `name`, in the group of this trace, with time-ordered ids.
      def stream(name, data) = @ctx.streams[name].set(@ctx.trace_id, Event.next_id, data)
    end
  end
end
