import helpers from './index.js'

export const { createMockContext, createMockEvent, SteppeTester, createTester, createMotiaTester } = helpers
export default helpers
