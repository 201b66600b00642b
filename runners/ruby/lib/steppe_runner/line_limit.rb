# frozen_string_literal: true

module SteppeRunner
  # The longest line either side may send, in bytes with its newline (STEPPE_MAX_LINE, or maxLine in
  # `initialize`). The host reads this runner's lines with the same limit and restarts a runner that sends
  # a longer one, failing every invocation in flight with it; so the runner never writes one. Each message
  # is measured where it is encoded (one bytesize comparison), and only the handler at fault pays: a host
  # call that does not fit raises Steppe::PayloadTooLarge in it (HostCalls), an answer becomes an error
  # answer saying so (Writer#fit), an error answer or a log record is cut (Writer#error_line, #log).
  module LineLimit
    DEFAULT = 64 * 1024 * 1024 # until the host says
    CUT_AT = 4096 # the characters kept of an oversized log record's msg, or an error's message and stack

    module_function

    def from_env
      value = Integer(ENV.fetch('STEPPE_MAX_LINE', ''), exception: false)
      value&.positive? ? value : DEFAULT
    end

    # Why a message of `size` bytes cannot be sent; `what` names it ("the emit message"...).
    def exceeded(what, size, max_line)
      "#{what} is #{over(size, max_line)}"
    end

    def over(size, max_line)
      "#{size} bytes, over the protocol's #{max_line}-byte line limit (max_line)"
    end

    # The error object sent (or raised, for a host call) instead of a message too long for one line.
    def error(code, what, size, max_line)
      { 'code' => code, 'message' => exceeded(what, size, max_line), 'data' => { 'type' => 'PayloadTooLarge' } }
    end
  end
end
