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

pipes = SteppeRunner::Stdio.take_over
SteppeRunner::Runner.new(input: pipes.input, writer: pipes.writer, captures: pipes.captures,
                         diag: pipes.diag).run
