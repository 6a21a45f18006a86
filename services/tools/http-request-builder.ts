import { HttpToolError } from './http-tool-error.ts'
import type { HttpToolSpec } from './tool-definition.ts'

/** One placeholder value as it goes into the URL: only the value's own characters, encoded. */
function encodePlaceholder (name: string, value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw placeholderError(name)
  const text = String(value)
  // '.' and '..' would be dot segments after any normaliser (even percent-encoded): refused.
  if (text === '' || text === '.' || text === '..') throw placeholderError(name)
  // encodeURIComponent leaves !'()* as they are; encode them too, so nothing but the value's
  // own characters, inside its own segment, reaches the upstream.
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function placeholderError (name: string): HttpToolError {
  return new HttpToolError(`argument "${name}" must be a non-empty string, number or boolean (and not "." or "..") to fill the URL`)
}

const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g

/**
 * A URL template parsed once: its origin, and its normalised path cut at the placeholders.
 * Only for templates whose placeholders all sit in the path, with no query or fragment, and
 * whose normalisation keeps every placeholder (no dot segment swallowing one): an encoded value
 * holds only characters the URL parser keeps as they are, so the path built from the pieces is
 * the one `new URL(filled)` would give. Anything else takes the general path (null).
 */
interface CompiledTemplate { origin: string, host: string, pieces: string[], names: string[] }
const compiledTemplates = new WeakMap<HttpToolSpec, CompiledTemplate | null>()

function compileTemplate (spec: HttpToolSpec): CompiledTemplate | null {
  let compiled = compiledTemplates.get(spec)
  if (compiled !== undefined) return compiled
  compiled = null
  const names = [...spec.url.matchAll(PLACEHOLDER)].map((m) => m[1] as string)
  if (!/[?#]/.test(spec.url)) {
    try {
      const parsed = new URL(spec.url)
      const parts = parsed.pathname.split(/%7B([A-Za-z0-9_.-]+)%7D/)
      const pieces = parts.filter((_, i) => i % 2 === 0)
      const found = parts.filter((_, i) => i % 2 === 1)
      const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
      if (parsed.search === '' && parsed.hash === '' && found.join('\n') === names.join('\n')) compiled = { origin: parsed.origin, host, pieces, names }
    } catch { /* an unparsable template fails on the general path, with its own message */ }
  }
  compiledTemplates.set(spec, compiled)
  return compiled
}

/**
 * The origin, path + query and body an args object makes for a spec: placeholders encoded, the
 * rest placed (query for GET and DELETE, else the JSON body), and the host to check.
 */
export function buildRequest (spec: HttpToolSpec, args: Record<string, unknown>): { origin: string, host: string, path: string, body: string | undefined } {
  const compiled = compileTemplate(spec)
  let url: URL | undefined
  let origin: string
  let host: string
  let path: string
  let used: string[]
  if (compiled !== null) {
    const { pieces, names } = compiled
    path = pieces[0] as string
    for (let i = 0; i < names.length; i++) path += encodePlaceholder(names[i] as string, args[names[i] as string]) + (pieces[i + 1] as string)
    origin = compiled.origin
    host = compiled.host
    used = names
  } else {
    used = []
    let missing: string | undefined
    const filled = spec.url.replace(PLACEHOLDER, (_, name: string) => {
      used.push(name)
      try {
        return encodePlaceholder(name, args[name])
      } catch {
        missing ??= name
        return ''
      }
    })
    if (missing !== undefined) throw placeholderError(missing)
    url = new URL(filled)
    origin = url.origin
    host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    path = url.pathname
  }
  // As URL.searchParams does: the template's own query stays as written unless args are
  // appended, and then the whole query is serialised again.
  let query: URLSearchParams | undefined
  const toQuery = (key: string, value: unknown): void => {
    query ??= new URLSearchParams(url?.search ?? '')
    for (const item of Array.isArray(value) ? value : [value]) {
      query.append(key, item !== null && typeof item === 'object' ? JSON.stringify(item) : String(item))
    }
  }
  const withQuery = (): string => {
    if (query === undefined) return path + (url?.search ?? '')
    const search = query.toString()
    return search === '' ? path : `${path}?${search}`
  }
  const rest: Record<string, unknown> = {}
  for (const key in args) {
    if (!Object.hasOwn(args, key) || used.includes(key) || args[key] === undefined) continue
    rest[key] = args[key]
  }
  if (spec.method === 'GET' || spec.method === 'DELETE') {
    for (const key in rest) toQuery(key, rest[key])
    return { origin, host, path: withQuery(), body: undefined }
  }
  for (const key of spec.queryArgs ?? []) {
    if (key in rest) { toQuery(key, rest[key]); delete rest[key] }
  }
  if (spec.bodyArg !== undefined) {
    const body = rest[spec.bodyArg]
    return { origin, host, path: withQuery(), body: body === undefined ? undefined : JSON.stringify(body) }
  }
  return { origin, host, path: withQuery(), body: JSON.stringify(rest) }
}
