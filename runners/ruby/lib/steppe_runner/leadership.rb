# frozen_string_literal: true

module SteppeRunner
  # Who reads the protocol input while invokes run. The reading thread (the leader) runs the invokes
  # it has just read itself, one after the other, and goes back to reading: no thread wake-up on the
  # way to the handler or back, which with Ruby's GVL costs more than a small handler.
  #
  # Someone must read while a handler waits, though: a host call's answer, a `cancel`, the next invoke.
  # So the leader hands the reading to a pool thread (is promoted away) as soon as its handler may
  # wait: at once when the handler makes a host call (HostCalls asks `before_wait`), and otherwise when
  # the watchdog finds the same invoke still running on two ticks in a row (a sleep, a socket, a busy
  # loop). The invokes of the batch not started yet then go to pool threads too, and the old leader
  # finishes its handler as a plain pool thread. The watchdog ticks only while invokes run inline and
  # parks after a tick with nothing new, so an idle runner never wakes.
  class Leadership
    TICK = 0.001 # seconds; a waiting handler holds up the reading for at most about two ticks

    # `lead` is the task that makes a pool thread the next leader.
    def initialize(pool, invocations, &lead)
      @pool = pool
      @invocations = invocations
      @lead = lead
      @lock = Mutex.new
      @inline = nil # the leader thread while it runs invokes
      @rest = [] # the prepared jobs it has not started yet
      @started = 0 # counts the inline jobs started, for the watchdog
      @watching = false
      @wake = Queue.new
      @watchdog = nil
    end

    # Runs prepared jobs on the calling leader thread. Returns :lead when this thread still leads,
    # :pool when it was promoted away (it goes back to the pool), :retire when it must end.
    def run(jobs)
      me = Thread.current
      @lock.synchronize do
        @inline = me
        @rest = jobs
        arm
      end
      loop do
        job = @lock.synchronize { next_job(me) }
        return :pool unless job
        return :lead if job == :done

        next if @invocations.run_here(job)

        # a cancelled job's interrupt may still be pending on this thread: it must end
        @lock.synchronize { promote if @inline.equal?(me) }
        return :retire
      end
    ensure
      # a handler run here ended this thread (Thread#kill): the reading goes on in another one at once
      @lock.synchronize { promote if @inline.equal?(me) } if me && @inline.equal?(me)
    end

    # Called by a thread about to wait for the host: the reading must go on elsewhere.
    def before_wait
      me = Thread.current
      return unless @inline.equal?(me) # only the leader thread ever sets it to itself

      @lock.synchronize { promote if @inline.equal?(me) }
    end

    private

    # nil once this thread no longer leads; when its batch is done it leads on, reading
    def next_job(me)
      return nil unless @inline.equal?(me)

      job = @rest.shift
      if job
        @started += 1
      else
        @inline = nil
      end
      job || :done
    end

    # Under @lock: the rest of the batch to pool threads, the reading to another thread.
    def promote
      rest = @rest
      @rest = []
      @inline = nil
      rest.each { |job| @invocations.submit(job) }
      @pool.submit(&@lead)
    end

    # Under @lock: makes sure the watchdog ticks.
    def arm
      return if @watching

      @watching = true
      @watchdog ||= Thread.new { watch }
      @wake << true
    end

    def watch
      loop do
        @wake.pop
        seen = nil
        until tick(seen)
          seen = @started
        end
      end
    end

    # True when the watchdog may park: nothing runs inline and nothing started since the last tick.
    def tick(seen)
      sleep(TICK)
      @lock.synchronize do
        promote if @inline && @started == seen # the same job on two ticks: it waits or computes
        idle = @inline.nil? && @started == seen
        @watching = false if idle
        idle
      end
    end
  end
end
