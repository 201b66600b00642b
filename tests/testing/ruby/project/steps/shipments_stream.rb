# frozen_string_literal: true

# The stream ship_step.rb writes to (a real host refuses a stream that has no stream file).
def config
  { name: 'shipments', schema: { type: 'object' } }
end
