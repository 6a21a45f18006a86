import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { dropBody, readUpTo, readWhole } from './response-body.ts'

/** What one request to a remote MCP server carries: its bearer (or its signing) and where its bytes stop. */
export interface UpstreamRequestScope { assertion: string | Promise<string>, maxBytes: number, tooLarge: () => Error }

/** Statuses whose response has no body (a Response with one cannot be built). */
const NO_BODY = new Set([204, 205, 304])

function mediaType (value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim().toLowerCase() ?? ''
}

/**
 * The fetch the SDK's Streamable HTTP client is given for a remote MCP server: each request with
 * the assertion of the call it serves as bearer (and the admin's static headers), on the guarded
 * pool, no redirect followed (a 3xx is the answer), the answer cut off at the call's byte limit.
 *
 * It goes through the pool's `request`, not fetch: fetch's Request, Response and web-stream
 * machinery around each call cost more than the call's own round trip on loopback. A JSON answer
 * is read whole (within the limit) and handed over as a Response; an event stream is handed over
 * as it comes, counted. No compression is asked for (no accept-encoding), so none is undone.
 * A failure to connect or read comes out as fetch's does, a TypeError with the cause, which the
 * client takes for a broken connection.
 */
export function upstreamFetch (dispatcher: Dispatcher, staticHeaders: Record<string, string>, scopeOf: () => UpstreamRequestScope | undefined) {
  return async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const scope = scopeOf()
    const method = init?.method ?? 'GET'
    // Only requests a call makes: the client's standing GET stream would outlive any one call's
    // assertion, so it is answered here as a server without one (405), and never opened.
    if (scope === undefined || method === 'GET') return new Response(null, { status: 405 })
    const url = typeof input === 'string' ? new URL(input) : input
    const headers: Record<string, string> = {}
    const given = init?.headers instanceof Headers ? init.headers : new Headers(init?.headers)
    given.forEach((value, name) => { headers[name] = value })
    for (const [name, value] of Object.entries(staticHeaders)) headers[name.toLowerCase()] = value
    headers.authorization = `Bearer ${await scope.assertion}`
    headers['user-agent'] = 'tenant-enclave'
    const signal = init?.signal ?? undefined
    const failed = (err: unknown): Error => signal?.aborted === true ? err as Error : new TypeError('fetch failed', { cause: err })
    let res: Dispatcher.ResponseData
    try {
      res = await dispatcher.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: method as Dispatcher.HttpMethod, headers, body: init?.body as string | undefined, ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      throw failed(err)
    }
    const { statusCode: status, body } = res
    const answered = new Headers()
    for (const [name, value] of Object.entries(res.headers)) {
      if (Array.isArray(value)) for (const one of value) answered.append(name, one)
      else if (value !== undefined) answered.append(name, value)
    }
    const length = res.headers['content-length']
    const declared = typeof length === 'string' ? Number(length) : Number.NaN
    if (Number.isFinite(declared) && declared > scope.maxBytes) {
      dropBody(body)
      throw scope.tooLarge()
    }
    if (NO_BODY.has(status)) {
      await body.dump().catch(() => {})
      return new Response(null, { status, headers: answered })
    }
    if (mediaType(res.headers['content-type']) === 'text/event-stream') {
      let bytes = 0
      const counted = (Readable.toWeb(body) as ReadableStream<Uint8Array>).pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
        transform (chunk, controller) {
          bytes += chunk.byteLength
          if (bytes > scope.maxBytes) controller.error(scope.tooLarge())
          else controller.enqueue(chunk)
        }
      }))
      return new Response(counted, { status, headers: answered })
    }
    let data: Buffer
    let over: Error | undefined
    try {
      // A declared length within the limit bounds what is read: HTTP/1.1 framing ends it there.
      data = Number.isFinite(declared) ? await readWhole(body) : await readUpTo(body, scope.maxBytes, () => (over = scope.tooLarge()))
    } catch (err) {
      if (err === over) throw err
      throw failed(err)
    }
    // A Buffer read here always sits on a plain ArrayBuffer; DOM's BodyInit (the SDK build's lib) says so.
    return new Response(data as Uint8Array<ArrayBuffer>, { status, headers: answered })
  }
}
