import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, onLive } from './api.js'
import { useRoute, Link } from './router.jsx'
import { Flows } from './views/Flows.jsx'
import { Endpoints } from './views/Endpoints.jsx'
import { Traces } from './views/Traces.jsx'
import { Logs } from './views/Logs.jsx'
import { State } from './views/State.jsx'
import { Streams } from './views/Streams.jsx'
import { DeadLetters } from './views/DeadLetters.jsx'
import { Cron } from './views/Cron.jsx'
import { Runners } from './views/Runners.jsx'
import './style.css'

const VIEWS = [
  ['flows', 'Flows', Flows], ['endpoints', 'Endpoints', Endpoints], ['traces', 'Traces', Traces],
  ['logs', 'Logs', Logs], ['state', 'State', State], ['streams', 'Streams', Streams],
  ['dlq', 'Dead letters', DeadLetters], ['cron', 'Cron', Cron], ['runners', 'Runners', Runners],
]

function Header() {
  const [overview, setOverview] = useState(null)
  const [live, setLive] = useState(null)
  const [error, setError] = useState(null)
  useEffect(() => {
    api.get('/__steppe/api/overview').then(setOverview, setError)
    return onLive('tick', setLive)
  }, [])
  const health = overview && overview.health
  const status = (live && live.health) || (health && health.status) || '…'
  const reasons = health ? health.reasons.map((r) => `${r.component}: ${r.reason}`).join('\n') : ''
  return (
    <header class="top">
      <span class="brand">Steppe</span>
      {error && <span class="badge failing">{error.message}</span>}
      {overview && <span class="project" data-testid="project">{overview.project}</span>}
      {overview && <span class="badge mode">{overview.mode}</span>}
      <span class={`badge health ${status}`} title={reasons || 'no problem reported'} data-testid="health">
        health: {status}
      </span>
      <span class="badge" data-testid="inflight">
        in flight: {live ? live.inFlight : overview ? overview.inFlight : '…'}
      </span>
      {live && live.tracesSkipped > 0 && (
        <span class="badge degraded" title="more new traces a second than telemetry_rate: the others were sampled (failures are always recorded)">
          {live.tracesSkipped.toLocaleString()} trace(s) not recorded
        </span>
      )}
    </header>
  )
}

function App() {
  const route = useRoute()
  const current = VIEWS.find(([id]) => id === route.view) || VIEWS[0]
  const View = current[2]
  return (
    <div class="shell">
      <Header />
      <nav class="side">
        {VIEWS.map(([id, label]) => (
          <Link key={id} href={`#/${id}`} class={id === current[0] ? 'active' : ''}>{label}</Link>
        ))}
      </nav>
      <main class="view" data-view={current[0]}>
        <View route={route} />
      </main>
    </div>
  )
}

render(<App />, document.getElementById('app'))
