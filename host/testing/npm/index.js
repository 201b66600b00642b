'use strict'
// steppe-testing: docs/testing.md in the Steppe repository.
const { createMockContext, createMockEvent } = require('./mock')
const { SteppeTester, createTester, createMotiaTester } = require('./tester')

module.exports = { createMockContext, createMockEvent, SteppeTester, createTester, createMotiaTester }
