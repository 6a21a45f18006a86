import { $RefParser } from '@apidevtools/json-schema-ref-parser'
import { ServiceError } from '../errors/index.ts'
import { HTTP_METHODS, type HttpMethod } from './tool-definition.ts'
import type { PlatformToolInput } from './platform-tools.ts'

export interface ImportRequest {
  openapi: Record<string, unknown>
  baseUrl: string
  prefix: string
  operations?: string[]
  defaultEnabled?: boolean
}

export interface ImportPlan {
  tools: Array<{ name: string, operation: string, input: PlatformToolInput }>
  skipped: Array<{ operation: string, reason: string }>
}

/** A document the import cannot read at all: 400 INVALID_OPENAPI. */
function rejected (detail: string): ServiceError<'INVALID_OPENAPI'> {
  return new ServiceError('INVALID_OPENAPI', { detail })
}

// OpenAPI 3.0 keywords that are not JSON Schema, or mean something else in 2020-12.
const OAS30_ONLY = new Set(['nullable', 'discriminator', 'xml', 'externalDocs', 'example'])

/**
 * An OpenAPI schema as JSON Schema 2020-12. 3.0's `nullable: true` becomes a `null` type (or a
 * `null` branch beside an enum/allOf), boolean exclusiveMinimum/Maximum become the numeric
 * form, and 3.0-only annotations are dropped. 3.1 schemas already are 2020-12 and pass through.
 */
export function toJsonSchema (schema: unknown, is30: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((item) => toJsonSchema(item, is30))
  if (schema === null || typeof schema !== 'object') return schema
  const source = schema as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(source)) {
    if (is30 && OAS30_ONLY.has(key)) continue
    if (key.startsWith('x-')) continue
    if (key === 'properties' || key === 'patternProperties' || key === '$defs' || key === 'definitions') {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toJsonSchema(v, is30)]))
    } else if (key === 'enum' || key === 'const' || key === 'default' || key === 'examples' || key === 'required') {
      out[key] = value
    } else {
      out[key] = toJsonSchema(value, is30)
    }
  }
  if (is30) {
    for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
      if (typeof source[flag] === 'boolean') {
        delete out[flag]
        if (source[flag] === true && typeof source[bound] === 'number') {
          out[flag] = source[bound]
          delete out[bound]
        }
      }
    }
    if (source.nullable === true) {
      if (typeof out.type === 'string') out.type = [out.type, 'null']
      else if (Array.isArray(out.type) && !out.type.includes('null')) out.type = [...out.type, 'null']
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null]
      if (out.type === undefined && out.enum === undefined) return { anyOf: [out, { type: 'null' }] }
    }
  }
  return out
}

function jsonContent (content: unknown): unknown {
  if (content === null || typeof content !== 'object') return undefined
  for (const [type, media] of Object.entries(content as Record<string, { schema?: unknown }>)) {
    if (/^application\/(?:[\w.+-]+\+)?json$/i.test(type.split(';')[0]?.trim() ?? '')) return media?.schema ?? {}
  }
  return undefined
}

function hasRef (value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (!Array.isArray(value) && typeof (value as Record<string, unknown>).$ref === 'string') return true
  return Object.values(value as Record<string, unknown>).some(hasRef)
}

interface Parameter { name?: unknown, in?: unknown, required?: unknown, schema?: unknown, description?: unknown }

/**
 * The tools an OpenAPI 3.0/3.1 document describes: one per operation with an operationId,
 * `<prefix>:<operationId>`, args = path and query parameters plus `body` (the JSON request
 * body), resultSchema = the JSON schema of its first 2xx answer. Local `$ref`s are resolved by
 * json-schema-ref-parser; external ones are not followed (the document is an admin's upload).
 */
export async function planImport (request: ImportRequest): Promise<ImportPlan> {
  const version = typeof request.openapi.openapi === 'string' ? request.openapi.openapi : ''
  if (!/^3\.[01]\./.test(version)) throw rejected('openapi must be an OpenAPI 3.0 or 3.1 document (its "openapi" field says which)')
  const is30 = version.startsWith('3.0.')
  let doc: Record<string, unknown>
  try {
    doc = await $RefParser.dereference(structuredClone(request.openapi), {
      resolve: { external: false },
      dereference: { circular: 'ignore' }
    }) as Record<string, unknown>
  } catch (err) {
    throw rejected(`cannot resolve the document's $refs: ${(err as Error).message}`)
  }
  const base = request.baseUrl.replace(/\/+$/, '')
  const wanted = request.operations === undefined ? undefined : new Set(request.operations)
  const plan: ImportPlan = { tools: [], skipped: [] }
  const paths = (doc.paths ?? {}) as Record<string, Record<string, unknown>>
  for (const [path, item] of Object.entries(paths)) {
    if (item === null || typeof item !== 'object') continue
    const shared = Array.isArray(item.parameters) ? item.parameters as Parameter[] : []
    for (const [method, raw] of Object.entries(item)) {
      const upper = method.toUpperCase()
      if (!['GET', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE'].includes(upper)) continue
      const op = raw as Record<string, unknown>
      const label = typeof op.operationId === 'string' ? op.operationId : `${upper} ${path}`
      if (typeof op.operationId !== 'string' || op.operationId === '') {
        if (wanted === undefined) plan.skipped.push({ operation: label, reason: 'no operationId' })
        continue
      }
      if (wanted !== undefined && !wanted.has(op.operationId)) continue
      const skip = (reason: string): void => { plan.skipped.push({ operation: label, reason }) }
      if (!(HTTP_METHODS as readonly string[]).includes(upper)) { skip(`method ${upper} is not supported`); continue }
      if (hasRef(op)) { skip('circular $ref'); continue }

      // Operation parameters override path-level ones with the same name and location.
      const params = new Map<string, Parameter>()
      for (const p of [...shared, ...(Array.isArray(op.parameters) ? op.parameters as Parameter[] : [])]) params.set(`${String(p.in)}:${String(p.name)}`, p)
      const properties: Record<string, unknown> = {}
      const required: string[] = []
      const queryArgs: string[] = []
      let unsupported: string | undefined
      for (const p of params.values()) {
        if (typeof p.name !== 'string') continue
        if (p.in === 'header' || p.in === 'cookie') {
          if (p.required === true) unsupported ??= `required ${String(p.in)} parameter ${p.name} is not supported`
          continue
        }
        if (p.in !== 'path' && p.in !== 'query') continue
        if (p.name === 'body' || p.name in properties) { unsupported ??= `parameter name ${p.name} is used twice`; continue }
        const schema = toJsonSchema(p.schema ?? {}, is30) as Record<string, unknown>
        properties[p.name] = typeof p.description === 'string' && schema.description === undefined ? { ...schema, description: p.description } : schema
        if (p.in === 'path' || p.required === true) required.push(p.name)
        if (p.in === 'query') queryArgs.push(p.name)
      }
      let bodyArg: string | undefined
      const requestBody = op.requestBody as { content?: unknown, required?: unknown } | undefined
      if (requestBody !== undefined) {
        const bodySchema = jsonContent(requestBody.content)
        if (bodySchema === undefined) {
          if (requestBody.required === true) unsupported ??= 'request body is not JSON'
        } else {
          properties.body = toJsonSchema(bodySchema, is30)
          bodyArg = 'body'
          if (requestBody.required === true) required.push('body')
        }
      }
      if (unsupported !== undefined) { skip(unsupported); continue }
      const responses = (op.responses ?? {}) as Record<string, { content?: unknown }>
      const ok = Object.keys(responses).filter((code) => /^2(\d\d|XX)$/i.test(code)).sort()[0]
      const resultSchema = ok === undefined ? undefined : jsonContent(responses[ok]?.content)
      const description = [op.summary, op.description].filter((d): d is string => typeof d === 'string' && d !== '').join(' — ') || `${upper} ${path}`
      plan.tools.push({
        name: `${request.prefix}:${op.operationId}`,
        operation: op.operationId,
        input: {
          description: description.slice(0, 2000),
          argsSchema: { type: 'object', properties, required, additionalProperties: false },
          ...(resultSchema === undefined ? {} : { resultSchema: toJsonSchema(resultSchema, is30) as Record<string, unknown> }),
          http: {
            method: upper as HttpMethod,
            url: base + path,
            ...(queryArgs.length > 0 && upper !== 'GET' && upper !== 'DELETE' ? { queryArgs } : {}),
            ...(bodyArg === undefined ? {} : { bodyArg })
          },
          ...(request.defaultEnabled === undefined ? {} : { defaultEnabled: request.defaultEnabled })
        }
      })
    }
  }
  for (const name of wanted ?? []) {
    if (!plan.tools.some((tool) => tool.operation === name) && !plan.skipped.some((s) => s.operation === name)) {
      plan.skipped.push({ operation: name, reason: 'no such operationId in the document' })
    }
  }
  return plan
}
