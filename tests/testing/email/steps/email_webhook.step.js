// The tutorial's email flow in the ordinary config + handler shape: POST /webhook/email stores the
// email as not processed yet and emits email-received.
export const config = { type: 'api', name: 'EmailWebhook', path: '/webhook/email', method: 'POST', emits: ['email-received'] }

export const handler = async (req, { emit, state }) => {
  const messageId = req.body.messageId || '123'
  const { from, subject } = req.body
  await state.set('emails', `email:${messageId}`, { from, subject, processed: false })
  await emit({ topic: 'email-received', data: { messageId, from, subject } })
  return { status: 200, body: { status: 'queued' } }
}
