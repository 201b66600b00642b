// Automatic layout of the flow graph with dagre: left to right, in the order events travel.
import dagre from '@dagrejs/dagre'

export const NODE_W = 210
export const NODE_H = 58

export function layout(nodes, edges) {
  const g = new dagre.graphlib.Graph({ multigraph: true })
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 70, marginx: 20, marginy: 20 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H })
  for (const e of edges) g.setEdge(e.source, e.target, { width: 0, height: 0 }, e.id)
  dagre.layout(g)
  const at = {}
  for (const n of nodes) {
    const p = g.node(n.id)
    at[n.id] = { x: p.x - NODE_W / 2, y: p.y - NODE_H / 2 }
  }
  const routes = {}
  for (const e of edges) {
    const p = g.edge({ v: e.source, w: e.target, name: e.id })
    routes[e.id] = p ? p.points : []
  }
  const size = g.graph()
  return { at, routes, width: size.width || 0, height: size.height || 0 }
}
