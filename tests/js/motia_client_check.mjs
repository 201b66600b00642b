// Drives Motia's published Node stream client (@motiadev/stream-client-node) against a Steppe host and
// prints what it sees as JSON lines, for tests/clients/test_motia_node_client.py:
//   node motia_client_check.mjs '{"url", "item": [stream, group, id], "group": [stream, group],
//                                 "events": [types], "authToken"?}'
// Lines: {"t": "open"}, {"t": "change", "sub": "item" | "group", "state"},
//        {"t": "event", "sub", "type", "data"}. It exits when stdin closes, or after 60 s.
import { Stream } from '@motiadev/stream-client-node'

const options = JSON.parse(process.argv[2])
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n')

const stream = new Stream(options.url, options.authToken ? { protocols: ['Authorization', options.authToken] } : undefined)
stream.ws.onOpen(() => print({ t: 'open' }))  // the client's own adapter; it joins on open as well

const subs = {}
if (options.item) subs.item = stream.subscribeItem(...options.item)
if (options.group) subs.group = stream.subscribeGroup(...options.group)
for (const [name, sub] of Object.entries(subs)) {
  sub.addChangeListener((state) => print({ t: 'change', sub: name, state }))
  for (const type of options.events || []) sub.onEvent(type, (data) => print({ t: 'event', sub: name, type, data }))
}

const done = () => {
  stream.close()
  process.exit(0)
}
process.stdin.on('end', done)
process.stdin.resume()
setTimeout(done, 60_000)
