import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { Empty, ErrorNote } from '../components.jsx'
import { bytes, dateTime, duration } from '../format.js'

export function Runners() {
  const [rows, setRows] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => {
    const load = () => api.get('/__steppe/api/runners').then(setRows, setError)
    load()
    const timer = setInterval(load, 2000)
    return () => clearInterval(timer)
  }, [])
  if (error) return <ErrorNote error={error} />
  if (!rows) return <Empty>Loading…</Empty>
  return (
    <table class="grid" data-testid="runner-list">
      <thead><tr><th>Language</th><th>pid</th><th>Version</th><th>Uptime</th><th>Restarts</th><th>RSS</th><th>In flight</th><th>Files</th><th>Last error</th></tr></thead>
      <tbody>{rows.map((r) => (
        <tr key={r.language} data-runner={r.language}>
          <td>{r.language}{r.unhealthy && <div class="error-text">{r.unhealthy}</div>}</td>
          <td class="mono">{r.pid ?? '—'}</td><td>{r.version ?? '—'}</td><td>{duration(r.uptime)}</td>
          <td>{r.restarts}</td><td>{bytes(r.rss)}</td><td>{r.inFlight}</td><td>{r.files}</td>
          <td>{r.lastError ? <><span class="error-text">{r.lastError.message}</span><div class="muted">{dateTime(r.lastError.at)}</div></> : '—'}</td>
        </tr>
      ))}</tbody>
    </table>
  )
}
