# frozen_string_literal: true

module SteppeRunner
  # Cuts the protocol input into lines, a chunk (whatever one read returns) at a time, so the reader can
  # answer every line of a chunk before it writes: the writer holds the answers of one chunk and sends
  # them in one write (Writer#hold), instead of a write(2) per answer.
  #
  # A line longer than `max_line` bytes is dropped (noted on the diagnostics) as soon as it is known to be
  # too long, and the reader skips to its newline; the rest of the stream goes on.
  class Lines
    READ_SIZE = 1 << 16
    attr_writer :max_line

    def initialize(input, max_line, diag)
      @input = input
      @max_line = max_line
      @diag = diag
      @partial = String.new(encoding: Encoding::BINARY) # the unfinished last line
      @buffer = String.new(capacity: READ_SIZE, encoding: Encoding::BINARY) # reused by every read
      @dropping = false # inside a line over the limit: skip to its newline
    end

    # The lines of the next chunk (without their newlines, empty ones left out), never an empty array;
    # at EOF the unfinished last line, as a message of its own, then nil. Only one thread reads at a
    # time (the runner's leader).
    def next_batch
      while (chunk = read)
        lines = split(chunk)
        return lines unless lines.empty?
      end
      last = @partial
      @partial = String.new(encoding: Encoding::BINARY)
      last.empty? || @dropping ? nil : [last]
    end

    private

    def read
      @input.readpartial(READ_SIZE, @buffer)
    rescue EOFError, IOError, SystemCallError
      nil
    end

    def split(chunk)
      lines = []
      start = 0
      unless @partial.empty? && !@dropping
        nl = chunk.index("\n")
        if nl.nil?
          keep(chunk)
          return lines
        end

        finish_partial(chunk.byteslice(0, nl), lines)
        start = nl + 1
      end
      while (nl = chunk.index("\n", start))
        add(chunk.byteslice(start, nl - start), lines)
        start = nl + 1
      end
      keep(chunk.byteslice(start, chunk.bytesize - start)) if start < chunk.bytesize
      lines
    end

    def add(line, lines)
      if line.bytesize > @max_line
        drop
      elsif !line.empty?
        lines << line
      end
    end

    def finish_partial(piece, lines)
      if @dropping
        @dropping = false # the end of a dropped line
        return
      end
      @partial << piece
      line = @partial
      @partial = String.new(encoding: Encoding::BINARY)
      add(line, lines)
    end

    # Keeps the start of an unfinished line.
    def keep(piece)
      return if @dropping

      @partial << piece
      if @partial.bytesize > @max_line
        drop
        @partial = String.new(encoding: Encoding::BINARY)
        @dropping = true
      end
    end

    def drop
      @diag.note("dropped a message longer than #{@max_line} bytes")
    end
  end
end
