# frozen_string_literal: true

require_relative 'codec'
require_relative 'errors'
require_relative 'transport'
require_relative 'lines'
require_relative 'capture'
require_relative 'host_calls'
require_relative 'loader'
require_relative 'invoker'
require_relative 'pool'
require_relative 'invocations'
require_relative 'leadership'

module SteppeRunner
  VERSION = '0.1.0'
  PROTOCOL_VERSION = 1
  # the registry name the host runs this runner under
  LANGUAGE = ENV.fetch('STEPPE_RUNNER_NAME', '').then { |name| name.empty? ? 'ruby' : name }

  # Leader/follower: one thread at a time reads the protocol input (the leader), answers what is quick
  # itself (pings, cancels, host-call answers) and runs the invokes of a chunk itself, handing the
  # reading to a pool thread as soon as a handler may wait (Leadership), so handlers waiting on host
  # calls, cancels and further invokes are never held up for long by a running handler. Loads run one at a time on a loader thread, in arrival order, so a slow file never
  # delays a ping; an invoke that arrives while a load of its path is still queued waits its turn on
  # that same thread, so `load` then `invoke` always meet the new file. The main thread only waits for
  # the end (EOF, `shutdown`), since `exit` ends the process only there.
  class Runner
    def initialize(input:, writer:, captures:, diag:)
      @writer = writer
      @diag = diag
      @calls = HostCalls.new(writer)
      @loader = Loader.new
      @invoker = Invoker.new(@calls, writer)
      @pool = Pool.new(diag)
      @invocations = Invocations.new(writer, captures, @pool)
      @leadership = Leadership.new(@pool, @invocations) { lead }
      @calls.before_wait = @leadership.method(:before_wait)
      @serial = Queue.new
      @loads_pending = Hash.new(0)
      @loads_lock = Mutex.new
      @serial_thread = Thread.new { serial_loop }
      @finished = Queue.new # [:stop, shutdown id or nil] or [:crash, exception]
      @shutdown = nil # the id of a `shutdown` request once read
      # the longest line either side sends (LineLimit: STEPPE_MAX_LINE, then maxLine in initialize)
      @lines = Lines.new(input, writer.max_line, diag)
    end

    def run
      @pool.submit { lead }
      how, detail = @finished.pop
      raise detail if how == :crash

      stop(detail)
    end

    private

    # A pool task: reads and answers until this thread is promoted away from reading (Leadership).
    def lead
      loop do
        lines = @lines.next_batch
        return finish(:stop, nil) if lines.nil?

        jobs = answer(lines)
        return finish(:stop, @shutdown) if @shutdown
        next if jobs.empty?

        case @leadership.run(jobs)
        when :pool then return true
        when :retire then return false
        end
      end
    rescue Exception => e # rubocop:disable Lint/RescueException
      finish(:crash, e)
    end

    def finish(how, detail)
      @finished << [how, detail]
      false # this thread reads no more
    end

    # Handles a chunk's lines, whose answers leave in one write (Writer#hold); returns the invokes
    # read, prepared, for the leader to run.
    def answer(lines)
      @batch = []
      @writer.hold
      begin
        catch(:shutdown) { lines.each { |line| handle_line(line) } }
      ensure
        @writer.release
      end
      @batch
    end

    def handle_line(line)
      message = Codec.parse(line.force_encoding(Encoding::UTF_8))
      return dispatch(message) if message.is_a?(Hash)

      @diag.note("ignoring a line that is not a JSON object: #{line[0, 200].inspect}")
    rescue JSON::NestingError => e
      return if Depth.refuse(line, @writer, @calls)

      @diag.note("ignoring a line nested too deeply (#{e.class}): #{line[0, 200].inspect}")
    rescue JSON::ParserError, EncodingError => e
      @diag.note("ignoring an unparseable line (#{e.class}): #{line[0, 200].inspect}")
    end

    def dispatch(message)
      method = message['method']
      return @calls.resolve(message) if method.nil? # an answer to one of our host calls

      id = message['id']
      params = message['params'].is_a?(Hash) ? message['params'] : {}
      return notification(method, params) if id.nil?

      guarded(id) { request(id, method, params) }
    end

    # Answers a request whose handling failed in the runner itself (bad params, or a runner bug).
    def guarded(id)
      yield
    rescue ProtocolError => e
      @writer.error(id, Errors.object(e.code, e.message, e.type))
    rescue StandardError => e
      @diag.note("runner bug answering request #{id.inspect}: #{e.class}: #{e.message}")
      @writer.error(id, Errors.from_exception(INTERNAL_ERROR, e))
    end

    def notification(method, params)
      @invocations.cancel(params['id']) if method == 'cancel'
    end

    def request(id, method, params)
      case method
      when 'invoke' then invoke(id, params)
      when 'ping' then @writer.respond(id, 'pong')
      when 'load' then queue_load(id, params)
      when 'initialize' then initialize_session(id, params)
      when 'shutdown' then shutdown(id)
      when String then raise ProtocolError.new(METHOD_NOT_FOUND, "unknown method #{method}", 'MethodNotFound')
      else raise ProtocolError.new(INVALID_REQUEST, 'method must be a string', 'InvalidRequest')
      end
    end

    def initialize_session(id, params)
      version = params['protocolVersion']
      unless version == PROTOCOL_VERSION
        message = "protocol version #{version.inspect} is not supported " \
                  "(this runner speaks #{PROTOCOL_VERSION})"
        raise ProtocolError.new(UNSUPPORTED_VERSION, message, 'UnsupportedVersion')
      end

      max_line = params['maxLine']
      @lines.max_line = @writer.max_line = max_line if max_line.is_a?(Integer) && max_line.positive?
      @writer.respond(id, { 'protocolVersion' => PROTOCOL_VERSION, 'language' => LANGUAGE,
                            'runnerVersion' => VERSION, 'pid' => Process.pid })
    end

    def invoke(id, params)
      pending = @loads_lock.synchronize { @loads_pending.key?(params['path']) }
      pending ? @serial << [:invoke, id, params] : start_invoke(id, params, batch: @batch)
    end

    # Checks an invoke and prepares it: the leader runs the invokes of its chunk (`batch`), the
    # loader thread hands its queued ones to the pool.
    def start_invoke(id, params, batch: nil)
      loaded = @loader[params['path']]
      raise ProtocolError.new(NOT_LOADED, "#{params['path']} was never loaded", 'NotLoaded') unless loaded

      @invoker.validate(loaded, params)
      job = @invocations.prepare(id) { invocation(id, loaded, params) }
      batch ? batch << job : @invocations.submit(job)
    end

    # The answer line of one invocation; one too long for a line fails the invocation alone (Writer#fit).
    def invocation(id, loaded, params)
      result = @invoker.run(id, loaded, params)
      @writer.fit(id, encode_answer(id, result), HANDLER_ERROR, "the handler's result")
    rescue Steppe::Cancelled
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      @writer.error_line(id, Errors.from_exception(HANDLER_ERROR, e))
    end

    def encode_answer(id, result)
      Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'result' => result })
    rescue TypeError => e
      message = "the handler's result is not JSON-serialisable: #{e.message}"
      error = Errors.object(HANDLER_ERROR, message, 'TypeError')
      Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'error' => error })
    end

    def queue_load(id, params)
      @loads_lock.synchronize { @loads_pending[params['path']] += 1 }
      @serial << [:load, id, params]
    end

    def serial_loop
      loop do
        task, id, params = @serial.pop
        task == :load ? load_file(id, params) : guarded(id) { start_invoke(id, params) }
      end
    end

    def load_file(id, params)
      path = params['path']
      @writer.respond(id, @loader.load(path, params['kind']), LOAD_ERROR, "the load answer for #{path}")
    rescue ProtocolError => e
      @writer.error(id, Errors.object(e.code, e.message, e.type))
    rescue Exception => e # rubocop:disable Lint/RescueException
      # SyntaxError and LoadError are ScriptErrors, and a file may even call `exit`: all are load errors
      @writer.error(id, Errors.from_exception(LOAD_ERROR, e))
    ensure
      @loads_lock.synchronize do
        path = params['path']
        (@loads_pending[path] -= 1).zero? && @loads_pending.delete(path)
      end
    end

    # The leader reads no more (the lines after `shutdown` are ignored, the invokes before it cancelled
    # by `stop`); the main thread answers and exits.
    def shutdown(id)
      @shutdown = id
      throw :shutdown
    end

    # `shutdown` (answered with null) or EOF on stdin: cancel what runs, then exit 0.
    def stop(id = nil)
      @invocations.cancel_all
      @writer.respond(id, nil) unless id.nil?
      exit(0)
    end
  end
end
