// A valid example value for a JSON Schema: what the Endpoints form starts with.

export function example(schema, depth = 0) {
  if (!schema || typeof schema !== 'object' || depth > 8) return null
  if ('example' in schema) return schema.example
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0]
  if ('default' in schema) return schema.default
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0]
  for (const key of ['oneOf', 'anyOf']) if (Array.isArray(schema[key]) && schema[key].length) return example(schema[key][0], depth + 1)
  if (Array.isArray(schema.allOf)) return Object.assign({}, ...schema.allOf.map((s) => example(s, depth + 1) || {}))
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type
  switch (type || (schema.properties ? 'object' : schema.items ? 'array' : null)) {
    case 'object': {
      const out = {}
      const required = new Set(schema.required || [])
      for (const [name, sub] of Object.entries(schema.properties || {})) {
        if (required.size === 0 || required.has(name)) out[name] = example(sub, depth + 1)
      }
      return out
    }
    case 'array': {
      const n = Math.max(1, schema.minItems || 0)
      return Array.from({ length: n }, () => example(schema.items || {}, depth + 1))
    }
    case 'string': return stringExample(schema)
    case 'integer': return numberExample(schema, true)
    case 'number': return numberExample(schema, false)
    case 'boolean': return true
    case 'null': return null
    default: return null
  }
}

function stringExample(schema) {
  const formats = { email: 'ada@example.com', uri: 'https://example.com', 'date-time': new Date(0).toISOString(),
    date: '2024-01-01', uuid: '00000000-0000-4000-8000-000000000000' }
  if (schema.format && formats[schema.format]) return formats[schema.format]
  let s = 'example'
  if (schema.minLength && s.length < schema.minLength) s = s.padEnd(schema.minLength, 'x')
  if (schema.maxLength && s.length > schema.maxLength) s = s.slice(0, schema.maxLength)
  return s
}

function numberExample(schema, integer) {
  let n = 1
  if (typeof schema.minimum === 'number') n = Math.max(n, schema.minimum)
  if (typeof schema.exclusiveMinimum === 'number') n = Math.max(n, schema.exclusiveMinimum + (integer ? 1 : 0.5))
  if (typeof schema.maximum === 'number') n = Math.min(n, schema.maximum)
  return integer ? Math.ceil(n) : n
}
