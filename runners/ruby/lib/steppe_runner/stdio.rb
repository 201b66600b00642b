# frozen_string_literal: true

require_relative 'capture'
require_relative 'transport'

module SteppeRunner
  # Takes the protocol pipes away from user code before any step file runs.
  #
  # The protocol keeps private duplicates of fds 0 and 1 (close-on-exec, so child processes never
  # inherit them); fd 1 is then pointed at stderr and fd 0 at /dev/null, so C extensions and
  # subprocesses can only reach the host's stderr capture, never the protocol stream. $stdout and
  # $stderr become line captures that turn output into `log` notifications, and so do Ruby-level
  # writes to the STDOUT / STDERR constants (`Logger.new(STDOUT)` is everywhere in Ruby code).
  module Stdio
    Pipes = Struct.new(:input, :writer, :captures, :diag, keyword_init: true)

    module_function

    def take_over
      protocol_out = STDOUT.dup
      protocol_out.binmode
      protocol_out.sync = true
      protocol_in = STDIN.dup
      protocol_in.binmode
      STDOUT.reopen(STDERR)
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

    # IO#puts, #print, #<< and #printf all go through #write, so this catches every Ruby-level write
    # (syswrite and the raw fd still reach stderr).
    def route(io, capture)
      io.define_singleton_method(:write) { |*items| capture.write(*items) }
    end
  end
end
