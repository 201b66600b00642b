import { useEffect, useState } from 'preact/hooks'

// `#/view/rest?key=value`: the view, the rest of the path, and the query.
export function parseHash(hash) {
  const [path, search = ''] = hash.replace(/^#\/?/, '').split('?')
  const [view, ...rest] = path.split('/')
  return { view: view || 'flows', rest: rest.map(decodeURIComponent), params: Object.fromEntries(new URLSearchParams(search)) }
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash(location.hash))
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash))
    addEventListener('hashchange', onChange)
    onChange() // the hash may have changed between the first draw and this effect: catch up once
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return route
}

export function go(hash) {
  location.hash = hash
}

export function Link({ href, children, ...props }) {
  return <a href={href} {...props}>{children}</a>
}
