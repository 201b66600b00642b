# A Ruby event step: writes the greeting into the `greetings` stream (clients can subscribe to it).
def config
  {
    type: 'event',
    name: 'ArchiveGreeting',
    description: 'Publishes each greeting to the greetings stream',
    subscribes: ['greeting.created'],
    emits: [],
    flows: ['hello']
  }
end

def handler(input, context)
  item = { text: input.text, name: input.name, archivedBy: "ruby #{RUBY_VERSION}" }
  context.streams.greetings.set('all', input.requestId, item)
  context.logger.info('greeting archived', { requestId: input.requestId })
end
