import { hash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Enclave, EnclaveEvent, ExecutionResult } from '../enclave/index.ts'
import { cancelledError, enclaveError, failure } from '../enclave/index.ts'
import { admitExecution, type Refusal } from '../quotas/admission.ts'
import { utcDayWindow, type LimitStore } from '../store/index.ts'
import { chargeCpu } from '../quotas/daily-counters.ts'
import { stripTypes, type ScriptLanguage } from '../code-mode/strip-types.ts'
import type { ScriptPool } from '../code-mode/script-pool.ts'
import { modulesFor, type ModuleCatalog } from '../sandbox-modules/catalog.ts'
import { createToolGateway, type ToolCaller, type ToolGatewayDeps } from './tool-gateway.ts'
import { codeSizeRefusalOf, maxCodeBytes, runTimeoutMs } from './execution-request.ts'
import type { ExecutionFacts, ExecutionHooks } from './execution-hooks.ts'
import { newToolMeter, withMeter, type ToolMeter } from './execution-meter.ts'
import { replayingGateway, type Suspension } from './approvals/replaying-gateway.ts'
import type { RunJournal } from './approvals/run-journal.ts'

export interface ExecutionDeps extends ToolGatewayDeps {
  enclave: Enclave
  store: LimitStore
  /** Told of every execution's refusal, start, settling and end: audit, metrics, logs. */
  hooks: ExecutionHooks
  /** Strips large TypeScript scripts off the event loop; without it, stripping is inline. */
  scripts?: ScriptPool
  /** The sandbox modules scripts may import; none without it. */
  modules?: ModuleCatalog
  /** A tenant's own narrower list of them (null: all). */
  modulesOf?: (tenantId: string) => Promise<readonly string[] | null>
}

/** A run's admission: the concurrency slot it holds, and today's execution it took. */
interface HeldAdmission { release: () => Promise<void>, refund: () => Promise<void> }

export interface ExecutionRequest {
  executionId: string
  code: string
  /** TypeScript is type-stripped (positions kept) before the enclave sees it. Default javascript. */
  language?: ScriptLanguage
  /** The caller's wish; it may lower the tier's maxExecutionDurationMs, never raise it. */
  timeoutMs?: number
  /** Live events of the run: `started` once admitted, then log lines, tool calls and results. */
  onEvent?: (event: ExecutionEvent) => void
  /** Aborting it cancels the run: it ends at once with CANCELLED (uncatchable). */
  signal?: AbortSignal
  /**
   * Already admitted elsewhere (a queued run: the daily quota was consumed at submission and the
   * worker holds the concurrency slot); executeScript then takes neither and releases this.
   */
  admitted?: HeldAdmission
  /**
   * The run may start before it is allowed to act (a queued run whose row is still being marked
   * running): its tool calls wait for this. Resolving false means it must not act at all; the
   * caller then aborts it (signal), and a call that was waiting never reaches a tool.
   */
  mayAct?: Promise<boolean>
  /** The log of the request that brought it, for the hooks' log lines. */
  log?: FastifyBaseLogger
  /** What its audit row says it was: a REST or session run (default), or an MCP client's. */
  auditAction?: ExecutionFacts['auditAction']
  /**
   * Decides the result that stands before the hooks hear of it (a queued run: a cancel may have
   * claimed the run's end first, and then the run ends cancelled whatever it computed).
   */
  settle?: (result: ExecutionResult) => Promise<ExecutionResult>
  /**
   * The run may wait for approvals (a queued run): a gated call suspends it instead of ending it,
   * and `journal` (from its last suspension; none on the first start) is replayed first.
   */
  approvals?: { journal?: RunJournal }
}

/** What a run reports while it goes on; the event stream numbers and timestamps them. */
export type ExecutionEvent = { type: 'started', data: Record<string, never> }
  | { type: 'approval_required', data: { callId: string, tool: string, args: unknown, position: number } }
  | { [K in EnclaveEvent['type']]: { type: K, data: Omit<Extract<EnclaveEvent, { type: K }>, 'type'> } }[EnclaveEvent['type']]

export type ExecutionOutcome =
  /** `suspended`: the start stopped to wait for decisions (its result is not the run's); keep the journal. */
  | { ran: true, result: ExecutionResult, suspended?: { journal: RunJournal } }
  | { ran: false, refusal: Refusal }

// One-shot: no Hash object per run (createHash was about twice its cost on a script this short).
export const sha256 = (text: string): string => hash('sha256', text, 'hex')

/**
 * The execute use case, the one path every run takes (POST /api/execute, a session frame, a
 * queued run): refuse what the code-size rule and the quotas refuse (consuming nothing), run what
 * they admit in the tenant's isolate with the tool gateway, and tell the hooks (audit, metrics,
 * logs) of the refusal, or of the run's start, settling and end. The audit row is queued, so it
 * adds no database round trip to the response.
 */
export async function executeScript (deps: ExecutionDeps, caller: ToolCaller, request: ExecutionRequest): Promise<ExecutionOutcome> {
  const { quotas } = caller
  const { hooks } = deps
  const execution: ExecutionFacts = {
    tenantId: caller.tenantId,
    executionId: request.executionId,
    userId: caller.userId,
    codeSha256: sha256(request.code),
    ...(request.log !== undefined ? { log: request.log } : {}),
    ...(request.auditAction !== undefined ? { auditAction: request.auditAction } : {})
  }
  let admission = request.admitted
  if (admission === undefined) {
    const tooLarge = codeSizeRefusalOf(request.code, quotas)
    const admitted = tooLarge !== undefined
      ? { admitted: false as const, refusal: tooLarge }
      : await admitExecution(deps.store, caller, request.executionId, runTimeoutMs(request.timeoutMs, quotas))
    if (!admitted.admitted) {
      hooks.refused(execution, admitted.refusal)
      return { ran: false, refusal: admitted.refusal }
    }
    admission = admitted
  }
  hooks.started(execution)
  let result: ExecutionResult
  let suspension: Suspension | undefined
  const meter = newToolMeter()
  try {
    const ran = await runAdmitted(deps, caller, request, admission, meter)
    suspension = ran.suspension
    result = withMeter(ran.result, request.code, meter)
    // Before anyone hears of the end, so the tenant's next run already sees this one's CPU: the
    // meter's cpuMs, the figure billing and the rollups read.
    // If the store is down the run goes uncharged: the next admission fails closed anyway.
    await chargeCpu(deps.store, caller, result.stats.cpuMs ?? result.stats.cpuTime, utcDayWindow()).catch(() => {})
  } finally {
    hooks.settled(execution)
  }
  // A run stopped unseen (never allowed to act) is not this run's end: whoever ended it (a
  // cancel while queued, the lost-run check) tells the hooks, and an execution ends once.
  if (request.mayAct !== undefined && !await request.mayAct) return { ran: true, result }
  if (suspension !== undefined) {
    // Not the run's end: no `ended`, no settle; the caller keeps the journal and the run waits.
    for (const call of suspension.pending) {
      const event: ExecutionEvent = { type: 'approval_required', data: { callId: call.callId, tool: call.tool, args: JSON.parse(call.argsJson), position: call.position } }
      try { request.onEvent?.(event) } catch { /* a watcher's failure is not the run's */ }
    }
    return { ran: true, result, suspended: { journal: suspension.journal } }
  }
  if (request.settle !== undefined) result = await request.settle(result)
  hooks.ended(execution, result)
  return { ran: true, result }
}

/** The run itself, once admitted: cancelled before it began, types stripped, then the enclave. */
async function runAdmitted (deps: ExecutionDeps, caller: ToolCaller, request: ExecutionRequest, admission: HeldAdmission, meter: ToolMeter): Promise<{ result: ExecutionResult, suspension?: Suspension }> {
  const { quotas } = caller
  const { onEvent, signal } = request
  const started = performance.now()
  if (signal?.aborted === true) {
    // Cancelled before it ran: nothing ran, so nothing is charged but the audit row.
    await admission.release().catch(() => {})
    return { result: failure(request.executionId, started, cancelledError()) }
  }
  const emit = (event: ExecutionEvent): void => {
    try { onEvent?.(event) } catch { /* a watcher's failure is not the run's */ }
  }
  emit({ type: 'started', data: {} })

  let code = request.code
  if (request.language === 'typescript') {
    // After admission, so TS refused here counts like a JavaScript syntax error the enclave
    // refuses (and a tenant out of quota cannot make the host strip for free).
    const startedAt = performance.now()
    let stripped
    try {
      stripped = deps.scripts !== undefined ? await deps.scripts.strip(code, 'typescript') : stripTypes(code)
    } catch (err) {
      await admission.release().catch(() => {})
      throw err
    }
    if (!stripped.ok) {
      await admission.release().catch(() => {})
      return {
        result: {
          executionId: request.executionId,
          success: false,
          error: enclaveError('VALIDATION_ERROR', stripped.message),
          logs: [],
          stats: { duration: performance.now() - startedAt, toolCallCount: 0 }
        }
      }
    }
    code = stripped.code
  }

  // Listened for only once the run is about to start, so no early return leaves it behind.
  const onAbort = (): void => { deps.enclave.cancel(request.executionId) }
  signal?.addEventListener('abort', onAbort, { once: true })
  let result: ExecutionResult
  const gateway = createToolGateway(deps, caller, request.executionId, runTimeoutMs(request.timeoutMs, quotas), meter)
  const replaying = request.approvals !== undefined ? replayingGateway(gateway, request.approvals.journal, quotas.maxJournalBytes, request.mayAct) : undefined
  const tools = replaying ?? gatedTools(gateway, request.mayAct)
  const toEvent = (e: EnclaveEvent): void => {
    if (replaying !== undefined && !replaying.showEvent(e)) return
    const { type, ...data } = e
    emit({ type, data } as ExecutionEvent)
  }
  try {
    // The slot is held until the run's CPU is really free, which can be after the result (a run
    // that timed out inside a builtin V8 stops late): until then it counts as concurrent.
    result = await deps.enclave.run(code, {
      executionId: request.executionId,
      isolateKey: caller.tenantId,
      timeoutMs: runTimeoutMs(request.timeoutMs, quotas),
      memoryLimitMB: quotas.maxMemoryMB,
      maxToolCalls: quotas.maxToolCallsPerExecution,
      maxOutputBytes: quotas.maxOutputSizeKB * 1024,
      maxCodeBytes: maxCodeBytes(quotas),
      ...(deps.modules !== undefined ? { modules: modulesFor(deps.modules, await deps.modulesOf?.(caller.tenantId)) } : {}),
      tools,
      onSettled: () => { admission.release().catch(() => {}) },
      onToolRefused: tools.refused,
      // A replaying run always watches its events: it counts the console lines it printed.
      ...(onEvent !== undefined || replaying !== undefined ? { onEvent: toEvent } : {}),
      ...(replaying !== undefined ? { replay: replaying.replay, onDrawn: replaying.onDrawn } : {})
    })
  } catch (err) {
    await admission.release().catch(() => {})
    throw err
  } finally {
    signal?.removeEventListener('abort', onAbort)
    // Before the response, so /api/usage right after the run counts exactly the calls made.
    // If the store is down, the unused units stay counted: over, never under, the real use.
    await tools.settle().catch(() => {})
  }
  // Stopped with its runner by another tenant's script: not this tenant's loss.
  if (result.error?.code === 'RUNNER_CRASHED') await admission.refund().catch(() => {})
  if (replaying === undefined) return { result }
  const { suspension, error } = await replaying.finish(result)
  if (error !== undefined) return { result: { ...result, success: false, value: undefined, error } }
  return { result, ...(suspension !== undefined ? { suspension } : {}) }
}

type ToolGateway = ReturnType<typeof createToolGateway>

/** The gateway, its calls held until `mayAct` says yes (and refused if it says no). */
function gatedTools (gateway: ToolGateway, mayAct: Promise<boolean> | undefined): ToolGateway {
  if (mayAct === undefined) return gateway
  const gated = async (...call: Parameters<ToolGateway>): Promise<unknown> => {
    if (!await mayAct) throw new Error('The execution did not start: it ended before it could act')
    return await gateway(...call)
  }
  return Object.assign(gated, { settle: gateway.settle, refused: gateway.refused, callAt: gateway.callAt })
}
