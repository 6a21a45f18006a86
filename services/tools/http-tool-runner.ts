import { isIP } from 'node:net'
import { Agent } from 'undici'
import type { ToolSigner } from './tool-signer.ts'
import { validatorFor } from './schema-validation.ts'
import type { HttpToolSpec, ToolDefinition } from './tool-definition.ts'
import { McpToolClient } from './mcp-tool-client.ts'
import { callMcpTool } from './mcp-tool-call.ts'
import { HttpToolError } from './http-tool-error.ts'
import type { HttpCall, HttpCallResult } from './http-call.ts'
import { buildRequest } from './http-request-builder.ts'
import { readUpTo, readWhole } from './response-body.ts'
import { classifyAddress, guardedLookup, refusalMessage, type DnsCacheOptions, type LookupFn } from './upstream-address-guard.ts'
import { DEFAULT_TIER_SHARE_PERCENT, UpstreamAdmission, type UpstreamCaps } from './upstream-admission.ts'
import type { Tier } from '../tenants/tiers.ts'

export { HttpToolError } from './http-tool-error.ts'
export { buildRequest } from './http-request-builder.ts'

export type { HttpCall, HttpCallResult }

export interface HttpToolRunnerOptions {
  signer: ToolSigner
  /** Replaces the system resolver (tests map a name to an address); the address guard stays. */
  lookup?: LookupFn
  /** The resolver's answer cache (TTL, size, clock); the address guard checks every use. */
  dnsCache?: DnsCacheOptions
  /**
   * TOOL_UPSTREAMS: a private or loopback IP literal host is called only if one of these origins
   * names it. Absent (tests, embedding), every IP literal that is not metadata is called.
   */
  upstreams?: string[]
  /** TOOL_UPSTREAM_PRIVATE_HOSTS: hostnames whose DNS answers may be private (never metadata). */
  privateHosts?: string[]
  /** Connections per origin, per-tenant and per-tier in-flight caps (upstream-admission.ts). */
  caps?: Partial<UpstreamCaps>
  /** The caller's tier (the tenant directory, cached); without it every tenant counts as free. */
  tierOf?: (tenantId: string) => Tier | Promise<Tier>
  /**
   * TOOL_RESULT_MAX_BYTES: no body is read past it, whatever the tool's maxResponseKB says
   * (an admin may allow up to 64 MB per tool; the service-wide result cap still holds).
   */
  maxResultBytes: number
  /** Told when a remote MCP server says its tools changed. */
  onMcpToolsChanged?: (server: string) => void
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/** Where a remote MCP server's tool call goes: its endpoint's origin and host (the SDK sends the body). */
function mcpTarget (url: string): { origin: string, host: string, path: string, body: undefined } {
  const parsed = new URL(url)
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  return { origin: parsed.origin, host, path: parsed.pathname, body: undefined }
}

/**
 * Calls platform tools over HTTP: one pooled keep-alive agent for every upstream, each call
 * admitted by UpstreamAdmission (tenant, tier and origin caps) and connected only to an address
 * the guard allows (upstream-address-guard.ts), no redirects
 * (undici follows none unless told), a deadline that aborts the request and destroys its socket,
 * and the body read as a stream and cut off at the tool's maxResponseKB.
 */
export class HttpToolRunner {
  private readonly agent: Agent
  private readonly signer: ToolSigner
  private readonly maxResultBytes: number
  /** Remote MCP servers' tools, on the same guarded pool. */
  readonly mcp: McpToolClient
  readonly admission: UpstreamAdmission
  private readonly tierOf: (tenantId: string) => Tier | Promise<Tier>
  /** TOOL_UPSTREAMS origins, as `new URL` writes them; null: any literal may be called. */
  private readonly listedOrigins: Set<string> | null

  constructor (options: HttpToolRunnerOptions) {
    this.signer = options.signer
    this.maxResultBytes = options.maxResultBytes
    this.tierOf = options.tierOf ?? (() => 'free')
    this.listedOrigins = options.upstreams === undefined ? null : new Set(options.upstreams.map(normalOrigin))
    this.admission = new UpstreamAdmission({
      connectionsPerOrigin: options.caps?.connectionsPerOrigin ?? 64,
      tenantMaxInFlight: options.caps?.tenantMaxInFlight ?? 8,
      tierSharePercent: options.caps?.tierSharePercent ?? DEFAULT_TIER_SHARE_PERCENT
    })
    const privateHosts = new Set((options.privateHosts ?? []).map((h) => h.toLowerCase().replace(/\.$/, '')))
    this.agent = new Agent({
      // Admission keeps the calls in flight to an origin within this: undici never queues one.
      connections: this.admission.caps.connectionsPerOrigin,
      keepAliveTimeout: 10_000,
      connect: { lookup: guardedLookup(options.lookup, options.dnsCache, { privateHosts }) }
    })
    this.mcp = new McpToolClient({ dispatcher: this.agent, onToolsChanged: options.onMcpToolsChanged })
  }

  async call (tool: ToolDefinition & { http: HttpToolSpec }, call: HttpCall): Promise<HttpCallResult> {
    const spec = tool.http
    const args = (call.args ?? {}) as Record<string, unknown>
    if (typeof args !== 'object' || Array.isArray(args)) throw new HttpToolError('arguments must be an object')
    const mcp = spec.mcp
    const { origin, host, path, body } = mcp !== undefined ? mcpTarget(spec.url) : buildRequest(spec, args)
    // An IP literal never goes through the lookup, so it is checked here: metadata always, a
    // private one unless TOOL_UPSTREAMS lists this very origin (the admin's explicit choice).
    const kind = isIP(host) === 0 ? null : classifyAddress(host)
    if (kind === 'metadata' || (kind === 'private' && this.listedOrigins !== null && !this.listedOrigins.has(origin))) throw new HttpToolError(refusalMessage(host, kind))
    const tier = await this.tierOf(call.tenantId)
    if (mcp !== undefined) {
      // A remote MCP server's tool holds a slot of the same per-tenant and per-tier caps: at once
      // when one is free at every level, else after a wait in turn.
      const free = call.runEnded?.aborted === true ? undefined : this.admission.tryAdmit(origin, call.tenantId, tier)
      const release = free ?? await this.admission.admit(origin, call.tenantId, tier, call.runEnded ?? new AbortController().signal, spec.timeoutMs)
      try {
        // Signed on the thread pool while this thread goes on with the call (the SDK builds its
        // request); the request waits for it only where its headers are written.
        const assertion = this.signer.signLater({ audience: origin, userId: call.userId, tenantId: call.tenantId, executionId: call.executionId, tool: tool.name }).then((signed) => signed.token)
        // A call that ends before its request (a cancelled run) leaves the token unread, not unhandled.
        assertion.catch(() => {})
        return await callMcpTool(this.mcp, { ...tool, http: spec }, mcp, args, call, { assertion, maxResultBytes: this.maxResultBytes })
      } finally {
        release()
      }
    }

    const deadline = new AbortController()
    const timer = setTimeout(() => { deadline.abort(new HttpToolError(`timed out after ${spec.timeoutMs} ms`)) }, spec.timeoutMs)
    const onRunEnded = (): void => { deadline.abort(new HttpToolError('the run ended before the upstream answered')) }
    call.runEnded?.addEventListener('abort', onRunEnded, { once: true })
    if (call.runEnded?.aborted === true) onRunEnded()
    let release: (() => void) | undefined
    try {
      // The wait for a slot counts against the call's own timeout.
      release = (deadline.signal.aborted ? undefined : this.admission.tryAdmit(origin, call.tenantId, tier)) ?? await this.admission.admit(origin, call.tenantId, tier, deadline.signal, spec.timeoutMs)
      // A new assertion (and jti) per call, so an upstream can refuse a replayed one; signed
      // after the wait, so its 60 s of life are not spent queueing.
      const assertion = this.signer.sign({ audience: origin, userId: call.userId, tenantId: call.tenantId, executionId: call.executionId, tool: tool.name }).token
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
      // The slot is held until the body is read or dropped: the connection is busy until then.
      release?.()
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
      EREFUSEDADDRESS: (err as Error).message
    }
    return new HttpToolError(known[code] ?? 'connection failed', status)
  }
}

/** An origin as `new URL` writes it (default port dropped, IPv6 compressed), to compare. */
function normalOrigin (origin: string): string {
  try {
    return new URL(origin).origin
  } catch {
    return origin
  }
}
