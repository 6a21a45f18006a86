// What happens to an execution, told to whoever keeps account of it: the audit log, the metrics
// and the log. The one execution path (executeScript) and the queue's own ends (a cancel while
// queued, a lost run) call these, so a synchronous, a session and a queued run are counted and
// audited the same way, and no entry point does it by hand.
import type { FastifyBaseLogger } from 'fastify'
import type { AuditEntry, AuditMeter } from '../audit/audit-writer.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import type { QueueFullRefusal, Refusal } from '../quotas/admission.ts'

/** Which execution an event is about. */
export interface ExecutionFacts {
  tenantId: string
  executionId: string
  userId: string
  codeSha256: string | null
  /** The log of the request that brought it (with its request id), if there is one. */
  log?: FastifyBaseLogger
  /** Its audit row's action once it ran: `code_execution` unless an MCP client ran it. */
  auditAction?: 'code_execution' | 'mcp.execute'
}

export interface ExecutionHooks {
  /** Refused before it ran (code size, quotas, queue bound): nothing ran. */
  refused: (execution: ExecutionFacts, refusal: Refusal | QueueFullRefusal) => void
  /** Its script starts on this instance; `settled` follows, whatever happens. */
  started: (execution: ExecutionFacts) => void
  /** Its script is over on this instance (also when the host failed it). */
  settled: (execution: ExecutionFacts) => void
  /**
   * It ended with `result`: once per execution, told by whoever ended it (the run itself, a
   * cancel while queued, the lost-run check). `measured` false: nobody timed it (a lost run).
   */
  ended: (execution: ExecutionFacts, result: ExecutionResult, timing?: { measured: boolean }) => void
}

/** Several hooks as one, called in order; one that throws does not keep the others from hearing. */
export function combineExecutionHooks (...all: Array<Partial<ExecutionHooks>>): ExecutionHooks {
  const each = <K extends keyof ExecutionHooks>(name: K) => (...args: Parameters<ExecutionHooks[K]>): void => {
    for (const hooks of all) {
      try { (hooks[name] as ((...a: Parameters<ExecutionHooks[K]>) => void) | undefined)?.(...args) } catch { /* an observer's failure is not the run's */ }
    }
  }
  return { refused: each('refused'), started: each('started'), settled: each('settled'), ended: each('ended') }
}

/** One audit row per execution: `execution_refused`, or `code_execution` with its outcome. */
export function auditedExecutions (audit: { enqueue: (entry: AuditEntry) => void }): Partial<ExecutionHooks> {
  const row = ({ tenantId, executionId, userId, codeSha256 }: ExecutionFacts) => ({ tenantId, executionId, userId, codeSha256, createdAt: new Date() })
  return {
    refused (execution, refusal) {
      audit.enqueue({ ...row(execution), action: 'execution_refused', success: false, errorCode: refusal.code, durationMs: null, toolCalls: 0 })
    },
    ended (execution, result, timing = { measured: true }) {
      audit.enqueue({
        ...row(execution),
        action: execution.auditAction ?? 'code_execution',
        success: result.success,
        errorCode: result.error?.code ?? null,
        durationMs: timing.measured ? Math.round(result.stats.duration) : null,
        toolCalls: result.stats.toolCallCount,
        ...(timing.measured ? { meter: meterOf(result) } : {})
      })
    }
  }
}

/** The meter's figures for the audit row; 0 for what a result without a meter (nothing ran) lacks. */
function meterOf ({ stats }: ExecutionResult): AuditMeter {
  return { cpuMs: stats.cpuMs ?? 0, peakHeapBytes: stats.peakHeapBytes ?? 0, toolTimeMs: stats.toolTimeMs ?? 0, bytesIn: stats.bytesIn ?? 0, bytesOut: stats.bytesOut ?? 0 }
}

/** The metrics an execution moves; prom-client's Counter, Gauge and Histogram fit. */
export interface ExecutionMetrics {
  executions: { inc: (labels: { code: string }) => void }
  executionDuration: { observe: (seconds: number) => void }
  executionsInFlight: { inc: () => void, dec: () => void }
  quotaRefusals: { inc: (labels: { kind: string }) => void }
}

/** executions_total, the duration histogram, the in-flight gauge and refusals; and a log line for each end. */
export function measuredExecutions (metrics: ExecutionMetrics, log: FastifyBaseLogger): Partial<ExecutionHooks> {
  // Its lines are info lines: below that level no child logger is made for them.
  const logOf = (execution: ExecutionFacts): FastifyBaseLogger =>
    execution.log ?? (writesInfo(log) ? log.child({ tenantId: execution.tenantId, executionId: execution.executionId }) : log)
  return {
    refused (execution, refusal) {
      metrics.quotaRefusals.inc({ kind: refusal.kind })
      logOf(execution).info({ refusal: refusal.kind }, 'execution refused')
    },
    started () { metrics.executionsInFlight.inc() },
    settled () { metrics.executionsInFlight.dec() },
    ended (execution, result, timing = { measured: true }) {
      metrics.executions.inc({ code: result.error?.code ?? 'OK' })
      if (timing.measured) metrics.executionDuration.observe(result.stats.duration / 1000)
      logOf(execution).info({ success: result.success, errorCode: result.error?.code, durationMs: result.stats.duration, toolCalls: result.stats.toolCallCount }, 'execution finished')
    }
  }
}

/**
 * Whether `log` writes info lines (pino's isLevelEnabled; a logger without it is taken to write
 * them): a child logger serializes its bindings when it is made, which is wasted when its lines
 * are not written.
 */
export function writesInfo (log: FastifyBaseLogger): boolean {
  return (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? true
}
