import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api } from '../api.js'
import { ErrorNote, Json, Status, TraceLink } from '../components.jsx'
import { layout, NODE_H, NODE_W } from '../layout.js'
import { ms, time } from '../format.js'

function subtitle(n) {
  if (n.kind === 'stream') return 'stream'
  if (n.status === 'error' && !n.type) return 'failed to load'
  if (n.type === 'api') return `${n.method} ${n.route}`
  if (n.type === 'event') return `on ${n.subscribes.join(', ')}`
  if (n.type === 'cron') return `cron ${n.cron}`
  if (n.type === 'noop') return n.virtualSubscribes && n.virtualSubscribes.length ? `noop ← ${n.virtualSubscribes.join(', ')}` : 'noop'
  return n.error ? 'failed to load' : n.type
}

function kindClass(n) {
  if (n.status === 'error' || n.status === 'unavailable') return 'node-error'
  return n.kind === 'stream' ? 'node-stream' : `node-${n.type}`
}

function pathOf(points) {
  if (!points.length) return ''
  return points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
}

export function Flows() {
  const [graph, setGraph] = useState(null)
  const [error, setError] = useState(null)
  const [flow, setFlow] = useState('')
  const [selected, setSelected] = useState(null)
  const [view, setView] = useState(null) // {x, y, k}: pan and zoom
  const drawStarted = useRef(0)

  useEffect(() => {
    api.get('/__steppe/api/flows').then(setGraph, setError)
  }, [])

  const shown = useMemo(() => {
    if (!graph) return null
    drawStarted.current = performance.now()
    let nodes = graph.nodes
    if (flow) {
      const inFlow = new Set(graph.nodes.filter((n) => n.flows.includes(flow)).map((n) => n.id))
      for (const e of graph.edges) if (inFlow.has(e.source) && e.target.startsWith('stream:')) inFlow.add(e.target)
      nodes = graph.nodes.filter((n) => inFlow.has(n.id))
    }
    const ids = new Set(nodes.map((n) => n.id))
    const edges = graph.edges.filter((e) => ids.has(e.source) && ids.has(e.target))
    return { nodes, edges, ...layout(nodes, edges) }
  }, [graph, flow])

  useEffect(() => {
    if (!shown) return
    setView(null)
    requestAnimationFrame(() => {
      window.__workbench = { ...(window.__workbench || {}), flowsRenderMs: performance.now() - drawStarted.current,
        flowsNodes: shown.nodes.length }
    })
  }, [shown])

  if (error) return <ErrorNote error={error} />
  if (!shown) return <div class="empty">Loading the project…</div>
  const broken = graph.nodes.filter((n) => n.status === 'error' || n.status === 'unavailable')
  return (
    <div class="flows">
      <div class="toolbar">
        <label>Flow <select value={flow} onChange={(e) => { setFlow(e.currentTarget.value); setSelected(null) }} data-testid="flow-select">
          <option value="">all steps ({graph.nodes.length})</option>
          {graph.flows.map((f) => <option key={f} value={f}>{f}</option>)}
        </select></label>
        <span class="legend"><i class="node-api" />API <i class="node-event" />event <i class="node-cron" />cron
          <i class="node-noop" />noop <i class="node-stream" />stream <i class="node-error" />failed</span>
        {broken.length > 0 && <span class="badge failing">{broken.length} step(s) failed to load</span>}
      </div>
      <div class="flows-body">
        <Canvas shown={shown} view={view} setView={setView} selected={selected} onSelect={setSelected} />
        {selected && <NodeDetails node={graph.nodes.find((n) => n.id === selected)} onClose={() => setSelected(null)} />}
      </div>
    </div>
  )
}

function Canvas({ shown, view, setView, selected, onSelect }) {
  const box = useRef(null)
  const drag = useRef(null)
  const [size, setSize] = useState(null) // the canvas' size: the fitted view follows it
  useEffect(() => {
    const el = box.current
    const ro = new ResizeObserver(() => setSize({ w: el.clientWidth, h: el.clientHeight }))
    ro.observe(el)
    return () => ro.disconnect()
  }, [])
  // the whole graph when it fits at a readable scale; else readable from its top left corner ("all" shows it whole)
  const fit = (readable) => {
    if (!size) return { x: 0, y: 0, k: 1 }
    let k = Math.min(1.2, size.w / Math.max(shown.width, 1), size.h / Math.max(shown.height, 1))
    if (readable && k < 0.65) return { x: 10, y: 10, k: 0.65 }
    k = Math.max(k, 0.1)
    return { x: (size.w - shown.width * k) / 2, y: Math.max(10, (size.h - shown.height * k) / 3), k }
  }
  const v = view || fit(true)
  const onWheel = (e) => {
    e.preventDefault()
    const k = Math.min(3, Math.max(0.1, v.k * (e.deltaY < 0 ? 1.1 : 1 / 1.1)))
    const r = box.current.getBoundingClientRect()
    const px = e.clientX - r.left, py = e.clientY - r.top
    setView({ k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k })
  }
  const onDown = (e) => { if (e.button === 0) drag.current = { x: e.clientX, y: e.clientY, v } }
  const onMove = (e) => {
    const d = drag.current
    if (d) setView({ ...d.v, x: d.v.x + e.clientX - d.x, y: d.v.y + e.clientY - d.y })
  }
  const onUp = () => { drag.current = null }
  return (
    <div class="canvas" ref={box} onWheel={onWheel} onMouseDown={onDown} onMouseMove={onMove} onMouseUp={onUp}
         onMouseLeave={onUp} data-testid="flow-canvas">
      <svg width="100%" height="100%">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" fill="#7b8496" />
          </marker>
        </defs>
        <g transform={`translate(${v.x},${v.y}) scale(${v.k})`}>
          {shown.edges.map((e) => {
            const pts = shown.routes[e.id]
            const mid = pts[Math.floor(pts.length / 2)]
            return (
              <g key={e.id} class={`edge${e.virtual ? ' virtual' : ''}`} data-edge={`${e.source}>${e.target}`}>
                <path d={pathOf(pts)} marker-end="url(#arrow)" />
                {mid && <text x={mid.x} y={mid.y - 4} text-anchor="middle">{e.seen ? `${e.label} (seen)` : e.label}</text>}
              </g>
            )
          })}
          {shown.nodes.map((n) => {
            const p = shown.at[n.id]
            return (
              <g key={n.id} class={`node ${kindClass(n)}${selected === n.id ? ' selected' : ''}`}
                 transform={`translate(${p.x},${p.y})`} data-node={n.name} data-status={n.status}
                 onMouseDown={(e) => e.stopPropagation()} onClick={() => onSelect(n.id)}>
                <rect width={NODE_W} height={NODE_H} rx="8" />
                <text x="10" y="22" class="title">{n.name.length > 26 ? n.name.slice(0, 25) + '…' : n.name}</text>
                <text x="10" y="42" class="sub">{(() => { const s = subtitle(n); return s.length > 30 ? s.slice(0, 29) + '…' : s })()}</text>
                <text x={NODE_W - 10} y="22" text-anchor="end" class="lang">{n.language}</text>
                {n.error && <title>{n.error}</title>}
              </g>
            )
          })}
        </g>
      </svg>
      <div class="zoom">
        <button onClick={() => setView({ ...v, k: Math.min(3, v.k * 1.2) })}>+</button>
        <button onClick={() => setView({ ...v, k: Math.max(0.1, v.k / 1.2) })}>−</button>
        <button onClick={() => setView(null)} title="readable scale">1:1</button>
        <button onClick={() => setView(fit(false))} title="the whole graph">all</button>
      </div>
    </div>
  )
}

function NodeDetails({ node, onClose }) {
  const [runs, setRuns] = useState(null)
  useEffect(() => {
    setRuns(null)
    if (node.kind === 'step' && node.status !== 'error') {
      api.get(`/__steppe/api/steps/${encodeURIComponent(node.name)}/invocations?limit=10`).then(setRuns, () => setRuns([]))
    }
  }, [node.id])
  return (
    <aside class="details" data-testid="node-details">
      <div class="details-head"><h3>{node.name}</h3><button onClick={onClose}>×</button></div>
      {node.error && <div class="error-note" data-testid="node-error">{node.error}</div>}
      <dl>
        <dt>kind</dt><dd>{node.kind === 'stream' ? 'stream' : node.type}</dd>
        <dt>status</dt><dd><Status value={node.status} /></dd>
        <dt>language</dt><dd>{node.language} runner</dd>
        <dt>file</dt><dd class="mono">{node.path}</dd>
        {node.flows.length > 0 && <><dt>flows</dt><dd>{node.flows.join(', ')}</dd></>}
        {node.description && <><dt>about</dt><dd>{node.description}</dd></>}
        {node.kind === 'step' && <><dt>trigger</dt><dd>{subtitle(node)}</dd></>}
        {node.emits && node.emits.length > 0 && <><dt>emits</dt><dd>{node.emits.map((e) => e.topic).join(', ')}</dd></>}
      </dl>
      {node.bodySchema && <><h4>bodySchema</h4><Json value={node.bodySchema} /></>}
      {node.input && <><h4>input schema</h4><Json value={node.input} /></>}
      {node.responseSchema && <><h4>responseSchema</h4><Json value={node.responseSchema} /></>}
      {runs && <>
        <h4>Recent invocations</h4>
        {runs.length === 0 ? <div class="empty">none recorded</div> : (
          <table class="grid"><tbody>
            {runs.slice().reverse().map((r) => (
              <tr key={r.id}><td>{time(r.start)}</td><td><Status value={r.status} /></td><td>{ms(r.duration)}</td>
                <td><TraceLink id={r.traceId} /></td></tr>
            ))}
          </tbody></table>
        )}
      </>}
      <h4>config</h4>
      <Json value={node.config} />
    </aside>
  )
}
