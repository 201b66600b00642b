# frozen_string_literal: true

require_relative 'codec'
require_relative 'errors'

module SteppeRunner
  # The only writer of the protocol pipe. Each message is encoded before taking the lock, then written
  # whole with one write, so concurrent handlers never interleave lines. While the reader holds it (the
  # lines of one input chunk being answered), lines are gathered and leave together on release.
  class Writer
    def initialize(io, diag)
      @io = io
      @diag = diag
      @lock = Mutex.new
      @held = nil # an Array while held
    end

    def write_line(line)
      @lock.synchronize { @held ? @held << line : @io.write(line) }
      nil
    rescue IOError, SystemCallError => e
      failed(e)
    end

    # Only the reader thread holds, and never while it waits for input.
    def hold
      @lock.synchronize { @held ||= [] }
    end

    def release
      @lock.synchronize do
        held = @held
        @held = nil
        @io.write(*held) unless held.nil? || held.empty? # one writev; no join across encodings
      end
      nil
    rescue IOError, SystemCallError => e
      failed(e)
    end

    def respond(id, result)
      write_line(Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'result' => result }))
    end

    def error(id, error_object)
      write_line(Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'error' => error_object }))
    end

    def notify(method, params)
      write_line(Codec.dump({ 'jsonrpc' => '2.0', 'method' => method, 'params' => params }))
    end

    # A log notification that can never fail on odd `fields`: they fall back to their inspect strings.
    def log(invocation, level, msg, source, fields = nil)
      params = { 'invocation' => invocation, 'level' => level, 'msg' => Text.utf8(msg),
                 'fields' => fields || {}, 'source' => source }
      line = begin
        Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
      rescue TypeError
        params['fields'] = fields.to_h { |k, v| [Text.utf8(k), Text.utf8(v.inspect)] }
        Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
      end
      write_line(line)
    end

    private

    # the host is gone; the reader will see EOF and shut down
    def failed(error)
      @diag.note("protocol write failed: #{error.class}: #{error.message}")
      nil
    end
  end

  # The runner's own diagnostics: straight to the process's stderr (free text the host captures).
  class Diag
    def initialize(io)
      @io = io
    end

    def note(msg)
      @io.write("steppe-ruby-runner: #{msg}\n")
    rescue IOError, SystemCallError
      nil
    end
  end
end
