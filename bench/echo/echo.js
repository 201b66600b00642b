'use strict'
// Bare newline-JSON echo (S5 baseline): answer each request line with {"jsonrpc", "id", "result": "pong"}.
// No framework: split stdin at newlines, parse, encode the answer, one write per answer (as the others).
let buffered = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => {
  buffered += chunk
  let start = 0
  let end
  while ((end = buffered.indexOf('\n', start)) !== -1) {
    const msg = JSON.parse(buffered.slice(start, end))
    process.stdout.write(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: 'pong' }) + '\n')
    start = end + 1
  }
  buffered = buffered.slice(start)
})
