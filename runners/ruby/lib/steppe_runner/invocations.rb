# frozen_string_literal: true

require_relative 'capture'
require_relative 'errors'

module SteppeRunner
  # Runs invocations on a pool of threads and cancels them with Thread#raise.
  #
  # Every job gets a thread of its own at once (an idle worker, else a new one), because handlers
  # block on sleeps and host calls and must never queue behind each other; workers that finish
  # return to the pool (up to MAX_IDLE), which under bursts costs far less than a thread per invoke.
  #
  # The table of running jobs decides who answers an invoke: whoever removes the entry (the worker
  # finishing, or `cancel`) answers it, so each invoke is answered exactly once. Steppe::Cancelled is
  # deferred (handle_interrupt) everywhere except while the user's code runs, so it never cuts the
  # writing of an answer; a worker whose job was cancelled may still hold that pending interrupt, so
  # it retires instead of taking another job.
  class Invocations
    MAX_IDLE = 32
    Job = Struct.new(:id, :work, :thread)

    def initialize(writer, captures, diag)
      @writer = writer
      @captures = captures
      @diag = diag
      @lock = Mutex.new
      @running = {}
      @jobs = Queue.new
      @idle = 0
    end

    # Runs the block on a worker thread; the block returns the answer line to write.
    def start(id, &work)
      job = Job.new(id, work, nil)
      spawn = @lock.synchronize do
        @running[id] = job
        next true if @idle.zero?

        @idle -= 1
        false
      end
      @jobs << job
      Thread.new { worker } if spawn
    end

    def cancel(id)
      @lock.synchronize do
        job = @running.delete(id)
        return unless job

        # a job still in the queue has no thread yet: the worker sees it gone and skips it
        job.thread&.raise(Steppe::Cancelled, 'invocation cancelled')
      end
      @writer.error(id, Errors.object(CANCELLED, 'invocation cancelled', 'Cancelled'))
    end

    def cancel_all
      @lock.synchronize { @running.keys }.each { |id| cancel(id) }
    end

    private

    def worker
      loop do
        job = @jobs.pop
        break unless run(job)
        break unless @lock.synchronize { @idle < MAX_IDLE && (@idle += 1) }
      end
    rescue Exception => e # rubocop:disable Lint/RescueException
      @diag.note("invocation worker crashed: #{e.class}: #{e.message}")
    end

    # True when this thread may take another job.
    def run(job)
      Thread.handle_interrupt(Steppe::Cancelled => :never) do
        # cancelled while queued: nothing to run, and no interrupt can be pending for this thread
        return true unless @lock.synchronize { @running[job.id].equal?(job) && (job.thread = Thread.current) }

        Current.invocation = job.id
        line = begin
          Thread.handle_interrupt(Steppe::Cancelled => :immediate, &job.work)
        rescue Steppe::Cancelled
          nil
        end
        @captures.each(&:flush_thread)
        Current.invocation = nil
        finish(job, line)
      end
    rescue Steppe::Cancelled
      false # delivered on leaving the deferred section; cancel already answered
    end

    def finish(job, line)
      mine = @lock.synchronize { @running[job.id].equal?(job) && @running.delete(job.id) }
      @writer.write_line(line) if mine && line
      mine ? true : false
    end
  end
end
