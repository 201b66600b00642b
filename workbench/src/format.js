export function time(epoch) {
  if (!epoch) return ''
  const d = new Date(epoch * 1000)
  return d.toLocaleTimeString(undefined, { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0')
}

export function dateTime(epoch) {
  if (!epoch) return ''
  return new Date(epoch * 1000).toLocaleString(undefined, { hour12: false })
}

export function ms(value) {
  if (value === null || value === undefined) return '…'
  if (value < 1) return `${value.toFixed(2)} ms`
  if (value < 1000) return `${value.toFixed(1)} ms`
  return `${(value / 1000).toFixed(2)} s`
}

export function bytes(n) {
  if (n === null || n === undefined) return '—'
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—'
  if (seconds < 60) return `${seconds.toFixed(0)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}

export function json(value) {
  return JSON.stringify(value, null, 2)
}

export function short(id) {
  return id ? id.slice(0, 8) : ''
}
