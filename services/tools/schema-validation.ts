import { createHash } from 'node:crypto'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

/**
 * Admin-supplied JSON Schemas (platform tools' args and results) are JSON Schema 2020-12,
 * checked and compiled by Ajv. Not strict: OpenAPI documents carry annotations Ajv does not know
 * (example, xml, x-*), which describe and never constrain.
 */
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true })
addFormats.default(ajv)

/** Why `schema` is not a usable JSON Schema, or null when it is (meta-schema and compilation). */
export function schemaProblem (schema: unknown): string | null {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return 'must be a JSON Schema object'
  if (!ajv.validateSchema(schema)) return ajv.errorsText(ajv.errors, { dataVar: 'schema' })
  try {
    // Compiling catches what the meta-schema cannot: a bad regex, an unresolvable $ref.
    ajv.compile(schema)
    return null
  } catch (err) {
    return (err as Error).message
  } finally {
    ajv.removeSchema(schema)
  }
}

export interface SchemaValidator {
  check: (value: unknown) => boolean
  /** The first problem of the last failed check, like "/id must be integer". */
  firstError: () => string
}

const MAX_CACHED = 2000
const compiled = new Map<string, SchemaValidator>()
const bySchema = new WeakMap<object, SchemaValidator>()

/**
 * The compiled validator for `schema`: each distinct schema is compiled once, however often the
 * catalogue is reloaded. Keyed by the schema's content, not by tool name and version: a tool
 * deleted and created again starts at version 1 once more, and must never meet the validator
 * of the schema it had before.
 */
export function validatorFor (schema: Record<string, unknown>): SchemaValidator {
  // Per call, the schema object the catalogue holds finds its validator without hashing; a
  // reloaded catalogue (new objects) still finds it by content, uncompiled again.
  const known = bySchema.get(schema)
  if (known !== undefined) return known
  const key = createHash('sha256').update(JSON.stringify(schema)).digest('base64url')
  let validator = compiled.get(key)
  if (validator === undefined) {
    const fn: ValidateFunction = ajv.compile(schema)
    // Ajv keeps every compiled schema by identity; we hold our own bounded cache instead.
    ajv.removeSchema(schema)
    validator = {
      check: (value) => fn(value) === true,
      firstError: () => {
        const first = fn.errors?.[0]
        if (first === undefined) return 'is invalid'
        const extra = first.keyword === 'additionalProperties' ? ` (${String(first.params.additionalProperty)})` : ''
        return `${first.instancePath === '' ? '' : first.instancePath + ' '}${first.message ?? 'is invalid'}${extra}`
      }
    }
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value as string)
    compiled.set(key, validator)
  }
  bySchema.set(schema, validator)
  return validator
}

// Keywords with which json-schema-to-typescript writes text of the schema author's choosing into
// the declarations agents read: tsType is a raw TypeScript type, tsEnumNames enum member names.
const CODE_KEYWORDS = new Set(['tsType', 'tsEnumNames'])
// Where a schema holds subschemas (2020-12 and draft-07 spellings); anything else is data
// (const, enum, default, examples...) and is kept exactly as written.
const SUBSCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'])
const SUBSCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems'])
const SUBSCHEMAS = new Set(['items', 'additionalItems', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties'])

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A copy of `schema` without code-bearing keywords at any depth; property names and data stay. */
export function withoutCodeKeywords<T> (schema: T): T {
  if (!isPlainObject(schema)) return schema
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(schema)) {
    if (CODE_KEYWORDS.has(key)) continue
    if (SUBSCHEMA_MAPS.has(key) && isPlainObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, withoutCodeKeywords(sub)]))
    } else if ((SUBSCHEMA_LISTS.has(key) || SUBSCHEMAS.has(key)) && Array.isArray(value)) {
      out[key] = value.map((sub) => withoutCodeKeywords(sub))
    } else if (SUBSCHEMAS.has(key)) {
      out[key] = withoutCodeKeywords(value)
    } else {
      out[key] = value
    }
  }
  return out as T
}
