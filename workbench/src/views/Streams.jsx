import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { Empty, ErrorNote, Json } from '../components.jsx'

// Live items come over the stream socket, through the same client module any page uses.
const CLIENT = '/__steppe/client.js'
let client = null
function streamClient() {
  if (!client) client = import(/* @vite-ignore */ CLIENT).then((m) => new m.Stream())
  return client
}

export function Streams({ route }) {
  const [streams, setStreams] = useState(null)
  const [name, setName] = useState(route.rest[0] || '')
  const [groupInput, setGroupInput] = useState(route.rest[1] || 'default')
  const [group, setGroup] = useState(route.rest[1] || '')
  const [error, setError] = useState(null)
  const [groups, setGroups] = useState(null)
  useEffect(() => {
    if (!name) return
    setGroups(null)
    api.get(`/__steppe/api/streams/${encodeURIComponent(name)}`).then(setGroups, setError)
  }, [name])
  useEffect(() => {
    api.get('/__steppe/api/streams').then((s) => {
      setStreams(s)
      if (!name && s.length) setName(s[0].name)
    }, setError)
  }, [])
  if (error) return <ErrorNote error={error} />
  if (!streams) return <Empty>Loading…</Empty>
  if (!streams.length) return <Empty>This project defines no stream.</Empty>
  return (
    <div class="split">
      <ul class="list" data-testid="stream-list">
        {streams.map((s) => (
          <li key={s.name} class={s.name === name ? 'active' : ''} onClick={() => { setName(s.name); setGroup('') }}>
            {s.name}<div class="muted">{s.language} · {s.path}</div>
          </li>
        ))}
      </ul>
      <div class="panel">
        <form class="toolbar" onSubmit={(e) => { e.preventDefault(); setGroup(groupInput) }}>
          <label>Group id <input value={groupInput} onInput={(e) => setGroupInput(e.currentTarget.value)} data-testid="stream-group" /></label>
          <button type="submit" class="primary" data-testid="stream-open">Watch</button>
        </form>
        {groups && groups.length > 0 && (
          <div class="toolbar" data-testid="stream-groups">
            <span class="muted">groups:</span>
            {groups.map((g) => (
              <button key={g.groupId} class={g.groupId === group ? 'primary' : ''}
                      onClick={() => { setGroupInput(g.groupId); setGroup(g.groupId) }}>{g.groupId} ({g.count})</button>
            ))}
          </div>
        )}
        {group ? <GroupItems key={`${name}/${group}`} stream={name} group={group} /> : <Empty>Enter a group id to watch its items live.</Empty>}
      </div>
    </div>
  )
}

function GroupItems({ stream, group }) {
  const [items, setItems] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => {
    let sub = null
    let stop = false
    api.get(`/__steppe/api/streams/${encodeURIComponent(stream)}/${encodeURIComponent(group)}`).then((rows) => !stop && setItems(rows), setError)
    streamClient().then((s) => {
      if (stop) return
      sub = s.subscribeGroup(stream, group)
      sub.addChangeListener((rows) => setItems(rows ? [...rows] : []))
      sub.onError((e) => setError(new Error(e.message || e.code)))
    }, setError)
    return () => { stop = true; if (sub) sub.close() }
  }, [stream, group])
  return (
    <div>
      <ErrorNote error={error} />
      <h3>{stream} / {group} <span class="badge ok">live</span></h3>
      {items && items.length === 0 && <Empty>No item in this group yet.</Empty>}
      {items && items.length > 0 && (
        <table class="grid" data-testid="stream-items"><thead><tr><th>id</th><th>item</th></tr></thead>
          <tbody>{items.map((it) => <tr key={it.id} data-id={it.id}><td class="mono">{it.id}</td><td><Json value={it} /></td></tr>)}</tbody></table>
      )}
    </div>
  )
}
