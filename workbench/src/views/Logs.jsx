import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, onLive, query } from '../api.js'
import { ErrorNote } from '../components.jsx'
import { time } from '../format.js'

const ROW = 22 // px: every line has the same height, so only the visible ones are drawn
const PAGE = 5000 // lines fetched at a time (`#/logs?limit=N` changes it, up to 100,000)
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 }
const MAX_LINES = 200_000

function matches(r, f) {
  if (f.level && LEVELS[r.level] < LEVELS[f.level]) return false
  if (f.step && r.step !== f.step) return false
  if (f.traceId && r.traceId !== f.traceId) return false
  if (f.flow && !(r.flows || []).includes(f.flow)) return false
  if (f.q && !r.msg.toLowerCase().includes(f.q.toLowerCase())) return false
  return true
}

export function Logs({ route }) {
  const p = route.params
  const [filters, setFilters] = useState({ level: p.level || '', step: p.step || '', flow: p.flow || '', traceId: p.traceId || '', q: p.q || '' })
  const page = Math.min(100_000, Number(p.limit) || PAGE)
  const [lines, setLines] = useState([])
  const [more, setMore] = useState(true)
  const [follow, setFollow] = useState(true)
  const [error, setError] = useState(null)
  const [scroll, setScroll] = useState(0)
  const [height, setHeight] = useState(600)
  const box = useRef(null)
  const loading = useRef(false)
  const filtersRef = useRef(filters)
  filtersRef.current = filters

  useEffect(() => {
    const f = route.params
    if (f.traceId !== undefined && f.traceId !== filters.traceId) setFilters({ ...filters, traceId: f.traceId })
  }, [route.params.traceId])

  useEffect(() => {
    let stop = false
    const started = performance.now()
    api.get('/__steppe/api/logs' + query({ ...filters, limit: page })).then((rows) => {
      if (stop) return
      setLines(rows)
      setMore(rows.length === page)
      setFollow(true)
      requestAnimationFrame(() => { window.__workbench = { ...(window.__workbench || {}), logsRenderMs: performance.now() - started, logsLines: rows.length } })
    }, setError)
    return () => { stop = true }
  }, [filters])

  useEffect(() => {
    // lines that arrive together are added together, at most once a frame, however fast they come
    let waiting = []
    let frame = 0
    const flush = () => {
      frame = 0
      const batch = waiting
      waiting = []
      setLines((old) => {
        const next = old.concat(batch)
        return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next
      })
    }
    const stop = onLive('log', (r) => {
      if (!matches(r, filtersRef.current)) return
      waiting.push(r)
      if (!frame) frame = requestAnimationFrame(flush)
    })
    return () => { stop(); if (frame) cancelAnimationFrame(frame) }
  }, [])

  useEffect(() => {
    const el = box.current
    if (!el) return
    const ro = new ResizeObserver(() => setHeight(el.clientHeight))
    ro.observe(el)
    return () => ro.disconnect()
  }, [])

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = lines.length * ROW
  }, [lines, follow])

  async function older() {
    const oldest = lines.find((r) => r.id)
    if (!more || loading.current || !oldest) return
    loading.current = true
    try {
      const rows = await api.get('/__steppe/api/logs' + query({ ...filters, limit: page, before: oldest.id }))
      setMore(rows.length === page)
      setLines((old) => [...rows, ...old])
      if (box.current) box.current.scrollTop += rows.length * ROW
    } catch (e) {
      setError(e)
    } finally {
      loading.current = false
    }
  }

  function onScroll(e) {
    const el = e.currentTarget
    setScroll(el.scrollTop)
    setFollow(el.scrollTop + el.clientHeight >= el.scrollHeight - ROW)
    if (el.scrollTop < ROW * 20) older()
  }

  const first = Math.max(0, Math.floor(scroll / ROW) - 10)
  const last = Math.min(lines.length, Math.ceil((scroll + height) / ROW) + 10)
  const visible = useMemo(() => lines.slice(first, last), [lines, first, last])
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.currentTarget.value })

  return (
    <div class="logs">
      <div class="toolbar">
        <label>Level <select value={filters.level} onChange={set('level')} data-testid="log-level">
          <option value="">all</option><option value="debug">debug+</option><option value="info">info+</option>
          <option value="warn">warn+</option><option value="error">error</option></select></label>
        <label>Step <input value={filters.step} onChange={set('step')} size="12" /></label>
        <label>Flow <input value={filters.flow} onChange={set('flow')} size="8" /></label>
        <label>Trace <input value={filters.traceId} onChange={set('traceId')} size="14" data-testid="log-trace" /></label>
        <label>Text <input value={filters.q} onChange={set('q')} size="14" data-testid="log-text" /></label>
        <span class="muted" data-testid="log-count">{lines.length.toLocaleString()} line(s){more ? ' (scroll up for older)' : ''}</span>
        <label><input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> follow</label>
      </div>
      <ErrorNote error={error} />
      <div class="log-box" ref={box} onScroll={onScroll} data-testid="log-box">
        <div style={{ height: `${lines.length * ROW}px`, position: 'relative' }}>
          {visible.map((r, i) => (
            <div key={r.id || `live-${first + i}`} class={`log-line lvl-${r.level}`} style={{ top: `${(first + i) * ROW}px` }}>
              <span class="log-time">{time(r.time)}</span>
              <span class="log-level">{r.level}</span>
              <span class="log-where">{r.step || r.source}</span>
              {r.traceId ? <a class="log-trace mono" href={`#/traces/${r.traceId}`} data-trace={r.traceId}>{r.traceId.slice(0, 8)}</a> : <span class="log-trace" />}
              <span class="log-msg">{r.msg}{r.fields ? ' ' + JSON.stringify(r.fields) : ''}</span>
            </div>
          ))}
        </div>
      </div>
    </div>
  )
}
