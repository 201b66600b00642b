# frozen_string_literal: true

require_relative 'codec'

module Steppe
  # Raised in a handler when the host refuses one of its calls (undeclared topic, unknown stream...).
  # `type` is the host's reason (`UndeclaredTopic`, `PayloadTooLarge`, `UnknownStream`, `InvalidParams`).
  class HostError < StandardError
    attr_reader :type, :code, :data

    def initialize(error)
      @code = error['code']
      @data = error['data'].is_a?(Hash) ? error['data'] : {}
      @type = @data['type'] || 'HostError'
      super(error['message'].to_s)
    end

    # The error for a host refusal: a subclass named after its reason where one exists.
    def self.for(error)
      data = error['data'].is_a?(Hash) ? error['data'] : {}
      case data['type']
      when 'StateConflict' then StateConflict.new(error)
      when 'PayloadTooLarge' then PayloadTooLarge.new(error)
      else new(error)
      end
    end
  end

  # state.update's `expect` did not match: nothing was changed.
  class StateConflict < HostError
  end

  # The call's payload is over a limit: the host's (max_event...), or the protocol's line limit, which
  # the runner checks itself before sending (LineLimit).
  class PayloadTooLarge < HostError
  end

  # A file that evaluated but is not a usable step/stream/auth file (no config, config not a Hash...).
  class ConfigError < StandardError
  end

  # Raised inside a handler's thread when the host cancels its invocation. It is not a StandardError,
  # so a handler's `rescue => e` does not swallow it; `ensure` blocks still run.
  class Cancelled < Exception # rubocop:disable Lint/InheritException
  end
end

module SteppeRunner
  HANDLER_ERROR = -32_000
  LOAD_ERROR = -32_001
  CANCELLED = -32_002
  NOT_LOADED = -32_003
  UNSUPPORTED_VERSION = -32_004
  INVALID_REQUEST = -32_600
  METHOD_NOT_FOUND = -32_601
  INVALID_PARAMS = -32_602
  INTERNAL_ERROR = -32_603
  HOST_REFUSED = -32_010

  # A protocol-level failure the runner answers with a fixed code (bad params, unknown path...).
  class ProtocolError < StandardError
    attr_reader :code, :type

    def initialize(code, message, type = 'ProtocolError')
      @code = code
      @type = type
      super(message)
    end
  end

  # Describes exceptions for the host. Describing never raises: an exception whose `message`, `to_s` or
  # `backtrace` raises (or whose class lies about its name) is described by what can be read, with a
  # fixed text saying what could not; a raise here would leave its invoke unanswered, or end the runner.
  module Errors
    RUNNER_DIR = "#{File.expand_path('../..', __dir__)}/"
    # read past any override a class or an object may have
    CLASS_OF = ::Kernel.instance_method(:class)
    NAME_OF = ::Module.instance_method(:name)
    SUPERCLASS_OF = ::Class.instance_method(:superclass)

    module_function

    def object(code, message, type, stack = '')
      { 'code' => code, 'message' => Text.utf8(message), 'data' => { 'type' => type, 'stack' => stack } }
    end

    def from_exception(code, error)
      type = Steppe::HostError === error ? host_type(error) : type_name(CLASS_OF.bind_call(error))
      object(code, message_of(error, type), type, stack(error))
    rescue Steppe::Cancelled
      raise
    rescue Exception # rubocop:disable Lint/RescueException
      object(code, 'the handler raised an exception the runner could not describe', 'Exception')
    end

    # The exception's message, or, when reading it raises, a text naming its class and what that raised.
    def message_of(error, type = type_name(CLASS_OF.bind_call(error)))
      Text.utf8(error.message)
    rescue Steppe::Cancelled
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      "a #{type} whose message could not be read (reading it raised #{brief(e)})"
    end

    # "RuntimeError: boom" for an exception raised while describing another; its class alone when its
    # own message cannot be read either.
    def brief(error)
      type = type_name(CLASS_OF.bind_call(error))
      begin
        "#{type}: #{Text.utf8(error.message)}"
      rescue Steppe::Cancelled
        raise
      rescue Exception # rubocop:disable Lint/RescueException
        type
      end
    end

    def host_type(error)
      type = error.type
      type.is_a?(String) ? Text.utf8(type) : 'HostError'
    end

    # The class name's last segment: `Errno::ENOENT` is `ENOENT`, and a class defined in a step file
    # (which lives in the file's anonymous module, `#<Module:0x...>::OrderError`) is `OrderError`.
    def type_name(klass)
      while (name = NAME_OF.bind_call(klass)).nil? && (parent = SUPERCLASS_OF.bind_call(klass))
        klass = parent
      end
      name.to_s.split('::').last || 'Exception'
    end

    # The user's frames only: the runner's own files and Ruby's internals are noise to a step author.
    def stack(error)
      trace = error.backtrace
      return '' unless trace.is_a?(Array)

      trace.filter_map do |line|
        Text.utf8(line) if line.is_a?(String) && !line.start_with?(RUNNER_DIR, '<internal:')
      end.join("\n")
    rescue Steppe::Cancelled
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      "(the backtrace could not be read: #{brief(e)})"
    end
  end
end
