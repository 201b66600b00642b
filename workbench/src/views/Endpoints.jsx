import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { Empty, ErrorNote, Json } from '../components.jsx'
import { example } from '../example.js'
import { ms } from '../format.js'

const NO_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS'])

export function Endpoints({ route }) {
  const [steps, setSteps] = useState(null)
  const [error, setError] = useState(null)
  const [name, setName] = useState(route.rest[0] || '')
  useEffect(() => {
    api.get('/__steppe/api/flows').then((g) => {
      const apis = g.nodes.filter((n) => n.kind === 'step' && n.type === 'api')
      setSteps(apis)
      if (!name && apis.length) setName(apis[0].name)
    }, setError)
  }, [])
  if (error) return <ErrorNote error={error} />
  if (!steps) return <Empty>Loading…</Empty>
  if (!steps.length) return <Empty>This project has no API step.</Empty>
  const step = steps.find((s) => s.name === name) || steps[0]
  return (
    <div class="split">
      <ul class="list" data-testid="endpoint-list">
        {steps.map((s) => (
          <li key={s.name} class={s.name === step.name ? 'active' : ''} onClick={() => setName(s.name)}>
            <span class={`method m-${s.method}`}>{s.method}</span> <span class="mono">{s.route}</span>
            <div class="muted">{s.name}{s.status !== 'ok' ? ` (${s.status})` : ''}</div>
          </li>
        ))}
      </ul>
      <RequestForm key={step.name} step={step} />
    </div>
  )
}

function RequestForm({ step }) {
  const params = [...step.route.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1])
  const [values, setValues] = useState(Object.fromEntries(params.map((p) => [p, ''])))
  const [queryText, setQueryText] = useState('')
  const [headersText, setHeadersText] = useState('{\n  "content-type": "application/json"\n}')
  const [bodyText, setBodyText] = useState(step.bodySchema ? JSON.stringify(example(step.bodySchema), null, 2) : '')
  const [result, setResult] = useState(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)

  async function send(e) {
    e.preventDefault()
    setError(null)
    let headers
    try {
      headers = headersText.trim() ? JSON.parse(headersText) : {}
    } catch (err) {
      setError(new Error(`headers are not JSON: ${err.message}`))
      return
    }
    const path = step.route.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, p) => encodeURIComponent(values[p] || ''))
    const q = queryText.trim() ? '?' + queryText.trim().split('\n').map((l) => l.trim()).filter(Boolean).join('&') : ''
    const init = { method: step.method, headers, credentials: 'same-origin' }
    if (!NO_BODY.has(step.method) && bodyText.trim()) init.body = bodyText
    setBusy(true)
    const started = performance.now()
    try {
      const res = await fetch(path + q, init)
      const text = await res.text()
      let body = text
      try { body = JSON.parse(text) } catch { /* not JSON: shown as text */ }
      setResult({ status: res.status, headers: Object.fromEntries(res.headers.entries()), body,
        duration: performance.now() - started, traceId: res.headers.get('x-trace-id') })
    } catch (err) {
      setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <form class="panel" onSubmit={send} data-testid="request-form">
      <h3><span class={`method m-${step.method}`}>{step.method}</span> <span class="mono">{step.route}</span></h3>
      {step.description && <p class="muted">{step.description}</p>}
      {step.error && <div class="error-note">{step.error}</div>}
      {params.map((p) => (
        <label key={p} class="field">:{p} <input value={values[p]} required
          onInput={(e) => setValues({ ...values, [p]: e.currentTarget.value })} data-param={p} /></label>
      ))}
      <label class="field">Query (one name=value a line)
        <textarea rows="2" value={queryText} onInput={(e) => setQueryText(e.currentTarget.value)} /></label>
      <label class="field">Headers (JSON)
        <textarea rows="3" value={headersText} onInput={(e) => setHeadersText(e.currentTarget.value)} /></label>
      {!NO_BODY.has(step.method) && (
        <label class="field">Body {step.bodySchema ? '(an example valid for bodySchema)' : ''}
          <textarea rows="8" class="mono" value={bodyText} onInput={(e) => setBodyText(e.currentTarget.value)}
                    data-testid="request-body" /></label>
      )}
      <button type="submit" class="primary" disabled={busy} data-testid="send">{busy ? 'Sending…' : 'Send'}</button>
      <ErrorNote error={error} />
      {result && (
        <div class="response" data-testid="response">
          <div class="response-line">
            <span class={`badge ${result.status < 400 ? 'ok' : 'error'}`} data-testid="response-status">{result.status}</span>
            <span>{ms(result.duration)}</span>
            {result.traceId && <a href={`#/traces/${result.traceId}`} data-testid="response-trace">open trace {result.traceId.slice(0, 8)}</a>}
          </div>
          <h4>Headers</h4><Json value={result.headers} />
          <h4>Body</h4><Json value={result.body} data-testid="response-body" />
        </div>
      )}
      {step.bodySchema && <details><summary>bodySchema</summary><Json value={step.bodySchema} /></details>}
      {step.responseSchema && <details><summary>responseSchema</summary><Json value={step.responseSchema} /></details>}
    </form>
  )
}
