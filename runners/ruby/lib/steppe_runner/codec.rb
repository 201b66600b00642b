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
  module Codec
    STRICT = :__steppe_strict_json
    # Steppe's nesting limit (depth.rb), which also turns a self-containing Hash into an error and keeps
    # the recursive parser from running out of stack (a SystemStackError would end the runner)
    PARSE_OPTS = { object_class: Steppe::Input, max_nesting: Depth::MESSAGE_DEPTH, create_additions: false }.freeze
    GENERATE_OPTS = { max_nesting: Depth::MESSAGE_DEPTH }.freeze
    # JSON.generate(obj, opts) builds a generator State from the options on every call, which costs more
    # than encoding a small message; each thread keeps one (a State is not safe to share: it counts depth)
    GENERATOR = :__steppe_json_generator

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
      generator = thread[GENERATOR] ||= JSON::State.new(GENERATE_OPTS)
      generator.depth = 0 # a generation that raised leaves its depth behind
      generator.generate(obj) << "\n"
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
    end
  end
end
