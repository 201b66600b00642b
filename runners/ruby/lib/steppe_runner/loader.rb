# frozen_string_literal: true

require_relative 'codec'
require_relative 'errors'
require_relative 'dialect'

module SteppeRunner
  # One loaded file: the object its methods are called on, and what `load` reported about it.
  Loaded = Struct.new(:path, :kind, :target, :config, :middleware, :handler, :can_access, :authenticate,
                      keyword_init: true)

  # Evaluates step, stream and auth files. Each file gets its own anonymous Module, so two files that
  # both `def config` / `def handler` (or define the same constant) never collide, and a reload
  # evaluates the file into a fresh module. The file's top-level code runs with that module as its
  # lexical scope, through a Binding, which keeps `require_relative` working (it resolves against the
  # path given to eval) and lets a top-level local `config = {...}` be read back.
  class Loader
    KINDS = %w[step stream auth].freeze

    def initialize
      @lock = Mutex.new
      @files = {}
    end

    def [](path)
      @lock.synchronize { @files[path] }
    end

    # Returns the `load` result; raises ProtocolError for bad params, anything else is a LOAD_ERROR.
    def load(path, kind)
      raise invalid('load needs a string "path"') unless path.is_a?(String)
      raise invalid("unknown load kind #{kind.inspect}") unless KINDS.include?(kind)

      Dialect.preload
      loaded = evaluate(path, kind)
      @lock.synchronize { @files[path] = loaded }
      { 'config' => loaded.config, 'handler' => loaded.handler, 'middleware' => loaded.middleware.size,
        'canAccess' => !loaded.can_access.nil? }
    end

    # A Binding inside a new anonymous Module. String evals see their caller's locals, so this is made
    # in a method that has none: a file's top-level code must not read or clobber the loader's.
    def self.fresh_scope
      Module.new.module_eval('::Kernel.binding', __FILE__, __LINE__)
    end

    private

    def invalid(message) = ProtocolError.new(INVALID_PARAMS, message, 'InvalidParams')

    def evaluate(path, kind)
      scope = Loader.fresh_scope
      mod = scope.receiver
      eval(File.read(path, encoding: 'UTF-8'), scope, path, 1) # rubocop:disable Security/Eval
      target = Object.new.extend(mod)

      return auth_file(path, target) if kind == 'auth'
      dialect = kind == 'step' ? dialect_config(target, scope, mod) : nil
      return dialect_file(path, target, dialect) if dialect

      config = read_config(path, target, scope, mod)
      middleware = kind == 'step' ? extract_middleware(path, config, target) : []
      json = plain_config(path, config)
      Loaded.new(path: path, kind: kind, target: target, config: json, middleware: middleware,
                 handler: kind == 'step' && target.respond_to?(:handler),
                 can_access: kind == 'stream' ? can_access(path, config, target) : nil)
    end

    # A one-argument step with no config (Dialect): the host completes its config.
    def dialect_config(target, scope, mod)
      return nil if target.respond_to?(:config) || scope.local_variable_defined?(:config) ||
                    mod.const_defined?(:CONFIG, false)

      Dialect.config_of(target, mod)
    end

    def dialect_file(path, target, config)
      Loaded.new(path: path, kind: 'step', target: target, config: config, middleware: [], handler: true)
    end

    # `handler` is false for auth files: they export `authenticate`, not a handler.
    def auth_file(path, target)
      authenticate = find_method(target, :authenticate)
      raise Steppe::ConfigError, "#{path} defines no authenticate(request)" unless authenticate

      Loaded.new(path: path, kind: 'auth', target: target, config: {}, middleware: [], handler: false,
                 authenticate: authenticate)
    end

    # Motia puts canAccess in the stream's config; a method `can_access` / `canAccess` works too.
    def can_access(path, config, target)
      entry = %i[canAccess can_access].map { |k| config[k] || config[k.name] }.compact.first
      return find_method(target, :can_access, :canAccess) if entry.nil?

      callable(path, entry, target, 'canAccess')
    end

    # `def config` (the Motia form), a top-level `config = {...}`, or a CONFIG constant.
    def read_config(path, target, scope, mod)
      config = if target.respond_to?(:config) then target.config
               elsif scope.local_variable_defined?(:config) then scope.local_variable_get(:config)
               elsif mod.const_defined?(:CONFIG, false) then mod.const_get(:CONFIG, false)
               else raise Steppe::ConfigError, "#{path} defines no config (expected `def config` " \
                                               'returning a Hash)'
               end
      return config if config.is_a?(Hash)

      raise Steppe::ConfigError, "#{path}: config must be a Hash, not #{config.class}"
    end

    # config[:middleware] holds callables (lambdas, procs, `method(:name)`, or a method's name as a
    # Symbol); they run in this runner, so the host only learns how many there are.
    def extract_middleware(path, config, target)
      list = config[:middleware] || config['middleware']
      return [] if list.nil?
      raise Steppe::ConfigError, "#{path}: config middleware must be an Array" unless list.is_a?(Array)

      list.map { |entry| callable(path, entry, target, 'middleware entries') }
    end

    # A lambda, proc or Method as is; a Symbol names a method of the file.
    def callable(path, entry, target, what)
      return target.method(entry) if entry.is_a?(Symbol) && target.respond_to?(entry)
      return entry if entry.respond_to?(:call)

      raise Steppe::ConfigError, "#{path}: #{what} must be callable, got #{entry.inspect}"
    end

    def find_method(target, *names)
      name = names.find { |n| target.respond_to?(n) }
      name && target.method(name)
    end

    # The config as JSON: string keys, symbols as strings, callables (middleware) dropped.
    def plain_config(path, config)
      json = plain(config)
      %w[middleware canAccess can_access].each { |key| json.delete(key) }
      Codec.dump(json) # proves it encodes, so a bad config fails its load, not a later answer
      json
    rescue TypeError => e
      raise Steppe::ConfigError, "#{path}: config is not JSON-serialisable: #{e.message}"
    end

    def plain(value)
      case value
      when Hash then value.each_with_object({}) { |(k, v), out| out[k.to_s] = plain(v) unless callable?(v) }
      when Array then value.reject { |v| callable?(v) }.map { |v| plain(v) }
      when Symbol then value.name
      else value
      end
    end

    def callable?(value)
      value.is_a?(Proc) || value.is_a?(Method)
    end
  end
end
