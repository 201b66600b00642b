import { json } from './format.js'

export function Json({ value, ...props }) {
  return <pre class="json" {...props}>{value === undefined ? '' : json(value)}</pre>
}

export function Status({ value }) {
  return <span class={`badge ${value}`}>{value}</span>
}

export function ErrorNote({ error }) {
  if (!error) return null
  return <div class="error-note" role="alert">{error.message || String(error)}</div>
}

export function Empty({ children }) {
  return <div class="empty">{children}</div>
}

export function TraceLink({ id }) {
  if (!id) return null
  return <a class="mono" href={`#/traces/${id}`} data-trace={id}>{id.slice(0, 8)}</a>
}
