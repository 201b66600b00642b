'use strict'
// zod 3 schemas (Motia 0.4-0.10 projects pinned zod 3) as JSON Schema, through zod-to-json-schema.
//
// The converter reads a schema's `_def` tree only, so a schema built by the project's own zod 3 (not the
// runner's zod) converts as well; zod 4 schemas go through zod's own toJSONSchema in config.js.

let converter = null

function isZod3(value) {
  return value._def !== undefined && typeof value.safeParse === 'function' && value._zod === undefined
}

/**
 * `schema` as JSON Schema. `io` is 'input' for data coming in (a field with a default is optional, a
 * transform is described by what it accepts) and 'output' for data going out.
 */
function zod3ToJsonSchema(schema, io) {
  if (converter === null) converter = require('zod-to-json-schema').zodToJsonSchema
  const json = converter(schema, {
    $refStrategy: 'none', // a self-contained schema: the host validates each field on its own
    target: 'jsonSchema7',
    effectStrategy: io === 'input' ? 'input' : 'any',
    pipeStrategy: io === 'input' ? 'input' : 'output',
    // zod 3 strips unknown keys unless an object is .strict(): only then may the schema refuse them
    removeAdditionalStrategy: 'strict',
  })
  delete json.$schema
  return json
}

module.exports = { isZod3, zod3ToJsonSchema }
