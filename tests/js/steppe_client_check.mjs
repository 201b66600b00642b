// Runs Steppe's browser client (host/static/client.js, unchanged) under Node's WebSocket against a
// host and prints what it sees as JSON lines, for tests/clients/test_browser_client_node.py:
//   node [--experimental-websocket] steppe_client_check.mjs '{"url", "item": [stream, group, id],
//        "group": [stream, group], "events": [types], "authToken"?, "tokenInQuery"?, "denied"?: [stream, group]}'
// Lines: {"t": "open" | "closed"}, {"t": "change", "sub", "state"}, {"t": "event", "sub", "type", "data"},
//        {"t": "error", "sub", "code"}. It exits when stdin closes, or after 60 s.
import { Stream } from '../../host/static/client.js'

const options = JSON.parse(process.argv[2])
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n')

const stream = new Stream(options.url, { authToken: options.authToken, tokenInQuery: options.tokenInQuery })
stream.onConnectionChange((connected) => print({ t: connected ? 'open' : 'closed', connections: stream.connections }))

const subs = {}
if (options.item) subs.item = stream.subscribeItem(...options.item)
if (options.group) subs.group = stream.subscribeGroup(...options.group)
if (options.denied) subs.denied = stream.subscribeGroup(...options.denied)
for (const [name, sub] of Object.entries(subs)) {
  sub.addChangeListener((state) => print({ t: 'change', sub: name, state }))
  sub.onError((error) => print({ t: 'error', sub: name, code: error.code }))
  for (const type of options.events || []) sub.onEvent(type, (data) => print({ t: 'event', sub: name, type, data }))
}

const done = () => {
  stream.close()
  process.exit(0)
}
process.stdin.on('end', done)
process.stdin.resume()
setTimeout(done, 60_000)
