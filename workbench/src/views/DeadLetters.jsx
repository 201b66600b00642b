import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { Empty, ErrorNote, Json, TraceLink } from '../components.jsx'
import { dateTime } from '../format.js'

export function DeadLetters() {
  const [letters, setLetters] = useState(null)
  const [unrouted, setUnrouted] = useState(null)
  const [open, setOpen] = useState(null)
  const [note, setNote] = useState(null)
  const [error, setError] = useState(null)
  const [tick, setTick] = useState(0)
  useEffect(() => {
    api.get('/__steppe/dlq').then(setLetters, setError)
    api.get('/__steppe/api/unrouted').then(setUnrouted, setError)
  }, [tick])
  const refresh = () => setTick((t) => t + 1)

  async function dlq(verb, ids) {
    if (verb === 'drop' && !confirm(`Drop ${ids.length} dead letter(s)? They cannot be replayed afterwards.`)) return
    try {
      const r = await api.post(`/__steppe/dlq/${verb}`, { ids })
      setNote(verb === 'replay' ? `${r.replayed} dead letter(s) queued again` : `${r.dropped} dead letter(s) dropped`)
    } catch (e) { setError(e) }
    refresh()
  }
  async function event(verb, ids) {
    if (verb === 'drop' && !confirm(`Drop ${ids.length} unrouted event(s)?`)) return
    try {
      const r = await api.post(`/__steppe/api/unrouted/${verb}`, { ids })
      setNote(verb === 'replay'
        ? `${r.replayed.length} event(s) sent again${r.noSubscriber.length ? `; ${r.noSubscriber.length} still have no subscriber` : ''}`
        : `${r.dropped.length} event(s) dropped`)
    } catch (e) { setError(e) }
    refresh()
  }

  return (
    <div>
      <ErrorNote error={error} />
      {note && <div class="note" data-testid="dlq-note">{note}</div>}
      <div class="toolbar"><h3>Dead letters</h3><button onClick={refresh}>Refresh</button>
        {letters && letters.length > 0 && <button onClick={() => dlq('replay', letters.map((d) => d.id))}>Replay all</button>}</div>
      {letters && letters.length === 0 && <Empty>No dead letter.</Empty>}
      {letters && letters.length > 0 && (
        <table class="grid" data-testid="dlq-list">
          <thead><tr><th>Step</th><th>Topic</th><th>Attempts</th><th>Last error</th><th>Failed</th><th>Trace</th><th /></tr></thead>
          <tbody>{letters.map((d) => [
            <tr key={d.id} data-dlq={d.id} class="clickable" onClick={() => setOpen(open === d.id ? null : d.id)}>
              <td>{d.step}</td><td class="mono">{d.event.topic}</td><td>{d.attempts}</td>
              <td class="error-text">{d.error}</td><td>{dateTime(d.failedAt)}</td>
              <td onClick={(e) => e.stopPropagation()}><TraceLink id={d.event.traceId} /></td>
              <td class="actions" onClick={(e) => e.stopPropagation()}>
                <button onClick={() => dlq('replay', [d.id])} data-testid="dlq-replay">Replay</button>
                <button class="danger" onClick={() => dlq('drop', [d.id])}>Drop</button></td>
            </tr>,
            open === d.id && <tr key={`${d.id}-open`}><td colSpan="7">
              <h4>Payload</h4><Json value={d.event.data} />
              {d.stack && <><h4>Stack</h4><pre class="stack">{d.stack}</pre></>}
            </td></tr>,
          ])}</tbody>
        </table>
      )}
      <div class="toolbar"><h3>Unrouted events</h3><span class="muted">emitted while no step subscribed to their topic</span></div>
      {unrouted && unrouted.length === 0 && <Empty>No unrouted event.</Empty>}
      {unrouted && unrouted.length > 0 && (
        <table class="grid" data-testid="unrouted-list">
          <thead><tr><th>Topic</th><th>Emitted by</th><th>At</th><th>Subscribers now</th><th>Payload</th><th>Trace</th><th /></tr></thead>
          <tbody>{unrouted.map((e) => (
            <tr key={e.id} data-event={e.id}>
              <td class="mono">{e.topic}</td><td>{e.emittedBy}</td><td>{dateTime(e.emittedAt)}</td><td>{e.subscribers}</td>
              <td><code>{JSON.stringify(e.data).slice(0, 120)}</code></td><td><TraceLink id={e.traceId} /></td>
              <td class="actions"><button disabled={!e.subscribers} title={e.subscribers ? '' : 'no step subscribes to this topic yet'}
                onClick={() => event('replay', [e.id])}>Replay</button>
                <button class="danger" onClick={() => event('drop', [e.id])}>Drop</button></td>
            </tr>
          ))}</tbody>
        </table>
      )}
    </div>
  )
}
