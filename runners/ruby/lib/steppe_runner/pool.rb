# frozen_string_literal: true

module SteppeRunner
  # The runner's threads. A task is a block run on an idle thread, or on a new one when none is idle:
  # handlers block on sleeps and host calls, so a task never waits for another to finish. A thread
  # whose task returns true goes back to the pool (up to MAX_IDLE wait there); false retires it.
  #
  # Both kinds of work in the runner are tasks: running an invocation, and leading (reading the
  # protocol input, see Runner#lead). One pool for both lets a thread that just answered an invoke
  # be the next one to read.
  class Pool
    MAX_IDLE = 32

    def initialize(diag)
      @diag = diag
      @lock = Mutex.new
      @tasks = Queue.new
      @idle = 0
    end

    def submit(&task)
      spawn = @lock.synchronize do
        next true if @idle.zero?

        @idle -= 1
        false
      end
      spawn ? Thread.new { serve(task) } : @tasks << task
      nil
    end

    private

    def serve(task)
      while task.call
        break unless @lock.synchronize { @idle < MAX_IDLE && (@idle += 1) }

        task = @tasks.pop
      end
    rescue Exception => e # rubocop:disable Lint/RescueException
      @diag.note("runner thread crashed: #{e.class}: #{e.message}")
    end
  end
end
