import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../../plugins/metrics.ts'
import type { ExecutionResult } from '../enclave/index.ts'
import { executeScript, type ExecutionDeps, type ExecutionRequest } from './execute-script.ts'
import type { ToolCaller } from './tool-gateway.ts'

/** A refusal as every synchronous entry point answers it (in the clear or sealed in a frame). */
export interface RefusalAnswer {
  status: 413 | 429
  body: { error: string, code: string, limit: number, reset?: string }
  /** Seconds until the daily quota resets; sent as Retry-After. */
  retryAfterSeconds?: number
}

export type ObservedOutcome =
  | { ran: true, result: ExecutionResult }
  | { ran: false, refusal: RefusalAnswer }

/**
 * executeScript for a caller waiting on the answer (POST /api/execute, session frames): counts
 * the run in the metrics, logs its end, and shapes a refusal into the contract's body.
 */
export async function executeObserved (
  deps: ExecutionDeps,
  observe: { metrics: Metrics, log: FastifyBaseLogger },
  caller: ToolCaller,
  request: ExecutionRequest
): Promise<ObservedOutcome> {
  const { metrics, log } = observe
  metrics.executionsInFlight.inc()
  let outcome
  try {
    outcome = await executeScript(deps, caller, request)
  } finally {
    metrics.executionsInFlight.dec()
  }
  if (!outcome.ran) {
    const { refusal } = outcome
    metrics.quotaRefusals.inc({ kind: refusal.kind })
    log.info({ refusal: refusal.kind }, 'execution refused')
    const { error, code, limit } = refusal
    return refusal.kind === 'daily-executions'
      ? { ran: false, refusal: { status: refusal.status, body: { error, code, limit, reset: refusal.reset }, retryAfterSeconds: refusal.retryAfterSeconds } }
      : { ran: false, refusal: { status: refusal.status, body: { error, code, limit } } }
  }
  const { result } = outcome
  metrics.executions.inc({ code: result.error?.code ?? 'OK' })
  metrics.executionDuration.observe(result.stats.duration / 1000)
  log.info({ success: result.success, errorCode: result.error?.code, durationMs: result.stats.duration, toolCalls: result.stats.toolCallCount }, 'execution finished')
  return outcome
}
