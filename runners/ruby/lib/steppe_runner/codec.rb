# frozen_string_literal: true

require 'json'
require_relative 'input'
require_relative 'depth'

module SteppeRunner
  # JSON in and out of the protocol pipe.
  #
  # Ruby's json library turns any object it does not know into its `to_s` ("#<Order:0x...>"), which
  # would silently ship garbage to the host. The runner's encodings are strict instead: the hook below
  # makes that fallback raise, but only while the runner itself is encoding (a fiber-local flag), so
  # user code calling `obj.to_json` elsewhere keeps Ruby's usual behaviour.
  #
  # Every Integer it writes is one the host keeps exactly (-2**63..2**64-1): orjson refuses a larger one
  # ("Integer exceeds 64-bit range") or reads it as a Float (2**70 as 1.18e21), and the Python and Node
  # runners refuse such integers too; a larger one is a TypeError naming it. The check stays off the
  # common path: integers are read only in a line with 20 digits in a row (19 after a minus) just after
  # `:`, `,` or `[`, where every number of the line starts. (Text a user's own `to_json` returns is copied
  # into the line as it is; when it is not JSON the host can read, the host fails that call at once with
  # the reason, see protocol/SPEC.md.)
  module Codec
    STRICT = :__steppe_strict_json
    # Steppe's nesting limit (depth.rb), which also turns a self-containing Hash into an error and keeps
    # the recursive parser from running out of stack (a SystemStackError would end the runner)
    PARSE_OPTS = { object_class: Steppe::Input, max_nesting: Depth::MESSAGE_DEPTH, create_additions: false }.freeze
    GENERATE_OPTS = { max_nesting: Depth::MESSAGE_DEPTH }.freeze
    # reading a line back to check it: plain Hashes are enough
    CHECK_OPTS = { max_nesting: Depth::MESSAGE_DEPTH, create_additions: false }.freeze
    # JSON.generate(obj, opts) builds a generator State from the options on every call, which costs more
    # than encoding a small message; each thread keeps one (a State is not safe to share: it counts depth)
    GENERATOR = :__steppe_json_generator

    # the integers the host keeps exactly (orjson: a signed or an unsigned 64-bit integer)
    INT_MIN = -(2**63)
    INT_MAX = (2**64) - 1
    # A line is a JSON object without spaces, so every number in it follows `:`, `,` or `[`: an integer
    # out of range has 20 digits, or 19 after a minus (no Float Ruby writes has as many in a row there).
    # A string may match too: the check that follows is exact.
    LONG_INTEGER = /[:,\[](?:-\d{19}|\d{20})/
    DIGITS = '0-9'

    # Prepended to Object, so it only runs for objects whose class has no to_json of its own.
    module StrictFallback
      def to_json(*args)
        return super unless Thread.current[STRICT]
        # symbols are the one non-JSON type every Ruby hash is full of: encode them as strings
        return name.to_json(*args) if is_a?(Symbol)

        raise TypeError, "cannot encode #{self.class} as JSON"
      end
    end
    Object.prepend(StrictFallback)

    module_function

    # The JSON text of `obj` plus "\n"; raises TypeError naming what could not be encoded.
    def dump(obj)
      thread = Thread.current
      previous = thread[STRICT]
      thread[STRICT] = true
      # a to_json that encodes (or logs) while the runner encodes gets a State of its own: one counts depth
      generator = previous ? JSON::State.new(GENERATE_OPTS) : (thread[GENERATOR] ||= JSON::State.new(GENERATE_OPTS))
      generator.depth = 0 # a generation that raised leaves its depth behind
      line = generator.generate(obj)
      if line.count(DIGITS) >= 19 && line.match?(LONG_INTEGER) # counting first is 3 times faster
        check_integers(JSON.parse(line, CHECK_OPTS))
      end
      line << "\n"
    rescue JSON::NestingError
      raise TypeError, "#{Depth::TOO_DEEP} (or it contains itself)"
    rescue JSON::GeneratorError, EncodingError => e
      # json 2.6 prefixes some messages with an internal number ("1003: NaN not allowed in JSON")
      raise TypeError, Text.utf8(e.message.sub(/\A\d+: /, ''))
    ensure
      Thread.current[STRICT] = previous
    end

    # Objects become Steppe::Input (indifferent access), so every incoming payload reads the same way.
    def parse(line)
      JSON.parse(line, PARSE_OPTS)
    end

    # Raises TypeError for an Integer the host would not keep exactly, anywhere in `value` (parsed JSON).
    def check_integers(value)
      case value
      when Integer
        return if value >= INT_MIN && value <= INT_MAX

        shown = value.abs < 10**30 ? value.to_s : "an integer of #{value.abs.to_s.size} digits"
        raise TypeError, "Integer exceeds 64-bit range: #{shown} (the host keeps -2**63 to 2**64-1 exactly)"
      when Hash then value.each_value { |v| check_integers(v) }
      when Array then value.each { |v| check_integers(v) }
      end
    end
  end

  module Text
    module_function

    # Best-effort UTF-8 for text headed to the host (log lines, error messages): never raises.
    def utf8(str)
      str = str.to_s
      if str.encoding == Encoding::UTF_8 || str.encoding == Encoding::BINARY
        str = str.dup.force_encoding(Encoding::UTF_8) unless str.encoding == Encoding::UTF_8
        str.valid_encoding? ? str : str.scrub
      else
        str.encode(Encoding::UTF_8, invalid: :replace, undef: :replace)
      end
    rescue EncodingError # an encoding Ruby cannot convert from (a dummy one such as UTF-7)
      str.b.force_encoding(Encoding::UTF_8).scrub
    end

    # `obj.inspect` as UTF-8 text, never raising: an object whose inspect raises is shown by its class.
    def inspect_of(obj)
      utf8(obj.inspect)
    rescue StandardError, SystemStackError
      klass = begin
        ::Kernel.instance_method(:class).bind_call(obj)
      rescue StandardError
        nil
      end
      name = klass && ::Module.instance_method(:name).bind_call(klass)
      "#<#{name || 'object'} (its inspect failed)>"
    end
  end
end
