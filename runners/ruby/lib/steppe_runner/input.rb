# frozen_string_literal: true

module Steppe
  # A Hash for everything that arrives from the host (API requests, event inputs, state values, stream
  # items): string and symbol keys are the same key, and present keys read as methods, so `req.body`,
  # `req[:body]` and `req['body']` all work. `input.path_params` also finds "pathParams".
  # Keys that collide with Hash methods (`count`, `size`, `keys`...) still need `[]`.
  class Input < Hash
    def [](key)
      super(key.is_a?(Symbol) ? key.name : key)
    end

    def []=(key, value)
      super(key.is_a?(Symbol) ? key.name : key, value)
    end
    alias store []=

    def fetch(key, *default, &block)
      super(key.is_a?(Symbol) ? key.name : key, *default, &block)
    end

    def key?(key)
      super(key.is_a?(Symbol) ? key.name : key)
    end
    alias has_key? key?
    alias include? key?
    alias member? key?

    def delete(key, &block)
      super(key.is_a?(Symbol) ? key.name : key, &block)
    end

    def dig(key, *rest)
      super(key.is_a?(Symbol) ? key.name : key, *rest)
    end

    def values_at(*keys)
      super(*keys.map { |k| k.is_a?(Symbol) ? k.name : k })
    end

    def method_missing(name, *args, &block)
      key = name.name
      if args.empty? && block.nil?
        found = lookup_key(key)
        return self[found] if found
      elsif args.size == 1 && key.end_with?('=') && block.nil?
        base = key.chomp('=')
        return self[lookup_key(base) || base] = args.first
      end
      super
    end

    def respond_to_missing?(name, include_private = false)
      !lookup_key(name.name.chomp('=')).nil? || super
    end

    private

    def lookup_key(key)
      return key if key?(key)
      return nil unless key.include?('_')

      camel = key.gsub(/_([a-z\d])/) { Regexp.last_match(1).upcase }
      key?(camel) ? camel : nil
    end
  end
end
