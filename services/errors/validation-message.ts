import { closestNames } from './did-you-mean.ts'
import { UUID_PATTERN } from '../../schemas/paging.ts'
import { TENANT_ID_PATTERN } from '../../schemas/tenant.ts'

/** One schema validation error, as the validator (TypeBox's, or Ajv's) reports it. */
export interface ValidationIssue {
  instancePath: string
  keyword: string
  params?: Record<string, unknown>
  message?: string
}

export type ValidationPart = 'body' | 'querystring' | 'params' | 'headers' | string

// Names integrators send for a field by another name: suggested when the real one is allowed.
const ALIASES: Record<string, string[]> = {
  code: ['script', 'source', 'src', 'program', 'js', 'ts', 'body'],
  language: ['lang', 'type'],
  timeoutMs: ['timeout', 'timeout_ms', 'timeoutSeconds', 'deadline']
}

type Schema = Record<string, unknown>

/** The object schema that describes the value at `instancePath` (for its property names). */
function schemaAt (root: unknown, instancePath: string): Schema | undefined {
  let schema = root as Schema | undefined
  for (const segment of instancePath.split('/').slice(1)) {
    if (schema === undefined) return undefined
    const properties = schema.properties as Record<string, Schema> | undefined
    schema = properties?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')] ?? (schema.items as Schema | undefined)
  }
  return schema
}

function suggestionFor (name: string, allowed: string[]): string | undefined {
  const close = closestNames(name, allowed, 1)[0]
  if (close !== undefined) return close
  return allowed.find((field) => ALIASES[field]?.includes(name.toLowerCase()) === true)
}

/** What a value past a schema's bound must be instead; `{limit}` is the bound (minLength 1 is said apart). */
const BOUND_PHRASES: Record<string, string> = {
  maxLength: 'must be at most {limit} characters long',
  minimum: 'must be at least {limit}',
  maximum: 'must be at most {limit}',
  exclusiveMinimum: 'must be greater than {limit}',
  exclusiveMaximum: 'must be less than {limit}',
  minItems: 'must have at least {limit} items',
  maxItems: 'must have at most {limit} items'
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', object: 'a JSON object', array: 'an array', null: 'null'
}

const FORMAT_NAMES: Record<string, string> = {
  uuid: 'a UUID (like 0190a6f2-7b4e-7c3a-9d1e-2f3a4b5c6d7e)', 'date-time': 'an RFC 3339 date-time (like 2026-01-31T12:00:00Z)', date: 'a date (like 2026-01-31)', uri: 'an absolute URI', email: 'an email address'
}

// Patterns the service's schemas use, said in words.
const PATTERN_NAMES: Record<string, string> = {
  [UUID_PATTERN]: FORMAT_NAMES.uuid as string,
  [TENANT_ID_PATTERN]: '1 to 128 letters, digits, dots, underscores or hyphens, starting with a letter or digit'
}

function quoteList (values: unknown[]): string {
  return values.map((value) => typeof value === 'string' ? value : JSON.stringify(value)).join(', ')
}

/**
 * Schema validation errors as one message an integrator can act on: what is wrong with which
 * field, the allowed values or limits, and the nearest allowed field name for an unknown one.
 * `schema` is the route's schema for `part`, to list allowed property names.
 */
export function validationMessage (part: ValidationPart, issues: readonly ValidationIssue[], schema?: unknown): string {
  const name = (instancePath: string): string => {
    const path = instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.')
    if (part === 'querystring') return path === '' ? 'the query string' : `query parameter '${path}'`
    if (part === 'params') return path === '' ? 'the path' : `path parameter '${path}'`
    if (part === 'headers') return path === '' ? 'the headers' : `header '${path}'`
    return path === '' ? 'the body' : path
  }
  const fieldWord = part === 'querystring' ? 'query parameter' : part === 'headers' ? 'header' : part === 'params' ? 'path parameter' : 'field'
  const parts: string[] = []
  // A union of literals fails as one `const` per literal and an `anyOf`: one list of values.
  const anyOfPaths = new Set(issues.filter((issue) => issue.keyword === 'anyOf').map((issue) => issue.instancePath))
  const constsAt = new Map<string, unknown[]>()
  for (const issue of issues) {
    if (issue.keyword !== 'const' || !anyOfPaths.has(issue.instancePath)) continue
    constsAt.set(issue.instancePath, [...(constsAt.get(issue.instancePath) ?? []), issue.params?.allowedValue ?? issue.params?.value])
  }
  const suggested = new Set<string>()
  const unknownPaths = new Set<string>()
  // Unknown fields first: a misspelt field is also a missing one, and the suggestion says both.
  for (const issue of issues) {
    if (issue.keyword !== 'additionalProperties') continue
    const extra = (issue.params?.additionalProperties ?? issue.params?.additionalProperty) as string[] | string | undefined
    const names = Array.isArray(extra) ? extra : extra !== undefined ? [extra] : []
    const properties = schemaAt(schema, issue.instancePath)?.properties as Record<string, unknown> | undefined
    const allowed = Object.keys(properties ?? {})
    for (const extraName of names) {
      unknownPaths.add(`${issue.instancePath}/${extraName}`)
      const suggestion = suggestionFor(extraName, allowed)
      const prefix = issue.instancePath === '' ? '' : `${name(issue.instancePath)}: `
      if (suggestion !== undefined) {
        suggested.add(`${issue.instancePath}/${suggestion}`)
        parts.push(`${prefix}unknown ${fieldWord} '${extraName}' (did you mean '${suggestion}'?)`)
      } else {
        parts.push(`${prefix}unknown ${fieldWord} '${extraName}' (allowed: ${allowed.length === 0 ? 'none' : allowed.join(', ')})`)
      }
    }
  }
  for (const issue of issues) {
    const p = issue.params ?? {}
    const field = name(issue.instancePath)
    switch (issue.keyword) {
      case 'additionalProperties':
        break
      case 'boolean':
        // `additionalProperties: false` seen from the property's side: said above.
        if (!unknownPaths.has(issue.instancePath)) parts.push(`unknown ${fieldWord} '${issue.instancePath.split('/').pop() ?? ''}'`)
        break
      case 'required': {
        const missing = (p.requiredProperties ?? (p.missingProperty !== undefined ? [p.missingProperty] : [])) as string[]
        for (const property of missing) {
          if (suggested.has(`${issue.instancePath}/${property}`)) continue
          const where = issue.instancePath === '' ? '' : ` in ${field}`
          parts.push(`missing required ${fieldWord} '${property}'${where}`)
        }
        break
      }
      case 'enum':
        parts.push(`${field} must be one of: ${quoteList((p.allowedValues ?? []) as unknown[])}`)
        break
      case 'anyOf': {
        const values = constsAt.get(issue.instancePath)
        parts.push(values !== undefined ? `${field} must be one of: ${quoteList(values)}` : `${field} does not match any of the allowed forms`)
        break
      }
      case 'const':
        if (constsAt.has(issue.instancePath)) break
        parts.push(`${field} must be ${quoteList([p.allowedValue ?? p.value])}`)
        break
      case 'type':
        parts.push(`${field} must be ${TYPE_NAMES[String(p.type)] ?? String(p.type)}`)
        break
      case 'minLength':
        parts.push(p.limit === 1 ? `${field} must not be empty` : `${field} must be at least ${String(p.limit)} characters long`)
        break
      case 'format':
        parts.push(`${field} must be ${FORMAT_NAMES[String(p.format)] ?? `a valid ${String(p.format)}`}`)
        break
      case 'pattern':
        parts.push(PATTERN_NAMES[String(p.pattern)] !== undefined ? `${field} must be ${PATTERN_NAMES[String(p.pattern)]}` : `${field} must match the pattern ${String(p.pattern)}`)
        break
      default: {
        const bound = BOUND_PHRASES[issue.keyword]
        parts.push(bound !== undefined ? `${field} ${bound.replace('{limit}', String(p.limit))}` : `${field} ${issue.message ?? 'is not valid'}`)
      }
    }
  }
  const unique = [...new Set(parts)]
  return unique.length === 0 ? `${name('')} is not valid` : unique.join('; ')
}
