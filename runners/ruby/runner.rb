# frozen_string_literal: true

# Steppe's Ruby runner: speaks protocol v1.1 (protocol/SPEC.md) on the pipe pair named in STEPPE_RPC_FDS
# (or stdin/stdout without it). Started by the host as
# `ruby runners/ruby/runner.rb` with the project root as working directory. Standard library only.

if RUBY_VERSION < '3.0'
  warn "steppe ruby runner needs Ruby >= 3.0, this is #{RUBY_VERSION}"
  exit 1
end

require_relative 'lib/steppe_runner/lazy_gems'
SteppeRunner::LazyGems.install(ENV.fetch('STEPPE_PROJECT_ROOT', Dir.pwd))
require_relative 'lib/steppe_runner/stdio'
require_relative 'lib/steppe_runner/runner'

# The host ends its runners (`shutdown`, EOF, SIGKILL of the group), never with SIGINT: a Ctrl-C in a dev
# terminal reaches the whole process group, and a handler's Process.kill('INT', Process.pid) must not end
# the runner (Ruby would raise Interrupt in the main thread). A handler, not 'IGNORE': ignored signals stay
# ignored in child processes a handler starts, a handler's disposition does not survive their exec.
Signal.trap('INT') {}
pipes = SteppeRunner::Stdio.take_over
SteppeRunner::Runner.new(input: pipes.input, writer: pipes.writer, captures: pipes.captures,
                         diag: pipes.diag).run
