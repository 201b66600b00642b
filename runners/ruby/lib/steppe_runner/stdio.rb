# frozen_string_literal: true

require_relative 'capture'
require_relative 'transport'

module SteppeRunner
  # Takes the protocol pipes away from user code before any step file runs.
  #
  # The protocol keeps private duplicates of fds 0 and 1 (close-on-exec, so child processes never
  # inherit them); fd 1 is then pointed at stderr and fd 0 at /dev/null, so STDOUT.puts, C extensions
  # and subprocesses can only reach the host's stderr capture, never the protocol stream. $stdout and
  # $stderr become line captures that turn output into `log` notifications.
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
      STDERR.sync = true

      diag = Diag.new(STDERR)
      writer = Writer.new(protocol_out, diag)
      captures = [LineCapture.new(writer, 'stdout', 'info'), LineCapture.new(writer, 'stderr', 'warn')]
      $stdout, $stderr = captures
      Pipes.new(input: protocol_in, writer: writer, captures: captures, diag: diag)
    end
  end
end
