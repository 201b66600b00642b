# frozen_string_literal: true

require_relative 'context'
require_relative 'dialect'
require_relative 'errors'

module SteppeRunner
  # Runs one invocation of a loaded file, in the calling (invocation) thread, and returns its result.
  class Invoker
    TRIGGERS = %w[api event cron canAccess authenticate].freeze

    def initialize(calls, writer)
      @calls = calls
      @writer = writer
    end

    def run(invocation, loaded, params)
      trigger = params['trigger']
      input = params['input']
      return dialect(loaded, trigger, input, context(invocation, params)) if loaded.config['dialect'] == Dialect::MARK

      case trigger
      when 'api' then api(loaded, input, context(invocation, params))
      when 'event'
        call_user(handler(loaded), input, context(invocation, params))
        nil
      when 'cron'
        call_user(handler(loaded), context(invocation, params))
        nil
      when 'canAccess' then can_access(loaded, input)
      when 'authenticate' then authenticate(loaded, input)
      end
    end

    # Checked by the reader before a thread is spent on the invocation.
    def validate(loaded, params)
      trigger = params['trigger']
      unless TRIGGERS.include?(trigger)
        raise ProtocolError.new(INVALID_PARAMS, "unknown trigger #{trigger.inspect}", 'InvalidParams')
      end

      expected = { 'canAccess' => 'stream', 'authenticate' => 'auth' }.fetch(trigger, 'step')
      if loaded.kind != expected
        invalid("trigger #{trigger} needs a #{expected} file, #{loaded.path} was loaded as #{loaded.kind}")
      elsif expected == 'step' && !loaded.handler
        invalid("#{loaded.path} defines no handler (a noop step?), it cannot run on #{trigger}")
      elsif expected == 'stream' && !loaded.can_access
        invalid("#{loaded.path} defines no canAccess(subscription, auth_context)")
      end
    end

    private

    # A one-argument handler gets one Dialect::Event; an API's return value becomes the response.
    def dialect(loaded, trigger, input, ctx)
      result = handler(loaded).call(Dialect::Event.new(trigger, input, ctx))
      trigger == 'api' ? response(result) : nil
    end

    def invalid(message)
      raise ProtocolError.new(INVALID_PARAMS, message, 'InvalidParams')
    end

    def context(invocation, params)
      Context.new(@calls, @writer, invocation, params['traceId'], params['flows'], params)
    end

    def handler(loaded)
      loaded.target.method(:handler)
    end

    # Middleware wrap the handler, first outermost; `next_call.call` (or `.call(other_req)`) goes inward.
    def api(loaded, request, ctx)
      innermost = handler(loaded)
      # most steps have no middleware: no chain of lambdas to build per request
      return response(call_user(innermost, request, ctx)) if loaded.middleware.empty?

      core = ->(req) { call_user(innermost, req, ctx) }
      chain = loaded.middleware.reverse.reduce(core) do |inner, middleware|
        lambda do |req|
          next_call = ->(next_req = req) { inner.call(next_req) }
          call_user(middleware, req, ctx, next_call)
        end
      end
      response(chain.call(request))
    end

    # the keys as strings and as symbols, so checking one needs no conversion
    RESPONSE_KEYS = %w[status body headers bodyBase64].flat_map { |k| [k, k.to_sym] }.to_h { |k| [k, true] }.freeze

    # A Hash with only status/body/headers/bodyBase64 keys, with an Integer status or one of the other
    # keys, is a response (the host refuses a status outside 100-599); any other value is the body of a
    # 200 (nil: a 204, no body). Written without blocks and enumerators: this runs for every API call.
    def response?(result)
      return false unless result.is_a?(Hash)

      result.each_key { |k| return false unless RESPONSE_KEYS.key?(k) }
      return true if field(result, :status, 'status', nil).is_a?(Integer)

      result.each_key { |k| return true unless k == :status || k == 'status' }
      false
    end

    NONE = Object.new.freeze

    # result[:name], else result['name'], else the default (fetch: a Hash's default value never counts)
    def field(result, symbol, string, default)
      value = result.fetch(symbol, NONE)
      NONE.equal?(value) ? result.fetch(string, default) : value
    end

    def response(result)
      return { 'status' => 204, 'headers' => {} } if result.nil?

      result = { status: 200, body: result } unless response?(result)
      status = field(result, :status, 'status', 200)
      headers = field(result, :headers, 'headers', nil) || {}
      body = field(result, :body, 'body', nil)
      encoded = body.nil? ? field(result, :bodyBase64, 'bodyBase64', nil) : nil
      if encoded # bytes the handler encoded itself: the host decodes them
        { 'status' => status, 'bodyBase64' => encoded, 'headers' => headers }
      elsif body.is_a?(String) && binary?(body)
        { 'status' => status, 'bodyBase64' => [body].pack('m0'), 'headers' => headers }
      else
        { 'status' => status, 'body' => body, 'headers' => headers }
      end
    end

    # Bytes (File.binread, image data) rather than text: binary with high bytes, or not valid text.
    def binary?(body)
      body.encoding == Encoding::BINARY ? !body.ascii_only? : !body.valid_encoding?
    end

    def can_access(loaded, input)
      call_user(loaded.can_access, input['subscription'], input['authContext']) ? true : false
    end

    def authenticate(loaded, input)
      call_user(loaded.authenticate, input)
    end

    # Passes as many arguments as the callable takes, so `def handler(input)` works for events too.
    def call_user(callable, *args)
      arity = callable.arity
      args = args.first(arity) if arity >= 0 && arity < args.size
      callable.call(*args)
    end
  end
end
