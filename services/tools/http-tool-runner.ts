import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { Agent, type Dispatcher } from 'undici'
import { TtlCache } from '../ttl-cache.ts'
import type { ToolSigner } from './tool-signer.ts'
import { validatorFor } from './schema-validation.ts'
import type { HttpToolSpec, ToolDefinition } from './tool-definition.ts'
import { McpToolClient } from './mcp-tool-client.ts'
import { callMcpTool } from './mcp-tool-call.ts'

// Cloud metadata and other link-local services: never reachable, whatever TOOL_UPSTREAMS says.
const LINK_LOCAL = new BlockList()
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4')
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6')
LINK_LOCAL.addSubnet('::ffff:169.254.0.0', 112, 'ipv6')

/** True for 169.254.0.0/16, fe80::/10 and IPv4-mapped 169.254.x.x. */
export function isLinkLocal (address: string): boolean {
  const family = isIP(address)
  if (family === 0) return false
  return LINK_LOCAL.check(address, family === 4 ? 'ipv4' : 'ipv6')
}

class RefusedAddressError extends Error {
  readonly code = 'ELINKLOCAL'
  constructor (address: string) {
    super(`refused address ${address} (link-local)`)
  }
}

type LookupFn = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void

export interface DnsCacheOptions {
  /** How long an answer is reused (ms). Default 30 s; 0 turns the cache off. */
  ttlMs?: number
  /** Most answers kept; the oldest goes first. Default 1000. */
  maxEntries?: number
  /** The clock, in ms; tests pass a fake one. Default Date.now. */
  now?: () => number
}

/**
 * net.connect's lookup, refusing link-local answers: the check happens on the address the
 * socket will really use, so a DNS answer cannot swap in 169.254.169.254 after a check.
 *
 * Answers are cached for a short while (default 30 s, bounded), so a new pooled connection to a
 * known upstream does not wait on the resolver. The cache sits inside this lookup, before the
 * check: every use of an answer, fresh or cached, is checked, and once an entry expires the name
 * is resolved (and checked) again, so a rebinding DNS gains nothing from it. Failures are not
 * cached. (undici's own dns interceptor was not used: it resolves before the connection and
 * rewrites the request's origin to the address, which would put the check away from the socket.)
 * The lookup runs only when the pool opens a connection; a kept-alive one needs none.
 */
export function guardedLookup (resolver: LookupFn = dnsLookup as unknown as LookupFn, cacheOptions: DnsCacheOptions = {}): LookupFn {
  type Answer = { address: string | LookupAddress[], family: number | undefined }
  const answers = new TtlCache<Answer>(cacheOptions.ttlMs ?? 30_000, { maxEntries: cacheOptions.maxEntries ?? 1000, now: cacheOptions.now })
  const ask = async (hostname: string, options: LookupOptions): Promise<Answer> => await new Promise((resolve, reject) => {
    resolver(hostname, options, (err, address, family) => { if (err !== null) reject(err); else resolve({ address, family }) })
  })
  return (hostname, options, callback) => {
    // The options change the shape of the answer (one address or all, which family).
    const key = `${hostname}\n${options.all === true ? 'all' : 'one'}\n${options.family ?? 0}\n${options.hints ?? 0}`
    // The callback runs on a tick of its own, as dns.lookup's does: what it throws is not
    // swallowed by the promise.
    answers.get(key, async () => await ask(hostname, options)).then(({ address, family }) => {
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address]
      const refused = addresses.find(isLinkLocal)
      if (refused !== undefined) process.nextTick(callback, new RefusedAddressError(refused), '', 0)
      else process.nextTick(callback, null, address, family)
    }, (err: NodeJS.ErrnoException) => { process.nextTick(callback, err, '', 0) })
  }
}

/** A failed HTTP tool call; the message names the tool and the cause, never a header. */
export class HttpToolError extends Error {
  override name = 'HttpToolError'
  readonly upstreamStatus: number | null
  readonly resultBytes: number | null
  constructor (message: string, upstreamStatus: number | null = null, resultBytes: number | null = null) {
    super(message)
    this.upstreamStatus = upstreamStatus
    this.resultBytes = resultBytes
  }
}

export interface HttpCall {
  tenantId: string
  userId: string
  executionId: string
  callIndex: number
  args: unknown
  /** Aborts the request when the run is over. */
  runEnded?: AbortSignal | undefined
}

export interface HttpCallResult {
  value: unknown
  upstreamStatus: number
  resultBytes: number
}

export interface HttpToolRunnerOptions {
  signer: ToolSigner
  /** Replaces the system resolver (tests map a name to an address); the link-local guard stays. */
  lookup?: LookupFn
  /** The resolver's answer cache (TTL, size, clock); the link-local guard checks every use. */
  dnsCache?: DnsCacheOptions
  /** Connections kept per upstream origin. */
  connectionsPerOrigin?: number
  /**
   * TOOL_RESULT_MAX_BYTES: no body is read past it, whatever the tool's maxResponseKB says
   * (an admin may allow up to 64 MB per tool; the service-wide result cap still holds).
   */
  maxResultBytes: number
  /** Told when a remote MCP server says its tools changed. */
  onMcpToolsChanged?: (server: string) => void
}

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

type ResponseBody = Dispatcher.ResponseData['body']

/**
 * A body whose content-length was declared (and found within the limit): HTTP/1.1 framing ends
 * it at that length (undici fails a response that sends less), so it is read in one go, without
 * the per-chunk stream iteration.
 */
async function readWhole (body: ResponseBody): Promise<Buffer> {
  const bytes = await body.bytes()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A body of unknown length, read chunk by chunk and cut off (socket closed) past `limit`. */
async function readUpTo (body: ResponseBody, limit: number, overLimit: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length
    if (bytes > limit) {
      // Destroying the body aborts the request and closes its socket: nothing more is read.
      body.destroy()
      throw overLimit()
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, bytes)
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * Calls platform tools over HTTP: one pooled keep-alive agent for every upstream, no redirects
 * (undici follows none unless told), a deadline that aborts the request and destroys its socket,
 * and the body read as a stream and cut off at the tool's maxResponseKB.
 */
export class HttpToolRunner {
  private readonly agent: Agent
  private readonly signer: ToolSigner
  private readonly maxResultBytes: number
  /** Remote MCP servers' tools, on the same guarded pool. */
  readonly mcp: McpToolClient

  constructor (options: HttpToolRunnerOptions) {
    this.signer = options.signer
    this.maxResultBytes = options.maxResultBytes
    this.agent = new Agent({
      connections: options.connectionsPerOrigin ?? 64,
      keepAliveTimeout: 10_000,
      connect: { lookup: guardedLookup(options.lookup, options.dnsCache) }
    })
    this.mcp = new McpToolClient({ dispatcher: this.agent, onToolsChanged: options.onMcpToolsChanged })
  }

  async call (tool: ToolDefinition & { http: HttpToolSpec }, call: HttpCall): Promise<HttpCallResult> {
    const spec = tool.http
    const args = (call.args ?? {}) as Record<string, unknown>
    if (typeof args !== 'object' || Array.isArray(args)) throw new HttpToolError('arguments must be an object')
    if (spec.mcp !== undefined) {
      const url = new URL(spec.url)
      const assertion = this.signer.sign({ audience: url.origin, userId: call.userId, tenantId: call.tenantId, executionId: call.executionId, tool: tool.name }).token
      return await callMcpTool(this.mcp, { ...tool, http: spec }, spec.mcp, args, call, { assertion, maxResultBytes: this.maxResultBytes })
    }
    const { origin, host, path, body } = buildRequest(spec, args)
    // An IP literal never goes through the lookup, so it is checked here.
    if (isLinkLocal(host)) throw new HttpToolError(`refused address ${host} (link-local)`)

    // A new assertion (and jti) per call, so an upstream can refuse a replayed one.
    const assertion = this.signer.sign({ audience: origin, userId: call.userId, tenantId: call.tenantId, executionId: call.executionId, tool: tool.name }).token
    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort(new HttpToolError(`timed out after ${spec.timeoutMs} ms`)) }, spec.timeoutMs)
    const onRunEnded = (): void => { deadline.abort(new HttpToolError('the run ended before the upstream answered')) }
    call.runEnded?.addEventListener('abort', onRunEnded, { once: true })
    if (call.runEnded?.aborted === true) onRunEnded()
    try {
      const headers: Record<string, string> = {
        accept: 'application/json',
        authorization: `Bearer ${assertion}`,
        'idempotency-key': `${call.executionId}:${call.callIndex}`,
        'user-agent': 'tenant-enclave'
      }
      if (body !== undefined) headers['content-type'] = 'application/json'
      let res
      try {
        res = await this.agent.request({
          origin,
          path,
          method: spec.method,
          headers,
          body,
          signal: deadline.signal,
          headersTimeout: spec.timeoutMs,
          bodyTimeout: spec.timeoutMs
        })
      } catch (err) {
        throw this.failure(err, deadline.signal, spec)
      }
      const status = res.statusCode
      if (status < 200 || status >= 300) {
        // A small error body is read so the connection can be reused; a big one closes it.
        await res.body.dump({ limit: 16 * 1024 }).catch(() => {})
        const cause = status >= 300 && status < 400 ? `upstream answered ${status} (redirects are not followed)` : `upstream answered ${status}`
        throw new HttpToolError(cause, status)
      }
      const toolLimit = spec.maxResponseKB * 1024
      const limit = Math.min(toolLimit, this.maxResultBytes)
      const overLimit = toolLimit <= this.maxResultBytes
        ? `response body over ${spec.maxResponseKB} KB`
        : `response body over the tool result limit of ${this.maxResultBytes} bytes (TOOL_RESULT_MAX_BYTES)`
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > limit) {
        res.body.destroy()
        throw new HttpToolError(overLimit, status)
      }
      let data: Buffer
      try {
        data = Number.isFinite(declared) ? await readWhole(res.body) : await readUpTo(res.body, limit, () => new HttpToolError(overLimit, status))
      } catch (err) {
        if (err instanceof HttpToolError) throw err
        throw this.failure(err, deadline.signal, spec, status)
      }
      const bytes = data.length
      if (status === 204 || bytes === 0) {
        if (status === 204) return { value: null, upstreamStatus: status, resultBytes: 0 }
        throw new HttpToolError(`upstream answered ${status} with an empty body`, status, 0)
      }
      const contentType = String(res.headers['content-type'] ?? '')
      let value: unknown
      try {
        if (!JSON_TYPE.test(contentType)) throw new Error('not JSON')
        value = JSON.parse(data.toString('utf8'))
      } catch {
        throw new HttpToolError(`upstream answered ${status} with a non-JSON body`, status, bytes)
      }
      if (tool.resultSchema !== undefined) {
        const validator = validatorFor(tool.resultSchema)
        if (!validator.check(value)) throw new HttpToolError(`result does not match resultSchema: ${validator.firstError()}`, status, bytes)
      }
      return { value, upstreamStatus: status, resultBytes: bytes }
    } finally {
      clearTimeout(timer)
      call.runEnded?.removeEventListener('abort', onRunEnded)
    }
  }

  async close (): Promise<void> {
    await this.mcp.close()
    await this.agent.close()
  }

  private failure (err: unknown, signal: AbortSignal, spec: HttpToolSpec, status: number | null = null): HttpToolError {
    if (signal.aborted && signal.reason instanceof HttpToolError) return new HttpToolError(signal.reason.message, status)
    if (err instanceof HttpToolError) return err
    const code = (err as { code?: string }).code ?? ''
    const known: Record<string, string> = {
      ECONNREFUSED: 'connection refused',
      ECONNRESET: 'connection reset by the upstream',
      UND_ERR_SOCKET: 'connection closed by the upstream',
      ENOTFOUND: 'host not found',
      EAI_AGAIN: 'host not found (DNS)',
      UND_ERR_HEADERS_TIMEOUT: `timed out after ${spec.timeoutMs} ms`,
      UND_ERR_BODY_TIMEOUT: `timed out after ${spec.timeoutMs} ms`,
      UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
      ELINKLOCAL: (err as Error).message
    }
    return new HttpToolError(known[code] ?? 'connection failed', status)
  }
}
