# frozen_string_literal: true

require_relative 'codec'
require_relative 'errors'
require_relative 'line_limit'

module SteppeRunner
  # Requests a handler makes back into the host. The calling thread blocks on its own Queue until the
  # reader thread hands it the answer, so any number of handlers can wait at once.
  class HostCalls
    # called on the handler's thread before it waits for an answer (Leadership#before_wait)
    attr_writer :before_wait

    # how a refused encoding is described to the handler, per method
    PAYLOAD_NAMES = {
      'emit' => 'emit data', 'state.set' => 'state.set value', 'streams.set' => 'streams.set data',
      'streams.send' => 'streams.send event'
    }.freeze

    def initialize(writer)
      @writer = writer
      @lock = Mutex.new
      @pending = {}
      @next_id = 0
      @before_wait = nil
    end

    def call(method, params)
      id = @lock.synchronize { @next_id += 1 }
      line = encode(id, method, params)
      refuse(method, line.bytesize) if line.bytesize > @writer.max_line
      # a fresh Queue per call: a late answer to an interrupted call can never reach a later one
      answer = Queue.new
      @lock.synchronize { @pending[id] = answer }
      begin
        @before_wait&.call
        @writer.write_line(line)
        reply = answer.pop
      ensure
        @lock.synchronize { @pending.delete(id) }
      end
      raise Steppe::HostError.for(reply['error']) if reply['error']

      reply['result']
    end

    # Called by the reader for every response message; answers to forgotten calls are dropped.
    def resolve(message)
      waiting = @lock.synchronize { @pending.delete(message['id']) }
      waiting&.push(message)
    end

    private

    # A call too long for one line is never sent (the host would restart the runner, with every
    # invocation in flight): it fails in its handler as the host's own refusal of a payload would.
    def refuse(method, size)
      what = "the #{method} message"
      raise Steppe::HostError.for(LineLimit.error(HOST_REFUSED, what, size, @writer.max_line))
    end

    def encode(id, method, params)
      Codec.dump({ 'jsonrpc' => '2.0', 'id' => id, 'method' => method, 'params' => params })
    rescue TypeError => e
      what = PAYLOAD_NAMES.fetch(method) { "#{method} params" }
      raise TypeError, "#{what} is not JSON-serialisable: #{e.message}"
    end
  end
end
