# frozen_string_literal: true

require_relative 'capture'
require_relative 'errors'

module SteppeRunner
  # Runs invocations on the runner's threads (Pool) and cancels them with Thread#raise.
  #
  # An invoke runs either on a pool thread (`submit`) or on the thread that read it (`run_here`, see
  # Leadership), so the common invoke needs no thread hand-off.
  #
  # The table of running jobs decides who answers an invoke: whoever removes the entry (the thread
  # finishing, or `cancel`) answers it, so each invoke is answered exactly once. Steppe::Cancelled is
  # deferred (handle_interrupt) everywhere except while the user's code runs, so it never cuts the
  # writing of an answer; a thread whose job was cancelled may still hold that pending interrupt, so
  # it retires instead of taking another task.
  class Invocations
    Job = Struct.new(:id, :work, :thread)
    # built once: a Hash literal in the call would be allocated for every invoke
    DEFERRED = { Steppe::Cancelled => :never }.freeze
    ALLOWED = { Steppe::Cancelled => :immediate }.freeze

    def initialize(writer, captures, pool)
      @writer = writer
      @captures = captures
      @pool = pool
      @lock = Mutex.new
      @running = {}
    end

    # Registers an invocation (from now on `cancel` finds it); the block returns the answer line to write.
    def prepare(id, &work)
      job = Job.new(id, work, nil)
      @lock.synchronize { @running[id] = job }
      job
    end

    # Runs a prepared job on a pool thread.
    def submit(job)
      @pool.submit { run(job) }
    end

    # Runs a prepared job on the calling thread; true when this thread may go on to other tasks.
    def run_here(job)
      run(job)
    end

    def cancel(id)
      @lock.synchronize do
        job = @running.delete(id)
        return unless job

        # a job not started yet has no thread: the thread that takes it sees it gone and skips it
        job.thread&.raise(Steppe::Cancelled, 'invocation cancelled')
      end
      @writer.error(id, Errors.object(CANCELLED, 'invocation cancelled', 'Cancelled'))
    end

    def cancel_all
      @lock.synchronize { @running.keys }.each { |id| cancel(id) }
    end

    private

    # True when this thread may take another task.
    def run(job)
      Thread.handle_interrupt(DEFERRED) do
        # cancelled before it started: nothing to run, and no interrupt can be pending for this thread
        return true unless @lock.synchronize { @running[job.id].equal?(job) && (job.thread = Thread.current) }

        Current.invocation = job.id
        done = false
        begin
          line = begin
            Thread.handle_interrupt(ALLOWED, &job.work)
          rescue Steppe::Cancelled
            nil
          end
          done = true
        ensure
          ended(job) unless done
        end
        @captures.each(&:flush_thread)
        Current.invocation = nil
        finish(job, line)
      end
    rescue Steppe::Cancelled
      false # delivered on leaving the deferred section; cancel already answered
    end

    # The work never returned: the handler ended its own thread (`Thread.current.kill`, `Thread.exit`,
    # which run ensure blocks but cannot be rescued). Its invoke is answered now, as a handler error,
    # rather than left to its timeout; the thread then ends (the pool starts others as needed).
    def ended(job)
      @captures.each(&:flush_thread)
      Current.invocation = nil
      message = 'the handler ended its thread (Thread#kill or Thread.exit) before it returned'
      finish(job, @writer.error_line(job.id, Errors.object(HANDLER_ERROR, message, 'ThreadKilled')))
    end

    def finish(job, line)
      mine = @lock.synchronize { @running[job.id].equal?(job) && @running.delete(job.id) }
      @writer.write_line(line) if mine && line
      mine ? true : false
    end
  end
end
