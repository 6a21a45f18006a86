// The record of an accepted queued run: what a submission's 202 stands on. It lives beside the
// run's job and events (Redis when REDIS_URL is set, redis-execution-records.ts; this process's
// memory otherwise), so accepting a run needs no PostgreSQL: the row is written from the record
// once the run has ended (stored-runs.ts). Until then GET, the list and DELETE read the record.
import type { ExecutionStatus } from '../db/schema.ts'
import type { ExecutionResult } from '../enclave/index.ts'

export interface RunRecord {
  executionId: string
  tenantId: string
  userId: string
  /** Any ExecutionStatus: a status a new kind of pause adds is a new value here, no new field. */
  status: ExecutionStatus
  submittedAt: string
  startedAt?: string
  finishedAt?: string
  result?: ExecutionResult
  codeSha256: string
  timeoutMs: number
  idempotencyKey?: string
  /** With a key: the SHA-256 of the request (requestSha256 in execution-request.ts). */
  requestSha256?: string
  /** How many times the run has started or been resumed (absent: once); a resume is a new start. */
  starts?: number
  /** While awaiting_approval: when the run ends APPROVAL_EXPIRED if nobody decides. */
  expiresAt?: string
}

/** A status change: the new status and the fields that come with it. */
export interface RunChange {
  status: ExecutionStatus
  startedAt?: string
  finishedAt?: string
  result?: ExecutionResult
  starts?: number
  expiresAt?: string
}

/** accept's answer: the record is kept, or the idempotency key already names another run. */
export type Acceptance = { created: true } | { created: false, executionId: string, requestSha256: string | undefined }

/** An idempotency key holds for this long; after it the same key makes a new execution. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 3600_000
/** A record outlives its run's wait and run by far; every change renews it. */
export const RECORD_TTL_MS = 24 * 3600_000
/** Once its row is written a record is kept as long as the run's events (then GET reads the row). */
export const STORED_RECORD_TTL_MS = 60 * 60_000
/** A run not stored by then (its run's timeout and this) is looked at by the sweep (stored-runs.ts). */
export const STORE_GRACE_MS = 30_000

export interface ExecutionRecords {
  /**
   * Keeps an accepted run's record, and notes it as not stored yet. With an idempotency key,
   * atomically: a key that already names a run of the tenant (within the window) keeps nothing.
   */
  accept (record: RunRecord): Promise<Acceptance>
  get (executionId: string): Promise<RunRecord | undefined>
  /**
   * Keeps a record again, only if there is none (false: there is one), noted as not stored. For a
   * run whose record Redis lost (a failover's promoted replica lacked it), so it can be ended.
   */
  restore (record: RunRecord): Promise<boolean>
  /**
   * Atomically: applies `change` when the record's status is one of `from`, and answers the
   * record as it then is; undefined (nothing changed) when it is not, or there is no record.
   * Whoever moves a run out of a status first wins that race (a cancel and a starting worker).
   * The record then lives `ttlMs` more (default RECORD_TTL_MS; a run waiting for approval longer).
   */
  move (executionId: string, from: readonly ExecutionStatus[], change: RunChange, ttlMs?: number): Promise<RunRecord | undefined>
  /** The tenant's runs whose row is not written yet (at most its queue bound and slots, and what PostgreSQL refused). */
  unstored (tenantId: string): Promise<RunRecord[]>
  /**
   * Runs whose row is due (their time to be stored passed, at or before `now`), at most `limit`;
   * each is made due again a while later, so sweeps on several instances do not all take it.
   */
  due (now: number, limit: number): Promise<RunRecord[]>
  /** The run's row should be (re)tried at `at`. */
  dueAt (executionId: string, at: number): Promise<void>
  /** The row is written: the run leaves the unstored ones, and its record expires sooner. */
  stored (record: RunRecord): Promise<void>
  /** A submission that was not accepted after all: no record, no key, nothing to store. */
  forget (record: RunRecord): Promise<void>
}

/** When a just-accepted run should be stored by at the latest (then a sweep looks at it). */
export const firstDue = (record: RunRecord): number => Date.parse(record.submittedAt) + record.timeoutMs + STORE_GRACE_MS

interface Held { record: RunRecord, expiry: NodeJS.Timeout }

/** One process (embedded mode): the same contract, the in-memory queue's record. */
export function createMemoryExecutionRecords (): ExecutionRecords {
  const records = new Map<string, Held>()
  const unstored = new Map<string, Set<string>>()
  const dueAt = new Map<string, number>()
  const keys = new Map<string, { executionId: string, requestSha256: string | undefined, until: number }>()
  const keyOf = (tenantId: string, key: string): string => `${tenantId}\n${key}`
  const keep = (record: RunRecord, ttlMs: number): void => {
    const held = records.get(record.executionId)
    if (held !== undefined) clearTimeout(held.expiry)
    const expiry = setTimeout(() => { records.delete(record.executionId) }, ttlMs)
    expiry.unref()
    records.set(record.executionId, { record, expiry })
  }
  const unnote = (record: RunRecord): void => {
    unstored.get(record.tenantId)?.delete(record.executionId)
    if (unstored.get(record.tenantId)?.size === 0) unstored.delete(record.tenantId)
    dueAt.delete(record.executionId)
  }
  const copy = (record: RunRecord): RunRecord => structuredClone(record)
  return {
    async accept (record) {
      const now = Date.now()
      if (record.idempotencyKey !== undefined) {
        const key = keyOf(record.tenantId, record.idempotencyKey)
        const first = keys.get(key)
        if (first !== undefined && first.until > now) return { created: false, executionId: first.executionId, requestSha256: first.requestSha256 }
        keys.set(key, { executionId: record.executionId, requestSha256: record.requestSha256, until: now + IDEMPOTENCY_WINDOW_MS })
      }
      keep(copy(record), RECORD_TTL_MS)
      let tenant = unstored.get(record.tenantId)
      if (tenant === undefined) { tenant = new Set(); unstored.set(record.tenantId, tenant) }
      tenant.add(record.executionId)
      dueAt.set(record.executionId, firstDue(record))
      return { created: true }
    },
    async get (executionId) {
      const held = records.get(executionId)
      return held === undefined ? undefined : copy(held.record)
    },
    async restore (record) {
      if (records.has(record.executionId)) return false
      keep(copy(record), RECORD_TTL_MS)
      let tenant = unstored.get(record.tenantId)
      if (tenant === undefined) { tenant = new Set(); unstored.set(record.tenantId, tenant) }
      tenant.add(record.executionId)
      dueAt.set(record.executionId, firstDue(record))
      return true
    },
    async move (executionId, from, change, ttlMs = RECORD_TTL_MS) {
      const held = records.get(executionId)
      if (held === undefined || !from.includes(held.record.status)) return undefined
      const record = { ...held.record, ...change }
      keep(record, ttlMs)
      return copy(record)
    },
    async unstored (tenantId) {
      const out: RunRecord[] = []
      for (const id of unstored.get(tenantId) ?? []) {
        const held = records.get(id)
        if (held !== undefined) out.push(copy(held.record))
      }
      return out
    },
    async due (now, limit) {
      for (const [key, first] of keys) if (first.until <= now) keys.delete(key)
      const out: RunRecord[] = []
      for (const [id, at] of dueAt) {
        if (out.length >= limit) break
        if (at > now) continue
        const held = records.get(id)
        if (held === undefined) { dueAt.delete(id); continue }
        dueAt.set(id, now + STORE_GRACE_MS)
        out.push(copy(held.record))
      }
      return out
    },
    async dueAt (executionId, at) {
      if (dueAt.has(executionId)) dueAt.set(executionId, at)
    },
    async stored (record) {
      unnote(record)
      const held = records.get(record.executionId)
      if (held !== undefined) keep(held.record, STORED_RECORD_TTL_MS)
    },
    async forget (record) {
      unnote(record)
      const held = records.get(record.executionId)
      if (held !== undefined) { clearTimeout(held.expiry); records.delete(record.executionId) }
      if (record.idempotencyKey !== undefined) {
        const key = keyOf(record.tenantId, record.idempotencyKey)
        if (keys.get(key)?.executionId === record.executionId) keys.delete(key)
      }
    }
  }
}
