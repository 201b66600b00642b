exports.config = { type: 'cron', name: 'Tick', cron: '0 0 * * *', emits: [] }
exports.handler = async () => {}
