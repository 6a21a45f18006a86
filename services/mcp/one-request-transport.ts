import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import {
  JSONRPCRequestSchema, SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage, type JSONRPCRequest, type RequestId
} from '@modelcontextprotocol/sdk/types.js'

/**
 * The one JSON-RPC request a POST to /mcp carries, when this transport may answer it: a single
 * request (not a batch, a notification or an initialize) sent as JSON by a client that accepts
 * both answers the spec allows and speaks a protocol revision the SDK supports. Anything else
 * (undefined) goes to the SDK's own transport, which answers every edge of the specification
 * (406, 415, parse errors, batches, initialize).
 */
export function oneRequestOf (headers: IncomingHttpHeaders, body: unknown): JSONRPCRequest | undefined {
  const accept = headers.accept ?? ''
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return undefined
  if (!(headers['content-type'] ?? '').includes('application/json')) return undefined
  const version = headers['mcp-protocol-version']
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return undefined
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined
  const method = (body as { method?: unknown }).method
  if (typeof method !== 'string' || method === 'initialize') return undefined
  const parsed = JSONRPCRequestSchema.safeParse(body)
  return parsed.success ? parsed.data : undefined
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' }

/**
 * A Streamable HTTP answer to one request, decided as late as possible. The spec lets the server
 * answer a request with one JSON object or with an SSE stream; the SDK's transport must choose
 * before the handler runs (and in its JSON mode drops notifications). Here the answer is JSON
 * unless the handler sends something first (a log line or progress of a run): then it becomes
 * an SSE stream, the notifications and finally the response. So a run that says nothing on the
 * way costs the client no SSE parsing, and one that does still streams. It also writes to Node's
 * response directly, without the SDK's Web Request/Response conversion.
 */
export class OneRequestTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: Transport['onmessage']

  private readonly response: ServerResponse
  private readonly requestId: RequestId
  private streaming = false
  private answered = false
  private closed = false

  constructor (response: ServerResponse, requestId: RequestId) {
    this.response = response
    this.requestId = requestId
  }

  async start (): Promise<void> {}

  /** Hands the request to the server; its answer comes back through send. */
  deliver (request: JSONRPCRequest, headers: IncomingHttpHeaders): void {
    this.onmessage?.(request, { requestInfo: { headers } })
  }

  async send (message: JSONRPCMessage): Promise<void> {
    if (this.answered || this.response.writableEnded || this.response.destroyed) return
    const isAnswer = 'id' in message && ('result' in message || 'error' in message)
    // One request per transport: everything the server sends belongs to it.
    const event = `event: message\ndata: ${JSON.stringify(message)}\n\n`
    if (!isAnswer) {
      if (!this.streaming) {
        this.streaming = true
        this.response.writeHead(200, SSE_HEADERS)
      }
      this.response.write(event)
      return
    }
    if ((message as { id: RequestId }).id !== this.requestId) return
    this.answered = true
    if (this.streaming) {
      this.response.end(event)
      return
    }
    const body = JSON.stringify(message)
    this.response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    this.response.end(body)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.onclose?.()
  }
}
