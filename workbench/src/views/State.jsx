import { useEffect, useState } from 'preact/hooks'
import { api, onLive } from '../api.js'
import { Empty, ErrorNote, Json } from '../components.jsx'
import { duration } from '../format.js'

export function State({ route }) {
  const [groups, setGroups] = useState(null)
  const [group, setGroup] = useState(route.rest[0] || '')
  const [keys, setKeys] = useState(null)
  const [editing, setEditing] = useState(null) // {key, text, ttl}
  const [error, setError] = useState(null)
  const [tick, setTick] = useState(0)

  useEffect(() => { api.get('/__steppe/api/state').then((r) => setGroups(r.groups), setError) }, [tick])
  useEffect(() => {
    if (!group) return setKeys(null)
    api.get(`/__steppe/api/state/${encodeURIComponent(group)}`).then((r) => setKeys(r.keys), setError)
  }, [group, tick])
  useEffect(() => {
    let timer = null
    return onLive('state', () => {
      if (!timer) timer = setTimeout(() => { timer = null; setTick((t) => t + 1) }, 250)
    })
  }, [])

  async function save(e) {
    e.preventDefault()
    let value
    try {
      value = JSON.parse(editing.text)
    } catch (err) {
      return setError(new Error(`the value is not JSON: ${err.message}`))
    }
    const body = { value }
    if (editing.ttl) body.ttl = Number(editing.ttl)
    try {
      await api.put(`/__steppe/api/state/${encodeURIComponent(group)}/${encodeURIComponent(editing.key)}`, body)
      setEditing(null)
      setError(null)
      setTick((t) => t + 1)
    } catch (err) {
      setError(err)
    }
  }
  async function remove(key) {
    if (!confirm(`Delete ${group} / ${key}?`)) return
    await api.del(`/__steppe/api/state/${encodeURIComponent(group)}/${encodeURIComponent(key)}`).catch(setError)
    setTick((t) => t + 1)
  }
  async function clear() {
    if (!confirm(`Delete every key of group ${group}?`)) return
    await api.del(`/__steppe/api/state/${encodeURIComponent(group)}`).catch(setError)
    setTick((t) => t + 1)
  }

  return (
    <div class="split">
      <ul class="list" data-testid="state-groups">
        {groups && groups.length === 0 && <li class="muted">no state yet</li>}
        {(groups || []).map((g) => (
          <li key={g} class={g === group ? 'active' : ''} onClick={() => { setGroup(g); setEditing(null) }}>{g}</li>
        ))}
        <li><button onClick={() => {
          const g = prompt('New group name')
          if (g) { setGroup(g); setEditing({ key: '', text: '{}', ttl: '', isNew: true }) }
        }}>+ new key in a group…</button></li>
      </ul>
      <div class="panel">
        <ErrorNote error={error} />
        {!group && <Empty>Pick a group.</Empty>}
        {group && <>
          <div class="toolbar"><h3>{group}</h3>
            <button onClick={() => setEditing({ key: '', text: '{}', ttl: '', isNew: true })}>+ key</button>
            <button class="danger" onClick={clear} data-testid="state-clear">Clear group</button></div>
          {keys && (
            <table class="grid" data-testid="state-keys">
              <thead><tr><th>Key</th><th>Value</th><th>TTL left</th><th /></tr></thead>
              <tbody>{keys.map((k) => (
                <tr key={k.key} data-key={k.key}>
                  <td class="mono">{k.key}</td>
                  <td><code class="value">{JSON.stringify(k.value).slice(0, 200)}</code></td>
                  <td>{k.ttlLeft === null ? '—' : duration(k.ttlLeft)}</td>
                  <td class="actions">
                    <button onClick={() => setEditing({ key: k.key, text: JSON.stringify(k.value, null, 2), ttl: '' })} data-testid="state-edit">Edit</button>
                    <button class="danger" onClick={() => remove(k.key)}>Delete</button>
                  </td>
                </tr>
              ))}</tbody>
            </table>
          )}
          {editing && (
            <form class="editor" onSubmit={save} data-testid="state-editor">
              <label class="field">Key <input value={editing.key} readOnly={!editing.isNew} required
                onInput={(e) => setEditing({ ...editing, key: e.currentTarget.value })} /></label>
              <label class="field">Value (JSON)
                <textarea rows="8" class="mono" value={editing.text} data-testid="state-value"
                  onInput={(e) => setEditing({ ...editing, text: e.currentTarget.value })} /></label>
              <label class="field">TTL in seconds (empty: none)
                <input value={editing.ttl} onInput={(e) => setEditing({ ...editing, ttl: e.currentTarget.value })} /></label>
              <button type="submit" class="primary" data-testid="state-save">Save</button>
              <button type="button" onClick={() => setEditing(null)}>Cancel</button>
              {!editing.isNew && keys && <><h4>Current value</h4><Json value={(keys.find((k) => k.key === editing.key) || {}).value} /></>}
            </form>
          )}
        </>}
      </div>
    </div>
  )
}
