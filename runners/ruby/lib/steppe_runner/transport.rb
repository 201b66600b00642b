# frozen_string_literal: true

require_relative 'codec'
require_relative 'errors'
require_relative 'line_limit'

module SteppeRunner
  # The only writer of the protocol pipe. Each message is encoded before taking the lock, then written
  # whole with one write, so concurrent handlers never interleave lines. While the reader holds it (the
  # lines of one input chunk being answered), lines are gathered and leave together on release.
  #
  # Every line is measured against `max_line` where it is encoded (LineLimit), not in write_line: there
  # it would be too late to fail only the call or the invocation that made it.
  class Writer
    # the current line limit (LineLimit; the runner sets the host's at `initialize`)
    attr_accessor :max_line

    def initialize(io, diag, max_line = LineLimit.from_env)
      @io = io
      @diag = diag
      @max_line = max_line
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

    # An answer too long for a line fails its request with `code` instead (see #fit).
    def respond(id, result, code = INTERNAL_ERROR, what = 'the answer')
      write_line(fit(id, Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'result' => result }), code, what))
    end

    def error(id, error_object)
      write_line(error_line(id, error_object))
    end

    # A notification has no answer to fail: one too long for a line is dropped, and noted.
    def notify(method, params)
      line = Codec.dump({ 'jsonrpc' => '2.0', 'method' => method, 'params' => params })
      return write_line(line) if line.bytesize <= @max_line

      @diag.note("dropped a #{method} notification of #{LineLimit.over(line.bytesize, @max_line)}")
    end

    # The answer `line` (encoded) to request `id` when it fits a line, else an error answer `code` saying
    # why, with `what` naming the answer ("the handler's result"): that request fails, the runner goes on.
    def fit(id, line, code, what)
      return line if line.bytesize <= @max_line

      error = LineLimit.error(code, what, line.bytesize, @max_line)
      Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'error' => error })
    end

    # The error answer to request `id`. One too long for a line (a handler raised with megabytes in its
    # message) keeps its code and type, with its message and stack cut and the message saying so; only a
    # line limit too small even for that makes it a PayloadTooLarge error (#fit).
    def error_line(id, error)
      line = Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'error' => error })
      return line if line.bytesize <= @max_line

      data = error['data'].is_a?(Hash) ? error['data'] : {}
      message = "#{cut_text(error['message'])}… (cut: the error is #{LineLimit.over(line.bytesize, @max_line)})"
      shorter = { 'code' => error['code'], 'message' => message,
                  'data' => { 'type' => cut_text(data['type']), 'stack' => cut_text(data['stack']) } }
      cut_line = Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'error' => shorter })
      cut_line.bytesize <= @max_line ? cut_line : fit(id, line, error['code'], 'the error')
    end

    # A log notification that can never fail on odd `fields`: a value JSON cannot carry (an object, an
    # Integer the host cannot keep, a to_json that raises or writes no JSON) is sent as readable text
    # instead, the others as they are; the record is never lost, and never raises in the handler.
    def log(invocation, level, msg, source, fields = nil)
      # an object's own to_json is not called for a log: it may write text that is not JSON, which would
      # lose the record (the host cannot read the line); such a value is logged as its inspect
      fields = readable_fields(fields) unless fields.nil? || plain?(fields, 0)
      params = { 'invocation' => invocation, 'level' => level, 'msg' => Text.utf8(msg),
                 'fields' => fields || {}, 'source' => source }
      line = begin
        Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
      rescue StandardError, SystemStackError
        params['fields'] = readable_fields(fields)
        begin
          Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
        rescue StandardError, SystemStackError # a to_json that wrote JSON once and not twice
          params['fields'] = { 'unreadable' => 'the fields could not be encoded' }
          Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
        end
      end
      line = cut_log(params, line.bytesize) if line.bytesize > @max_line
      write_line(line) if line
    end

    private

    # A log record too long for a line is cut, not dropped: the start of its msg stays, and its fields
    # say what was cut. Only a line limit smaller than that (a few KB) drops it, noted on the diagnostics.
    def cut_log(params, size)
      params['msg'] = "#{cut_text(params['msg'])}…"
      params['fields'] = { 'truncated' => "the record was #{LineLimit.over(size, @max_line)}" }
      line = Codec.dump({ 'jsonrpc' => '2.0', 'method' => 'log', 'params' => params })
      return line if line.bytesize <= @max_line

      @diag.note("dropped a log record of #{LineLimit.over(size, @max_line)}")
      nil
    end

    # Each value as it is when JSON can carry it alone, else as text: an Integer's digits (as the Node
    # runner sends a BigInt), anything else its inspect.
    def readable_fields(fields)
      return {} unless fields.is_a?(Hash)

      fields.each_with_object({}) do |(key, value), out|
        out[key.is_a?(String) || key.is_a?(Symbol) ? Text.utf8(key) : Text.inspect_of(key)] = readable(value)
      end
    rescue StandardError, SystemStackError => e
      { 'unreadable' => "the record's fields could not be read (#{Text.inspect_of(e)})" }
    end

    def readable(value)
      return Text.inspect_of(value) unless plain?(value, 0)

      Codec.dump([value]) # in a list, as in the record: a number there follows `[`, where Codec looks
      value
    rescue StandardError, SystemStackError
      value.is_a?(Integer) ? value.to_s : Text.inspect_of(value)
    end

    PLAIN = [String, Symbol, Integer, Float, TrueClass, FalseClass, NilClass].freeze

    # Only JSON's own kinds, all the way down (a log's fields are small: this walk costs little)
    def plain?(value, depth)
      case value
      when Hash
        depth < Depth::MESSAGE_DEPTH && value.all? { |k, v| PLAIN.include?(k.class) && plain?(v, depth + 1) }
      when Array
        depth < Depth::MESSAGE_DEPTH && value.all? { |v| plain?(v, depth + 1) }
      else
        PLAIN.include?(value.class)
      end
    end

    def cut_text(text)
      Text.utf8(text)[0, LineLimit::CUT_AT]
    end

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
