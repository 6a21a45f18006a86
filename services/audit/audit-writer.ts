import type { FastifyBaseLogger } from 'fastify'
import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import { addToRollups } from './usage-rollup.ts'

/** What one audit row says about one execution or refused request. */
export interface AuditFacts {
  executionId: string
  userId: string
  action: 'code_execution' | 'execution_refused' | 'mcp.execute'
  codeSha256: string | null
  success: boolean
  errorCode: string | null
  durationMs: number | null
  toolCalls: number
  /** The run's meter (result stats); absent for refusals and runs nobody measured. */
  meter?: AuditMeter
}

/** The meter's figures an audit row keeps beside durationMs (the wall time) and toolCalls. */
export interface AuditMeter {
  cpuMs: number
  peakHeapBytes: number
  toolTimeMs: number
  bytesIn: number
  bytesOut: number
}

export interface AuditEntry extends AuditFacts {
  tenantId: string
  createdAt: Date
}

/** One tool call: docs/api.md "Audit". */
export interface ToolCallEntry {
  tenantId: string
  executionId: string
  callIndex: number
  tool: string
  /** 'OK' or the error code the script saw. */
  code: string
  durationMs: number
  argsSha256: string
  argsBytes: number
  resultBytes: number | null
  upstreamStatus: number | null
  createdAt: Date
}

type Queued = { kind: 'execution', entry: AuditEntry } | { kind: 'tool-call', entry: ToolCallEntry }

export interface AuditWriterOptions {
  /** Rows held while the database is unreachable; past this the tenant holding the most loses its oldest (counted). */
  maxQueued: number
  retryDelayMs: number
  /** How long a row may wait for others to share its write. */
  batchDelayMs: number
  onLost?: (count: number) => void
  onWriteFailure?: () => void
  /**
   * Refused requests (`execution_refused`) audited per tenant per minute on this instance; past
   * it they are counted (onRefusalUnaudited), not written. Default: no bound.
   */
  refusalsPerTenantPerMinute?: number
  onRefusalUnaudited?: (tenantId: string, firstThisMinute: boolean) => void
  /** The clock, in ms; tests pass a fake one. Default Date.now. */
  now?: () => number
}

/**
 * Writes audit rows off the response path. Rows are queued, written in one transaction per
 * tenant per batch, and retried with backoff while the database is away; a row is dropped only
 * when the bounded queue overflows, and then it is counted (onLost) and logged, never silently.
 * A retried row cannot be written twice: (tenant_id, execution_id) is unique, and so is a tool
 * call's (tenant_id, execution_id, call_index). Tool calls share the queue, batches and retries.
 */
export class AuditWriter {
  private queue: Queued[] = []
  private flushing: Promise<void> | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private batchTimer: NodeJS.Timeout | undefined
  private failures = 0
  /** Rows in `queue` per tenant, to know whose row goes when it is full. */
  private readonly queuedByTenant = new Map<string, number>()
  private refusalMinute = 0
  private refusalsThisMinute = new Map<string, number>()

  private readonly db: AppDatabase
  private readonly log: FastifyBaseLogger
  private readonly options: AuditWriterOptions

  constructor (db: AppDatabase, log: FastifyBaseLogger, options: AuditWriterOptions) {
    this.db = db
    this.log = log
    this.options = options
  }

  get pending (): number {
    return this.queue.length
  }

  enqueue (entry: AuditEntry): void {
    if (entry.action === 'execution_refused' && !this.refusalAudited(entry.tenantId)) return
    this.push({ kind: 'execution', entry })
  }

  // A tenant over its quota can be refused as fast as its rate limit lets it ask, and each
  // refusal used to be a row: hundreds of thousands a day, kept, and in an outage they filled
  // the bounded queue and pushed out other tenants' rows. The first refusals of each minute say
  // what the tenant ran into; the rest only count.
  private refusalAudited (tenantId: string): boolean {
    const bound = this.options.refusalsPerTenantPerMinute
    if (bound === undefined) return true
    const minute = Math.floor((this.options.now ?? Date.now)() / 60_000)
    if (minute !== this.refusalMinute) { this.refusalMinute = minute; this.refusalsThisMinute = new Map() }
    const count = this.refusalsThisMinute.get(tenantId) ?? 0
    this.refusalsThisMinute.set(tenantId, count + 1)
    if (count < bound) return true
    this.options.onRefusalUnaudited?.(tenantId, count === bound)
    return false
  }

  enqueueToolCall (entry: ToolCallEntry): void {
    this.push({ kind: 'tool-call', entry })
  }

  private push (item: Queued): void {
    this.queue.push(item)
    this.countQueued(item.entry.tenantId, 1)
    this.dropOverflow()
    if (this.retryTimer === undefined) this.scheduleFlush()
  }

  /** Writes everything queued now; resolves when the queue is empty or a write failed. */
  async flush (): Promise<void> {
    while (this.flushing !== undefined) await this.flushing
    if (this.queue.length === 0) return
    this.flushing = this.writeBatch().finally(() => { this.flushing = undefined })
    await this.flushing
  }

  /** Stops retrying in the background; used at shutdown after a final flush. */
  close (): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    if (this.batchTimer !== undefined) clearTimeout(this.batchTimer)
    this.retryTimer = undefined
    this.batchTimer = undefined
  }

  private countQueued (tenantId: string, delta: number): void {
    const count = (this.queuedByTenant.get(tenantId) ?? 0) + delta
    if (count > 0) this.queuedByTenant.set(tenantId, count)
    else this.queuedByTenant.delete(tenantId)
  }

  // Over the bound, the tenant holding the most rows gives up its oldest one: a tenant's burst
  // during an outage (thousands of tool calls) cannot push other tenants' rows out of the queue.
  private dropOverflow (): void {
    if (this.queue.length <= this.options.maxQueued) return
    const lost: Queued[] = []
    while (this.queue.length > this.options.maxQueued) {
      let largest: string | undefined
      let most = 0
      for (const [tenantId, count] of this.queuedByTenant) if (count > most) { most = count; largest = tenantId }
      const index = Math.max(0, this.queue.findIndex((item) => item.entry.tenantId === largest))
      const [dropped] = this.queue.splice(index, 1) as [Queued]
      this.countQueued(dropped.entry.tenantId, -1)
      lost.push(dropped)
    }
    this.options.onLost?.(lost.length)
    this.log.error({ lost: lost.length, tenantIds: [...new Set(lost.map((e) => e.entry.tenantId))], executionIds: [...new Set(lost.map((e) => e.entry.executionId))] }, 'audit queue overflowed: the oldest rows of the tenant holding the most were dropped')
  }

  // Rows arriving within batchDelayMs share one transaction: under load that is one database
  // round trip for many executions, and none on any response path.
  private scheduleFlush (): void {
    if (this.batchTimer !== undefined) return
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined
      void this.flush()
    }, this.options.batchDelayMs)
    this.batchTimer.unref()
  }

  private async writeBatch (): Promise<void> {
    const batch = this.queue
    this.queue = []
    this.queuedByTenant.clear()
    const byTenant = new Map<string, Queued[]>()
    for (const item of batch) {
      const list = byTenant.get(item.entry.tenantId) ?? []
      list.push(item)
      byTenant.set(item.entry.tenantId, list)
    }
    const failed: Queued[] = []
    for (const [tenantId, items] of byTenant) {
      const entries = items.flatMap((item) => item.kind === 'execution' ? [item.entry] : [])
      const toolCalls = items.flatMap((item) => item.kind === 'tool-call' ? [item.entry] : [])
      try {
        await withTenant(this.db, tenantId, async (trx) => {
          if (entries.length > 0) {
            // Only the rows this insert wrote come back: those, and no retried duplicate, go into
            // the day's rollup, in the same transaction, so the rollup equals a recount.
            const inserted = await trx.insertInto('audit_log').values(entries.map((e) => ({
              tenant_id: e.tenantId,
              execution_id: e.executionId,
              user_id: e.userId,
              action: e.action,
              code_sha256: e.codeSha256,
              success: e.success,
              error_code: e.errorCode,
              duration_ms: e.durationMs,
              tool_calls: e.toolCalls,
              cpu_ms: e.meter?.cpuMs ?? null,
              peak_heap_bytes: e.meter?.peakHeapBytes ?? null,
              tool_time_ms: e.meter?.toolTimeMs ?? null,
              bytes_in: e.meter?.bytesIn ?? null,
              bytes_out: e.meter?.bytesOut ?? null,
              created_at: e.createdAt
            }))).onConflict((oc) => oc.columns(['tenant_id', 'execution_id']).doNothing())
              .returning(['user_id', 'action', 'success', 'duration_ms', 'tool_calls', 'cpu_ms', 'bytes_in', 'bytes_out', 'created_at'])
              .execute()
            await addToRollups(trx, tenantId, inserted)
          }
          if (toolCalls.length > 0) {
            await trx.insertInto('tool_calls').values(toolCalls.map((c) => ({
              tenant_id: c.tenantId,
              execution_id: c.executionId,
              call_index: c.callIndex,
              tool: c.tool,
              code: c.code,
              duration_ms: c.durationMs,
              args_sha256: c.argsSha256,
              args_bytes: c.argsBytes,
              result_bytes: c.resultBytes,
              upstream_status: c.upstreamStatus,
              created_at: c.createdAt
            }))).onConflict((oc) => oc.columns(['tenant_id', 'execution_id', 'call_index']).doNothing()).execute()
          }
        })
      } catch (err) {
        failed.push(...items)
        this.options.onWriteFailure?.()
        this.log.warn({ err, tenantId, rows: items.length }, 'audit write failed; will retry')
      }
    }
    if (failed.length > 0) {
      // Put them back in front, keep the bound, and retry later with capped backoff.
      this.queue = [...failed, ...this.queue]
      for (const item of failed) this.countQueued(item.entry.tenantId, 1)
      this.dropOverflow()
      this.failures++
      const delay = Math.min(this.options.retryDelayMs * 2 ** (this.failures - 1), 5_000)
      if (this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; void this.flush() }, delay)
        this.retryTimer.unref()
      }
    } else {
      this.failures = 0
      if (this.queue.length > 0) this.scheduleFlush()
    }
  }
}
