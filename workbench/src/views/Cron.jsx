import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { Empty, ErrorNote, Status, TraceLink } from '../components.jsx'
import { dateTime, ms } from '../format.js'

export function Cron() {
  const [rows, setRows] = useState(null)
  const [error, setError] = useState(null)
  const [started, setStarted] = useState({})
  const [tick, setTick] = useState(0)
  useEffect(() => { api.get('/__steppe/api/cron').then(setRows, setError) }, [tick])
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 3000)
    return () => clearInterval(timer)
  }, [])
  async function runNow(name) {
    try {
      const r = await api.post(`/__steppe/api/cron/${encodeURIComponent(name)}/run`)
      setStarted({ ...started, [name]: r.traceId })
      setTimeout(() => setTick((t) => t + 1), 500)
    } catch (e) { setError(e) }
  }
  if (error) return <ErrorNote error={error} />
  if (!rows) return <Empty>Loading…</Empty>
  if (!rows.length) return <Empty>This project has no cron step.</Empty>
  return (
    <table class="grid" data-testid="cron-list">
      <thead><tr><th>Step</th><th>Expression</th><th>Next runs</th><th>Last runs</th><th /></tr></thead>
      <tbody>{rows.map((c) => (
        <tr key={c.name} data-cron={c.name}>
          <td>{c.name}<div class="muted">{c.language} · {c.path}</div></td>
          <td class="mono">{c.cron}{c.skipped ? <div class="muted">{c.skipped} tick(s) skipped</div> : null}</td>
          <td>{c.next.slice(0, 3).map((t) => <div key={t}>{dateTime(t)}</div>)}</td>
          <td>{c.last.length === 0 ? <span class="muted">never</span> : c.last.slice(-3).reverse().map((r) => (
            <div key={r.traceId}><Status value={r.status} /> {dateTime(r.start)} {ms(r.duration)} <TraceLink id={r.traceId} /></div>
          ))}</td>
          <td class="actions"><button class="primary" onClick={() => runNow(c.name)} data-testid="cron-run">Run now</button>
            {started[c.name] && <div>started <TraceLink id={started[c.name]} /></div>}</td>
        </tr>
      ))}</tbody>
    </table>
  )
}
