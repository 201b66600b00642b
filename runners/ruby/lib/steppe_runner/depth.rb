# frozen_string_literal: true

module SteppeRunner
  # The JSON nesting limit every Steppe runner enforces: 512 levels for a value (a request body, event
  # data, a state or stream value, a result), 520 for a whole protocol message (the value plus its
  # envelope). Deeper data is refused with an error naming the limit, never a SystemStackError: the
  # JSON parser and generator stop at MESSAGE_DEPTH (see Codec), a request that is too deep is
  # answered with InvalidParams, an answer to a host call that is too deep fails that call.
  module Depth
    MAX_DEPTH = 512
    MESSAGE_DEPTH = MAX_DEPTH + 8
    TOO_DEEP = "nested deeper than #{MAX_DEPTH} levels (the JSON nesting limit of Steppe runners)"

    # the id of a refused line, only at its top level where the host writes it
    HEAD = /\A\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")\s*,\s*"(method|result|error)"/

    module_function

    # For the decoder, after the parser refused `line` for its depth: true when it was answered.
    def refuse(line, writer, calls)
      m = HEAD.match(line)
      return false if m.nil?

      id = m[1].start_with?('"') ? m[1][1..-2] : m[1].to_i
      error = { 'code' => -32_602, 'message' => "message #{TOO_DEEP}", 'data' => { 'type' => 'InvalidParams' } }
      if m[2] == 'method'
        writer.error(id, error)
      else
        calls.resolve({ 'jsonrpc' => '2.0', 'id' => id,
                        'error' => error.merge('message' => "the host's answer is #{TOO_DEEP}") })
      end
      true
    end
  end
end
