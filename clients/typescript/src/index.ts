// A small typed client for tenant-enclave on the code @hey-api/openapi-ts generates from the
// service's OpenAPI document (src/generated/, committed; scripts/generate.ts): its types and its
// one function per operation. The helpers below add what a generated client does not: errors
// thrown as EnclaveError, and the event stream read line by line and resumed after a dropped
// connection.
import { createClient, type Client } from './generated/client/index.ts'
import {
  cancelExecution, checkScript, decideApprovals, getExecution, getExecutionAudit, getUsage, getUsageHistory, listAudit, listExecutions,
  listTools, runScript, submitExecution
} from './generated/sdk.gen.ts'
import type {
  AuditPage, ErrorBody, Execution, ExecutionAudit, ExecutionEvent, ExecutionPage, ExecutionRequest, ExecutionResult,
  ExecutionStatus, Refusal, ScriptCheck, SubmittedExecution, Tool, Usage, UsageHistory
} from './generated/types.gen.ts'

// Every shape and operation of the API, as generated: `import { type Usage, getUsage } from ...`.
export type * from './generated/types.gen.ts'
export * from './generated/sdk.gen.ts'
export { createClient, type Client } from './generated/client/index.ts'
export type {
  AuditPage, ErrorBody, Execution, ExecutionAudit, ExecutionEvent, ExecutionPage, ExecutionResult, ExecutionStatus,
  Refusal, ScriptCheck, SubmittedExecution, Tool, Usage, UsageHistory
}

/** One event of a run, told apart by `type`: `event.type === 'final'` makes `event.data.result` an ExecutionResult. */
export type StreamEvent = ExecutionEvent

export interface ClientOptions {
  /** The service's origin, e.g. http://127.0.0.1:3000 */
  baseUrl: string
  /** A tenant token (JWT) */
  token: string
  fetch?: typeof fetch
}

export interface RunOptions {
  language?: ExecutionRequest['language']
  timeoutMs?: number
}

/** A refusal or failure from the service: its status and body (an ErrorBody or a Refusal). */
export class EnclaveError extends Error {
  readonly status: number
  readonly body: ErrorBody | Refusal | undefined

  constructor (status: number, body: unknown) {
    const b = body as { error?: unknown, code?: unknown } | undefined
    super(`${status} ${typeof b?.error === 'string' ? b.error : 'request failed'}${typeof b?.code === 'string' ? ` (${b.code})` : ''}`)
    this.name = 'EnclaveError'
    this.status = status
    this.body = typeof b?.code === 'string' ? body as ErrorBody | Refusal : undefined
  }

  /** The service's error code (ErrorBody.code, or a Refusal's). */
  get code (): string | undefined {
    return this.body?.code
  }
}

/** What a generated call answers: its data, or an EnclaveError with the status and typed body. */
async function ok<T> (call: Promise<{ data?: T, error?: unknown, response?: Response }>): Promise<T> {
  const { data, error, response } = await call
  if (data === undefined || error !== undefined) throw new EnclaveError(response?.status ?? 0, error)
  return data
}

const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 2000
const MAX_RETRIES = 20

export function createEnclaveClient (options: ClientOptions) {
  const fetchFn = options.fetch ?? globalThis.fetch
  const baseUrl = options.baseUrl.replace(/\/$/, '')
  const authorization = `Bearer ${options.token}`
  const client: Client = createClient({ baseUrl, headers: { authorization }, fetch: fetchFn })

  function body (code: string, run: RunOptions): ExecutionRequest {
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

  async function decide (executionId: string, callIds: string | string[], approve: boolean, reason: string | undefined): Promise<Execution> {
    const decisions = (typeof callIds === 'string' ? [callIds] : callIds).map((callId) => ({ callId, approve, ...(reason !== undefined ? { reason } : {}) }))
    return (await ok(decideApprovals({ client, path: { id: executionId }, body: { decisions } }))).execution
  }

  return {
    /** The generated client, set up with the base URL and token: pass it as `{ client }` to any generated operation. */
    client,

    /** Runs a script and waits for its result (runScript). */
    async execute (code: string, run: RunOptions = {}): Promise<ExecutionResult> {
      return await ok(runScript({ client, body: body(code, run) }))
    },

    /** Checks a script without running it (checkScript). */
    async check (code: string, run: Pick<RunOptions, 'language'> = {}): Promise<ScriptCheck> {
      return await ok(checkScript({ client, body: { code, ...(run.language !== undefined ? { language: run.language } : {}) } }))
    },

    /** Queues a run (submitExecution); the same idempotency key within 24 h returns the first. */
    async submit (code: string, run: RunOptions & { idempotencyKey?: string } = {}): Promise<SubmittedExecution> {
      return await ok(submitExecution({ client, body: body(code, run), ...(run.idempotencyKey !== undefined ? { headers: { 'idempotency-key': run.idempotencyKey } } : {}) }))
    },

    async get (executionId: string): Promise<Execution> {
      return await ok(getExecution({ client, path: { id: executionId } }))
    },

    /** A page of the tenant's executions, newest first (listExecutions); pass `nextBefore` as `before`. */
    async list (query: { status?: ExecutionStatus, limit?: number, before?: string } = {}): Promise<ExecutionPage> {
      return await ok(listExecutions({ client, query }))
    },

    /** Cancels a run: true when it is being cancelled, false when it had already finished. */
    async cancel (executionId: string): Promise<boolean> {
      const { error, response } = await cancelExecution({ client, path: { id: executionId } })
      if (response?.status === 202) return true
      if (response?.status === 409) return false
      throw new EnclaveError(response?.status ?? 0, error)
    },

    /**
     * Approves pending calls of a run awaiting_approval (decideApprovals; the token needs
     * approvals:decide). Once none is pending the run resumes. Answers the execution.
     */
    async approve (executionId: string, callIds: string | string[], reason?: string): Promise<Execution> {
      return await decide(executionId, callIds, true, reason)
    },

    /** Rejects pending calls: each throws ApprovalRejectedError (APPROVAL_REJECTED) in the script, with `reason`. */
    async reject (executionId: string, callIds: string | string[], reason?: string): Promise<Execution> {
      return await decide(executionId, callIds, false, reason)
    },

    /**
     * Approves every pending call (of `forTool` only, when given); with `forTool` and `maxCalls`
     * also up to that many further calls of the tool in this run, without waiting again.
     */
    async approveAll (executionId: string, opts: { forTool?: string, maxCalls?: number } = {}): Promise<Execution> {
      return (await ok(decideApprovals({ client, path: { id: executionId }, body: { approveAll: true, ...opts } }))).execution
    },

    events,

    /** Follows a run to its end and returns its result. */
    async wait (executionId: string, opts: { signal?: AbortSignal } = {}): Promise<ExecutionResult> {
      for await (const event of events(executionId, opts)) {
        if (event.type === 'final') return event.data.result
      }
      throw new Error('the event stream ended without a result')
    },

    /** Today's usage and quotas (getUsage); `groupBy: 'user'` adds `users`. */
    async usage (query: { groupBy?: 'user' } = {}): Promise<Usage> {
      return await ok(getUsage({ client, query }))
    },

    /** Usage per UTC day, oldest first (getUsageHistory); `userId` for one user's days. */
    async usageHistory (days?: number, opts: { userId?: string } = {}): Promise<UsageHistory> {
      return await ok(getUsageHistory({ client, query: { ...(days !== undefined ? { days } : {}), ...opts } }))
    },

    /** A page of audit entries, newest first (listAudit); pass `nextBefore` as `before`. */
    async audit (query: { limit?: number, before?: string } = {}): Promise<AuditPage> {
      return await ok(listAudit({ client, query }))
    },

    /** One execution's audit entry and its tool calls (getExecutionAudit). */
    async executionAudit (executionId: string): Promise<ExecutionAudit> {
      return await ok(getExecutionAudit({ client, path: { executionId } }))
    },

    /** The tools a script can call (listTools), optionally filtered by words. */
    async tools (search?: string): Promise<Tool[]> {
      return (await ok(listTools({ client, query: search !== undefined ? { search } : {} }))).tools
    }
  }
}

export type EnclaveClient = ReturnType<typeof createEnclaveClient>

async function pause (attempt: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (attempt - 1))))
}

async function * lines (res: Response): AsyncGenerator<StreamEvent> {
  // The service's own NDJSON: one ExecutionEvent per line.
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
