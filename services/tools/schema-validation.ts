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
 * The compiled validator for `key` (tool name, version and role, e.g. "crm:get@3:args"): each
 * schema is compiled once per version, however often the catalogue is reloaded.
 */
export function validatorFor (key: string, schema: Record<string, unknown>): SchemaValidator {
  // Per call, the schema object the catalogue holds finds its validator without the key's
  // string map; a reloaded catalogue (new objects) still finds it by key, uncompiled again.
  const known = bySchema.get(schema)
  if (known !== undefined) return known
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
