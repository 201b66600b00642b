# frozen_string_literal: true

require_relative 'codec'
require_relative 'redact'

module SteppeRunner
  # Which invocation the current thread works for; nil outside handlers (load time, user threads).
  module Current
    KEY = :steppe_invocation

    module_function

    def invocation
      Thread.current.thread_variable_get(KEY)
    end

    def invocation=(id)
      Thread.current.thread_variable_set(KEY, id)
    end
  end

  # Stands in for $stdout / $stderr: every complete line becomes one `log` notification tied to the
  # invocation of the writing thread. Partial lines wait in a per-thread buffer so two handlers
  # printing at once never splice their output; the runner flushes them when an invocation ends.
  class LineCapture
    def initialize(writer, source, level)
      @writer = writer
      @source = source
      @level = level
      @buffer_key = :"steppe_partial_#{source}"
    end

    def write(*items)
      items.sum do |item|
        text = item.to_s
        feed(text)
        text.bytesize
      end
    end

    def <<(item)
      write(item)
      self
    end

    def print(*items)
      write(*items)
      nil
    end

    def puts(*items)
      items = [nil] if items.empty?
      items.each do |item|
        if item.is_a?(Array)
          item.empty? ? write("\n") : puts(*item)
        else
          text = item.nil? ? '' : item.to_s
          write(text.end_with?("\n") ? text : "#{text}\n")
        end
      end
      nil
    end

    def printf(format, *args)
      write(Kernel.format(format, *args))
      nil
    end

    def putc(char)
      write(char.is_a?(Integer) ? (char & 0xff).chr : char.to_s[0])
      char
    end

    # Emits what the current thread left without a newline.
    def flush_thread
      rest = Thread.current.thread_variable_get(@buffer_key)
      return if rest.nil? || rest.empty?

      Thread.current.thread_variable_set(@buffer_key, nil)
      emit(rest)
    end

    # IO-like answers for libraries that probe their output (Logger, pp, IRB helpers...).
    def flush = self
    def sync = true
    def sync=(_value); end
    def fsync = 0
    def fileno = nil
    def tty? = false
    alias isatty tty?
    def closed? = false
    def close = nil
    def binmode = self
    def set_encoding(*_args) = self
    def external_encoding = Encoding::UTF_8
    def internal_encoding = nil
    def inspect = "#<SteppeRunner::LineCapture #{@source}>"

    private

    def feed(text)
      text = Text.utf8(text)
      pending = Thread.current.thread_variable_get(@buffer_key)
      unless text.include?("\n")
        Thread.current.thread_variable_set(@buffer_key, pending ? pending + text : text.dup)
        return
      end

      text = pending + text if pending
      lines = text.split("\n", -1)
      rest = lines.pop
      Thread.current.thread_variable_set(@buffer_key, rest.empty? ? nil : rest)
      lines.each { |line| emit(line) }
    end

    def emit(line)
      @writer.log(Current.invocation, @level, Redact.text(line.chomp("\r")), @source)
    end
  end
end
