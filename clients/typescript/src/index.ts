// A small typed client for tenant-enclave. The types come from the service's OpenAPI document
// (src/schema.ts, generated); requests go through openapi-fetch, except the event stream, which
// is read line by line and resumed after a dropped connection.
import createClient from 'openapi-fetch'
import type { paths } from './schema.ts'
import type { StreamEvent } from './session.ts'

export type { paths }
export type ExecutionResult = paths['/api/execute']['post']['responses'][200]['content']['application/json']
export type Execution = paths['/api/executions/{id}']['get']['responses'][200]['content']['application/json']
export type ExecutionStatus = Execution['status']

// One event shape for the clear streams and the sealed ones: declared once, in session.ts.
export type { StreamEvent } from './session.ts'

export interface ClientOptions {
  /** The service's origin, e.g. http://127.0.0.1:3000 */
  baseUrl: string
  /** A tenant token (JWT) */
  token: string
  fetch?: typeof fetch
}

export interface RunOptions {
  language?: 'javascript' | 'typescript'
  timeoutMs?: number
}

/** A refusal or failure from the service: its status and body ({error, code, ...}). */
export class EnclaveError extends Error {
  readonly status: number
  readonly body: unknown

  constructor (status: number, body: unknown) {
    const b = body as { error?: unknown, code?: unknown } | undefined
    super(`${status} ${typeof b?.error === 'string' ? b.error : 'request failed'}${typeof b?.code === 'string' ? ` (${b.code})` : ''}`)
    this.name = 'EnclaveError'
    this.status = status
    this.body = body
  }
}

const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 2000
const MAX_RETRIES = 20

export function createEnclaveClient (options: ClientOptions) {
  const fetchFn = options.fetch ?? globalThis.fetch
  const baseUrl = options.baseUrl.replace(/\/$/, '')
  const authorization = `Bearer ${options.token}`
  const api = createClient<paths>({ baseUrl, headers: { authorization }, fetch: fetchFn })

  function body (code: string, run: RunOptions): { code: string, language?: 'javascript' | 'typescript', timeoutMs?: number } {
    return { code, ...(run.language !== undefined ? { language: run.language } : {}), ...(run.timeoutMs !== undefined ? { timeoutMs: run.timeoutMs } : {}) }
  }

  /** Every event after `after`, live, until `final`; reconnects (Last-Event-ID) when the connection drops. */
  async function * events (executionId: string, opts: { after?: number, signal?: AbortSignal, heartbeats?: boolean } = {}): AsyncGenerator<StreamEvent> {
    let last = opts.after ?? 0
    let failures = 0
    const aborted = (): boolean => opts.signal?.aborted === true
    while (!aborted()) {
      let res: Response
      try {
        res = await fetchFn(`${baseUrl}/api/executions/${encodeURIComponent(executionId)}/events`, {
          headers: { authorization, accept: 'application/x-ndjson', 'last-event-id': String(last) },
          signal: opts.signal
        })
      } catch (err) {
        if (aborted() || ++failures > MAX_RETRIES) throw err
        await pause(failures)
        continue
      }
      if (!res.ok) throw new EnclaveError(res.status, await res.json().catch(() => undefined))
      try {
        for await (const event of lines(res)) {
          failures = 0
          if (event.type === 'heartbeat') { if (opts.heartbeats === true) yield event; continue }
          if (event.seq <= last) continue
          last = event.seq
          yield event
          if (event.type === 'final') return
        }
      } catch (err) {
        if (aborted()) throw err
      }
      // The stream ended without `final`: the connection dropped. Resume after the last seq.
      if (++failures > MAX_RETRIES) throw new Error(`event stream of ${executionId} kept dropping`)
      await pause(failures)
    }
  }

  return {
    /** The openapi-fetch client, for every other route. */
    api,

    /** Runs a script and waits for its result (POST /api/execute). */
    async execute (code: string, run: RunOptions = {}): Promise<ExecutionResult> {
      const { data, error, response } = await api.POST('/api/execute', { body: body(code, run) })
      if (data === undefined) throw new EnclaveError(response.status, error)
      return data
    },

    /** Queues a run (POST /api/executions); the same idempotency key within 24 h returns the first. */
    async submit (code: string, run: RunOptions & { idempotencyKey?: string } = {}): Promise<{ executionId: string, status: ExecutionStatus }> {
      const { data, error, response } = await api.POST('/api/executions', {
        body: body(code, run),
        params: { header: run.idempotencyKey !== undefined ? { 'idempotency-key': run.idempotencyKey } : {} }
      })
      if (data === undefined) throw new EnclaveError(response.status, error)
      return data
    },

    async get (executionId: string): Promise<Execution> {
      const { data, error, response } = await api.GET('/api/executions/{id}', { params: { path: { id: executionId } } })
      if (data === undefined) throw new EnclaveError(response.status, error)
      return data
    },

    /** Cancels a run: true when it is being cancelled, false when it had already finished. */
    async cancel (executionId: string): Promise<boolean> {
      const { error, response } = await api.DELETE('/api/executions/{id}', { params: { path: { id: executionId } } })
      if (response.status === 202) return true
      if (response.status === 409) return false
      throw new EnclaveError(response.status, error)
    },

    events,

    /** Follows a run to its end and returns its result. */
    async wait (executionId: string, opts: { signal?: AbortSignal } = {}): Promise<ExecutionResult> {
      for await (const event of events(executionId, opts)) {
        if (event.type === 'final') return (event.data as { result: ExecutionResult }).result
      }
      throw new Error('the event stream ended without a result')
    }
  }
}

export type EnclaveClient = ReturnType<typeof createEnclaveClient>

async function pause (attempt: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (attempt - 1))))
}

async function * lines (res: Response): AsyncGenerator<StreamEvent> {
  if (res.body === null) return
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim()
      buffer = buffer.slice(newline + 1)
      if (line !== '') yield JSON.parse(line) as StreamEvent
    }
  }
}
