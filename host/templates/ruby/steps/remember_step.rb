# Counts how often each name was greeted (state group "greeted").
def config
  { type: 'event', name: 'Remember', subscribes: ['hello.said'], emits: [] }
end

def handler(input, context)
  times = context.state.get('greeted', input['name']) || 0
  context.state.set('greeted', input['name'], times + 1)
end
