'use strict'
// The helpers the tutorial's samples call but never show, as globals (preloaded by steppe.toml's
// [runners.node] preload). Each records its call, so the test can see what the samples did.
const fs = require('fs')

const calls = []
globalThis.__tutorialCalls = calls

function record(name, args) {
  calls.push({ name, args })
}

Object.assign(globalThis, {
  processBatch: async (items) => record('processBatch', [items.length]),
  expensiveOperation: async (data) => {
    record('expensiveOperation', [data.id])
    return { id: data.id, doubled: data.value * 2 }
  },
  fetchPRDiff: async (repository, prNumber) => {
    record('fetchPRDiff', [repository, prNumber])
    return `diff --git a/app.js b/app.js\n+console.log(${prNumber})`
  },
  performAIReview: async (diff) => {
    record('performAIReview', [diff.length])
    return { score: 8, comments: [{ line: 1, body: 'avoid console.log' }] }
  },
  postReviewComments: async (repository, prNumber, review) => record('postReviewComments', [repository, prNumber, review.score]),
  generateEmailStats: async (date) => ({ date, received: 3, spam: 1 }),
  permanentlyDeleteSpam: async (days) => record('permanentlyDeleteSpam', [days]),
  generateDailyReport: async () => ({ kind: 'daily', prsOpened: 2 }),
  sendSlackNotification: async (message) => record('sendSlackNotification', [message]),
  sendPushNotification: async (message) => record('sendPushNotification', [message]),
  sendWelcomeEmail: async (userId) => record('sendWelcomeEmail', [userId]),
  processData: async (data) => {
    record('processData', [data])
    if (data && data.fail) throw new Error(`cannot process ${data.id}`)
    return { processed: data.id }
  },
  performStep: async (i) => record('performStep', [i]),
  createReadStream: (file) => fs.createReadStream(file, { highWaterMark: 16 }),
  processChunk: async () => {},
  getActiveConnections: async () => 3,
  getQueueSize: async () => 0,
  processItem: async (item) => item * 10,
  analyzeSpam: async (subject) => (subject.includes('WIN') ? 0.95 : 0.1),
  moveToSpam: async (messageId) => record('moveToSpam', [messageId]),
  sleep: async (ms) => record('sleep', [ms]),
  processPayment: async (orderId) => record('processPayment', [orderId]),
  prepareShipment: async (orderId) => record('prepareShipment', [orderId]),
  confirmDelivery: async (orderId) => record('confirmDelivery', [orderId]),
})
