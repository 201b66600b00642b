# frozen_string_literal: true

require_relative 'capture'
require_relative 'transport'

module SteppeRunner
  # Takes the protocol pipes away from user code before any step file runs.
  #
  # The protocol uses the pipe pair the host passed (or private duplicates of fds 0 and 1), close-on-exec
  # so child processes never inherit them; fd 0 is pointed at /dev/null (and, without the pipe pair, fd 1
  # at stderr), so C extensions and subprocesses can only reach the host's output capture, never the
  # protocol stream. $stdout and $stderr become line captures that turn output into `log` notifications,
  # and so do Ruby-level writes to the STDOUT / STDERR constants (`Logger.new(STDOUT)` is everywhere in
  # Ruby code).
  module Stdio
    Pipes = Struct.new(:input, :writer, :captures, :diag, keyword_init: true)

    module_function

    def take_over
      protocol_in, protocol_out = protocol_pipes
      protocol_out.binmode
      protocol_out.sync = true
      protocol_in.binmode
      STDIN.reopen(File::NULL)
      diag_out = STDERR.dup
      diag_out.sync = true

      diag = Diag.new(diag_out)
      writer = Writer.new(protocol_out, diag)
      captures = [LineCapture.new(writer, 'stdout', 'info'), LineCapture.new(writer, 'stderr', 'warn')]
      $stdout, $stderr = captures
      route(STDOUT, captures[0])
      route(STDERR, captures[1])
      Pipes.new(input: protocol_in, writer: writer, captures: captures, diag: diag)
    end

    # Protocol 1.1: the pipe pair the host names in STEPPE_RPC_FDS ("in,out"), leaving fd 1 to user code
    # (the host logs what reaches it). Without it (protocol 1.0): private duplicates of stdin/stdout, and
    # fd 1 pointed at stderr.
    def protocol_pipes
      named = ENV.delete('STEPPE_RPC_FDS').to_s # a handler's child processes are not runners
      unless named.empty?
        pipes = named.split(',').map { |fd| IO.new(Integer(fd)) }
        pipes.each { |io| io.close_on_exec = true }
        return pipes
      end

      pipes = [STDIN.dup, STDOUT.dup]
      STDOUT.reopen(STDERR)
      pipes
    end

    # IO#puts, #print, #<< and #printf all go through #write, so this catches every Ruby-level write
    # (syswrite and the raw fd still reach the host's capture of the runner's output).
    def route(io, capture)
      io.define_singleton_method(:write) { |*items| capture.write(*items) }
    end
  end
end
