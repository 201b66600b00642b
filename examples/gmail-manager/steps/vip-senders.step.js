// POST /vip-senders {"email": "boss@example.com"}: adds a sender whose mail is always high priority.
// An atomic append, so two requests at once both land; answers the whole list.
export default async function addVipSender(event) {
  const email = String(event.body?.email || '').trim().toLowerCase()
  if (!email.includes('@')) return { status: 400, body: { error: 'expected {"email": "name@domain"}' } }
  const current = (await event.state.get('vip-senders')) || []
  if (current.includes(email)) return { vipSenders: current }
  return { vipSenders: await event.state.update('vip-senders', [{ op: 'append', value: email }]) }
}
