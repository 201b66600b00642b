# A Ruby event step: writes the job's final result into the same stream group, next to its progress.
def config
  {
    type: 'event',
    name: 'PublishResult',
    description: 'Streams the final result of a job',
    subscribes: ['job.finished'],
    emits: [],
    flows: ['live-progress']
  }
end

def handler(input, context)
  summary = "#{input.total} items processed in #{input.ms} ms by #{input.runtime}, " \
            "checksum #{input.checksum}; result written by ruby #{RUBY_VERSION}"
  context.streams.progress.set(input.jobId, 'result', { status: 'done', summary: summary })
  context.logger.info('job result published', { jobId: input.jobId })
end
