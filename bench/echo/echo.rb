# frozen_string_literal: true

# Bare newline-JSON echo (S5 baseline): answer each request line with {"jsonrpc", "id", "result": "pong"}.
require 'json'

$stdout.sync = true
$stdin.each_line do |line|
  msg = JSON.parse(line)
  $stdout.write(JSON.generate({ jsonrpc: '2.0', id: msg['id'], result: 'pong' }) + "\n")
end
