import { useEffect, useRef, useState } from 'preact/hooks'
import { api, onLive, query } from '../api.js'
import { Empty, ErrorNote, Json, Status } from '../components.jsx'
import { ms, time } from '../format.js'

export function Traces({ route }) {
  return route.rest[0] ? <TraceDetail id={route.rest[0]} /> : <TraceList params={route.params} />
}

function TraceList({ params }) {
  const [filters, setFilters] = useState({ status: params.status || '', step: params.step || '', flow: params.flow || '' })
  const [rows, setRows] = useState(null)
  const [error, setError] = useState(null)
  const [tick, setTick] = useState(0)
  useEffect(() => {
    api.get('/__steppe/api/traces' + query({ ...filters, limit: 300 })).then(setRows, setError)
  }, [filters, tick])
  useEffect(() => {
    let finished = null
    return onLive('tick', (t) => { // once a second: reload when invocations ended since
      if (finished !== null && t.finished !== finished) setTick((n) => n + 1)
      finished = t.finished
    })
  }, [])
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value })
  return (
    <div>
      <div class="toolbar">
        <label>Status <select value={filters.status} onChange={set('status')} data-testid="trace-status">
          <option value="">any</option><option value="ok">ok</option><option value="error">error</option></select></label>
        <label>Step <input value={filters.step} onChange={set('step')} placeholder="step name" /></label>
        <label>Flow <input value={filters.flow} onChange={set('flow')} placeholder="flow" /></label>
      </div>
      <ErrorNote error={error} />
      {rows && rows.length === 0 && <Empty>No trace recorded yet: send a request from Endpoints.</Empty>}
      {rows && rows.length > 0 && (
        <table class="grid" data-testid="trace-list">
          <thead><tr><th>Started</th><th>Entry</th><th>Status</th><th>Duration</th><th>Invocations</th><th>Languages</th><th>Trace</th></tr></thead>
          <tbody>
            {rows.map((t) => (
              <tr key={t.traceId} class="clickable" onClick={() => { location.hash = `#/traces/${t.traceId}` }}>
                <td>{time(t.start)}</td><td>{t.entry} <span class="muted">({t.trigger})</span></td>
                <td><Status value={t.status} /></td><td>{ms(t.duration)}</td>
                <td>{t.invocations}{t.notRecorded > 0 && <span class="muted"> +{t.notRecorded.toLocaleString()} not recorded</span>}</td>
                <td>{t.languages.join(' → ')}</td><td class="mono">{t.traceId.slice(0, 8)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  )
}

function TraceDetail({ id }) {
  const [trace, setTrace] = useState(null)
  const [error, setError] = useState(null)
  const [open, setOpen] = useState(null)
  const started = useRef(0)
  useEffect(() => {
    let stop = false
    let misses = 0
    const load = () => api.get(`/__steppe/api/traces/${id}`).then((t) => {
      if (stop) return
      started.current = performance.now()
      setTrace(t)
      if (t.status === 'running') setTimeout(load, 500)
    }, (e) => {
      if (stop) return
      // the first records may still be on their way to the store; after 5 s, nothing ran in this trace
      // (a request refused before its handler, or telemetry older than the retention)
      if (e.status === 404 && ++misses < 10) return setTimeout(load, 500)
      setError(e)
    })
    load()
    return () => { stop = true }
  }, [id])
  useEffect(() => {
    if (trace) requestAnimationFrame(() => {
      window.__workbench = { ...(window.__workbench || {}), traceRenderMs: performance.now() - started.current,
        traceInvocations: trace.invocations.length }
    })
  }, [trace])
  if (!trace) return error ? <ErrorNote error={error} /> : <Empty>Loading trace {id.slice(0, 8)}…</Empty>
  const total = Math.max(trace.duration, 0.001)
  return (
    <div class="trace" data-testid="trace-detail">
      <div class="toolbar">
        <a href="#/traces">← all traces</a>
        <span class="mono">{trace.traceId}</span>
        <Status value={trace.status} />
        <span>{ms(trace.duration)}</span>
        <span>{trace.invocations.length} invocation(s)</span>
        {trace.notRecorded > 0 && (
          <span class="muted" data-testid="trace-not-recorded" title="past telemetry_per_trace: counted, not recorded">
            {trace.notRecorded.toLocaleString()} more not recorded
          </span>
        )}
        <span data-testid="trace-languages">{trace.languages.join(', ')}</span>
        <a href={`#/logs?traceId=${trace.traceId}`} data-testid="trace-logs">Logs of this trace</a>
      </div>
      {trace.deadLetters && trace.deadLetters.length > 0 && (
        <div class="error-note" data-testid="trace-dead">
          {trace.deadLetters.map((d) => <div key={d.id}>dead-lettered: {d.step} ← {d.topic} after {d.attempts} attempt(s): {d.error} — <a href="#/dlq">replay or drop</a></div>)}
        </div>
      )}
      <div class="timeline">
        {trace.invocations.map((inv) => {
          const left = ((inv.start - trace.start) * 1000 / total) * 100
          const width = Math.max(((inv.duration || 0) / total) * 100, 0.4)
          return (
            <div key={inv.id} class="tl-row" data-step={inv.step} data-status={inv.status}>
              <div class="tl-label clickable" onClick={() => setOpen(open === inv.id ? null : inv.id)}>
                <span class={`lang lang-${inv.language}`}>{inv.language}</span> {inv.step}
                <span class="muted"> {inv.trigger}{inv.topic ? ` ← ${inv.topic}` : ''}{inv.attempt > 1 ? ` (attempt ${inv.attempt})` : ''}</span>
              </div>
              <div class="tl-track">
                <div class={`tl-bar ${inv.status}`} style={{ left: `${Math.min(left, 99.6)}%`, width: `${width}%` }} title={ms(inv.duration)} />
              </div>
              <div class="tl-ms">{ms(inv.duration)}</div>
              {open === inv.id && <Invocation inv={inv} />}
            </div>
          )
        })}
      </div>
    </div>
  )
}

function Invocation({ inv }) {
  return (
    <div class="tl-details">
      <dl>
        <dt>status</dt><dd><Status value={inv.status} /></dd>
        <dt>started</dt><dd>{time(inv.start)}</dd>
        <dt>operations</dt><dd>{Object.entries(inv.opCounts || {}).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}
          {inv.opsNotRecorded > 0 && <span class="muted"> (+{inv.opsNotRecorded.toLocaleString()} not recorded)</span>}</dd>
      </dl>
      {inv.error && <div class="error-note">{inv.error}</div>}
      {inv.stack && <pre class="stack">{inv.stack}</pre>}
      {inv.ops && inv.ops.length > 0 && (
        <table class="grid ops"><thead><tr><th>at</th><th>operation</th><th>target</th><th>took</th><th>data</th></tr></thead>
          <tbody>{inv.ops.map((o, i) => (
            <tr key={i}><td>+{ms(o.at)}</td><td>{o.op}</td><td class="mono">{o.target}</td><td>{ms(o.ms)}</td>
              <td><code>{o.data === null || o.data === undefined ? '' : JSON.stringify(o.data).slice(0, 160)}</code></td></tr>
          ))}</tbody></table>
      )}
      <h4>input</h4><Json value={inv.input} />
    </div>
  )
}
