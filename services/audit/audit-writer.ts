import type { FastifyBaseLogger } from 'fastify'
import { withTenant, type AppDatabase } from '../db/with-tenant.ts'

/** What one audit row says about one execution or refused request. */
export interface AuditFacts {
  executionId: string
  userId: string
  action: 'code_execution' | 'execution_refused'
  codeSha256: string | null
  success: boolean
  errorCode: string | null
  durationMs: number | null
  toolCalls: number
}

export interface AuditEntry extends AuditFacts {
  tenantId: string
  createdAt: Date
}

export interface AuditWriterOptions {
  /** Rows held while the database is unreachable; past this the oldest are dropped and counted. */
  maxQueued: number
  retryDelayMs: number
  /** How long a row may wait for others to share its write. */
  batchDelayMs: number
  onLost?: (count: number) => void
  onWriteFailure?: () => void
}

/**
 * Writes audit rows off the response path. Rows are queued, written in one transaction per
 * tenant per batch, and retried with backoff while the database is away; a row is dropped only
 * when the bounded queue overflows, and then it is counted (onLost) and logged, never silently.
 * A retried row cannot be written twice: (tenant_id, execution_id) is unique.
 */
export class AuditWriter {
  private queue: AuditEntry[] = []
  private flushing: Promise<void> | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private batchTimer: NodeJS.Timeout | undefined
  private failures = 0

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
    this.queue.push(entry)
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

  private dropOverflow (): void {
    if (this.queue.length <= this.options.maxQueued) return
    const lost = this.queue.splice(0, this.queue.length - this.options.maxQueued)
    this.options.onLost?.(lost.length)
    this.log.error({ lost: lost.length, executionIds: lost.map((e) => e.executionId) }, 'audit queue overflowed: oldest rows dropped')
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
    const byTenant = new Map<string, AuditEntry[]>()
    for (const entry of batch) {
      const list = byTenant.get(entry.tenantId) ?? []
      list.push(entry)
      byTenant.set(entry.tenantId, list)
    }
    const failed: AuditEntry[] = []
    for (const [tenantId, entries] of byTenant) {
      try {
        await withTenant(this.db, tenantId, async (trx) => {
          await trx.insertInto('audit_log').values(entries.map((e) => ({
            tenant_id: e.tenantId,
            execution_id: e.executionId,
            user_id: e.userId,
            action: e.action,
            code_sha256: e.codeSha256,
            success: e.success,
            error_code: e.errorCode,
            duration_ms: e.durationMs,
            tool_calls: e.toolCalls,
            created_at: e.createdAt
          }))).onConflict((oc) => oc.columns(['tenant_id', 'execution_id']).doNothing()).execute()
        })
      } catch (err) {
        failed.push(...entries)
        this.options.onWriteFailure?.()
        this.log.warn({ err, tenantId, rows: entries.length }, 'audit write failed; will retry')
      }
    }
    if (failed.length > 0) {
      // Put them back in front, keep the bound, and retry later with capped backoff.
      this.queue = [...failed, ...this.queue]
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
