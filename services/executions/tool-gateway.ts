import { createHash } from 'node:crypto'
import { Compile } from 'typebox/compile'
import type { TSchema } from 'typebox'
import type { Validator } from 'typebox/compile'
import { withTenant, type AppDatabase } from '../db/with-tenant.ts'
import type { RunBounds } from '../db/run-bounds.ts'
import { DatabaseBusyError, StatementTooLongError, tierBounded, tierStatementFailure } from '../db/connection-shares.ts'
import type { LimitStore } from '../store/index.ts'
import { toolWindowKey } from '../quotas/counter-keys.ts'
import { ToolQuotaReservation } from '../quotas/tool-quota-reservation.ts'
import { userToolQuotaMessage } from '../quotas/daily-counters.ts'
import type { ToolRegistry } from '../tools/tool-registry.ts'
import { ToolLimitError, type ApprovalMode, type ToolCaller } from '../tools/tool-definition.ts'
import { formatMessage } from '../errors/registry.ts'
import { FifoSemaphore, SemaphoreTimeoutError } from '../fifo-semaphore.ts'
import { EnclaveToolError } from '../enclave/index.ts'
import { validatorFor as jsonSchemaValidator } from '../tools/schema-validation.ts'
import { HttpToolError } from '../tools/http-tool-runner.ts'
import { callableToolNames, permissionDeniedMessage, toolDisabledMessage, toolNotFoundMessage } from '../tools/tool-not-found.ts'
import type { ToolCallEntry } from '../audit/audit-writer.ts'
import { newToolMeter, type ToolMeter } from './execution-meter.ts'
import { ApprovalPending } from './approvals/run-journal.ts'
import { afterAnswer } from './after-answer.ts'

export type { ToolCaller }

export interface ToolGatewayDeps {
  db: AppDatabase
  store: LimitStore
  tools: ToolRegistry
  /** Told of every call's outcome (metrics); `code` is 'OK' for a success. */
  onToolCall?: (tool: string, code: string) => void
  /** Receives one row per call, allowed or refused (tool_calls); the execute use case passes its writer. */
  audit?: { enqueueToolCall: (entry: ToolCallEntry) => void }
}

/**
 * How a run that can wait for approvals decides a gated call (see approvals/replaying-gateway.ts):
 * true runs it now (approved, or a grant covers it); false makes it wait (ApprovalPending).
 * Without one, a gated call ends the run APPROVAL_REQUIRED.
 */
export type ApprovalGate = (call: { callIndex: number, tool: string }) => boolean

const EMPTY_SHA256 = createHash('sha256').digest('hex')

/** What one call adds to its audit row beyond the outcome. */
interface CallFacts { resultBytes?: number | null, upstreamStatus?: number | null }

const validators = new WeakMap<TSchema, Validator>()
function validatorFor (schema: TSchema): Validator {
  let validator = validators.get(schema)
  if (validator === undefined) {
    validator = Compile(schema)
    validators.set(schema, validator)
  }
  return validator
}

/**
 * One script's `callTool`, checked in the order the contract gives: the tenant's daily tool
 * calls (fatal), the tool's existence (TOOL_NOT_FOUND), the token's `tool:<name>` permission, the
 * tenant's setting (disabled, per-tool window), the arguments' schema, and then the tool itself in a transaction
 * scoped to the tenant, so RLS bounds every row it touches. The per-run count is the enclave's.
 *
 * A run has at most `tools.limits.maxConcurrentPerRun` calls in progress; further calls wait in
 * order before anything is counted. The gateway is made when the run starts and cannot see its
 * end, so a wait is bounded by the tier's longest run (never shorter than the run's timeout):
 * a call still waiting then is dropped, unrun, and its answer goes nowhere.
 *
 * Platform tools (definitions with `http`) are called by the registry's HTTP runner after the
 * same checks, outside any transaction. Every call, allowed or refused, is audited in the order
 * the script made them (`executionId` and call index; the idempotency key upstreams receive).
 */
export function createToolGateway (deps: ToolGatewayDeps, caller: ToolCaller, executionId = 'unknown', runTimeoutMs?: number, meter: ToolMeter = newToolMeter()) {
  let calls = 0
  const inProgress = new FifoSemaphore(deps.tools.limits.maxConcurrentPerRun)
  const waitUntil = Date.now() + caller.quotas.maxExecutionDurationMs
  // When the run ends at the latest: its database statements may not outlive it.
  const runDeadline = Date.now() + (runTimeoutMs ?? caller.quotas.maxExecutionDurationMs)
  // Database calls in progress: `settle` waits for them, so the run's result goes out only
  // once each has committed or been rolled back (see RunBounds).
  const inDatabase = new Set<Promise<unknown>>()
  // The daily tool quota is reserved in blocks for this run; `settle` gives back what is unused.
  const userToolCalls = caller.perUser?.toolCallsPerDay
  const dailyQuota = new ToolQuotaReservation(deps.store, caller.tenantId, caller.quotas.maxToolCallsPerDay, caller.quotas.maxToolCallsPerExecution,
    userToolCalls === undefined ? undefined : { userId: caller.userId, limit: userToolCalls })

  // `runEnded` is the enclave's signal that the run is over: a call still waiting for its place
  // then never starts (it would act after the run's own timeout or failure).
  const callTool = async function callTool (name: string, args: unknown, _context?: unknown, runEnded?: AbortSignal): Promise<unknown> {
    return await callAt(calls++, name, args, runEnded)
  }
  /** A call at a position its caller chose (a replaying run numbers calls itself, replayed ones included). */
  const callAt = async (callIndex: number, name: string, args: unknown, runEnded?: AbortSignal, gate?: ApprovalGate): Promise<unknown> => {
    const started = performance.now()
    const argsJson = JSON.stringify(args ?? null)
    const report = (tool: string, code: string, facts: CallFacts = {}): void => {
      const durationMs = performance.now() - started
      const argsBytes = Buffer.byteLength(argsJson)
      meter.argsBytes += argsBytes
      meter.toolTimeMs += durationMs
      const createdAt = Date.now()
      // The row's facts are taken now; hashing and queueing wait until the script has its answer.
      afterAnswer(() => {
        deps.onToolCall?.(tool, code)
        deps.audit?.enqueueToolCall({
          tenantId: caller.tenantId,
          executionId,
          callIndex,
          // The name comes from the script: bounded before it is stored.
          tool: tool.slice(0, 200),
          code,
          durationMs: Math.round(durationMs),
          argsSha256: createHash('sha256').update(argsJson).digest('hex'),
          argsBytes,
          resultBytes: facts.resultBytes ?? null,
          upstreamStatus: facts.upstreamStatus ?? null,
          createdAt: new Date(createdAt)
        })
      })
    }
    let release
    try {
      release = await inProgress.acquire(waitUntil - Date.now())
    } catch (err) {
      if (!(err instanceof SemaphoreTimeoutError)) throw err
      report(name, 'TIMEOUT')
      throw new EnclaveToolError('TIMEOUT', 'The run ended while this tool call waited for a free place', { fatal: true })
    }
    if (runEnded?.aborted === true) {
      release()
      report(name, 'TIMEOUT')
      throw new EnclaveToolError('TIMEOUT', 'The run ended while this tool call waited for a free place', { fatal: true })
    }
    try {
      return await checkedCall(name, args, callIndex, report, runEnded, gate)
    } finally {
      release()
    }
  }

  /** Call once the run has ended: returns the run's unused daily tool calls to the shared counter. */
  const settle = async (): Promise<void> => {
    await Promise.allSettled([...inDatabase])
    await dailyQuota.giveBack()
  }

  /**
   * A call the sandbox refused before it got here (see RunOptions.onToolRefused): it takes the
   * next call index and gets its row like any other. Its arguments never left the isolate, so
   * the row has the hash of nothing and, when known, their size.
   */
  const refused = (call: { tool: string, code: string, argsBytes: number }, callIndex = calls++): void => {
    deps.onToolCall?.(call.tool, call.code)
    deps.audit?.enqueueToolCall({
      tenantId: caller.tenantId,
      executionId,
      callIndex,
      tool: call.tool.slice(0, 200),
      code: call.code,
      durationMs: 0,
      argsSha256: EMPTY_SHA256,
      argsBytes: call.argsBytes,
      resultBytes: null,
      upstreamStatus: null,
      createdAt: new Date()
    })
  }
  return Object.assign(callTool, { settle, refused, callAt })

  async function checkedCall (name: string, args: unknown, callIndex: number, report: (tool: string, code: string, facts?: CallFacts) => void, runEnded: AbortSignal | undefined, gate: ApprovalGate | undefined): Promise<unknown> {
    // Checked once the arguments are valid, so no one is asked to approve a call that would fail.
    // A run that cannot wait for a decision (this one answers its caller directly) ends here.
    const approvalRequired = (approval: ApprovalMode): void => {
      if (approval === 'never') return
      if (gate !== undefined) {
        if (gate({ callIndex, tool: name })) return
        // Not made yet: audited, counted and rate-limited when it runs after a decision.
        dailyQuota.putBack()
        throw new ApprovalPending()
      }
      report(name, 'APPROVAL_REQUIRED')
      throw new EnclaveToolError('APPROVAL_REQUIRED', formatMessage('APPROVAL_REQUIRED', { tool: name }), { fatal: true })
    }
    let daily
    try {
      daily = await dailyQuota.take()
    } catch (err) {
      // A call that cannot be metered does not happen: the run ends (fail closed).
      report(name, 'INTERNAL_ERROR')
      throw new EnclaveToolError('INTERNAL_ERROR', 'Tool calls cannot be metered right now', { fatal: true, cause: err })
    }
    if (!daily && dailyQuota.refusedBy === 'user') {
      report(name, 'USER_QUOTA_EXCEEDED')
      throw new EnclaveToolError('USER_QUOTA_EXCEEDED', userToolQuotaMessage(userToolCalls ?? 0), { fatal: true })
    }
    if (!daily) {
      report(name, 'TOOL_QUOTA_EXCEEDED')
      throw new EnclaveToolError('TOOL_QUOTA_EXCEEDED', `Daily tool call quota exceeded (${caller.quotas.maxToolCallsPerDay})`, { fatal: true })
    }
    // Existence first: a name no tool has is TOOL_NOT_FOUND (suggesting only tools this caller
    // may call), a tool that exists but is not granted is PERMISSION_DENIED.
    const tool = await deps.tools.get(caller.tenantId, name)
    if (tool === undefined) {
      report(name, 'TOOL_NOT_FOUND')
      throw new EnclaveToolError('TOOL_NOT_FOUND', toolNotFoundMessage(name, callableToolNames(await deps.tools.list(caller.tenantId), caller.permissions)))
    }
    if (!caller.permissions.includes(`tool:${name}`)) {
      report(name, 'PERMISSION_DENIED')
      throw new EnclaveToolError('PERMISSION_DENIED', permissionDeniedMessage(name))
    }
    if (!tool.enabled) {
      report(name, 'TOOL_DISABLED')
      throw new EnclaveToolError('TOOL_DISABLED', toolDisabledMessage(name))
    }
    if (tool.rateLimit !== null) {
      const { calls, windowMs } = tool.rateLimit
      const windowStart = Math.floor(Date.now() / windowMs) * windowMs
      const window = await deps.store.consume(toolWindowKey(caller.tenantId, name, windowStart), 1, calls, windowStart + windowMs - Date.now() + 1000)
      if (!window.allowed) {
        report(name, 'TOOL_RATE_LIMITED')
        throw new EnclaveToolError('TOOL_RATE_LIMITED', `Rate limit exceeded for ${name}: ${calls} calls per ${windowMs} ms`)
      }
    }
    const { definition } = tool
    if (definition.http !== undefined) {
      // Admin-supplied JSON Schema: Ajv 2020, compiled once per tool version.
      const validator = jsonSchemaValidator(definition.argsSchema as Record<string, unknown>)
      if (!validator.check(args)) {
        report(name, 'TOOL_ERROR')
        throw new EnclaveToolError('TOOL_ERROR', `Invalid arguments for ${name}: args${validator.firstError().startsWith('/') ? '' : ' '}${validator.firstError()}`)
      }
      approvalRequired(tool.approval)
      const runner = deps.tools.httpRunner
      if (runner === undefined) {
        report(name, 'TOOL_ERROR')
        throw new EnclaveToolError('TOOL_ERROR', `Tool ${name} failed: HTTP tools are not available here`)
      }
      try {
        const outcome = await runner.call(definition as typeof definition & { http: NonNullable<typeof definition.http> }, { tenantId: caller.tenantId, userId: caller.userId, executionId, callIndex, args, runEnded })
        report(name, 'OK', { resultBytes: outcome.resultBytes, upstreamStatus: outcome.upstreamStatus })
        return outcome.value
      } catch (err) {
        const facts = err instanceof HttpToolError ? { resultBytes: err.resultBytes, upstreamStatus: err.upstreamStatus } : {}
        report(name, 'TOOL_ERROR', facts)
        const cause = err instanceof HttpToolError ? err.message : 'internal failure'
        throw new EnclaveToolError('TOOL_ERROR', `Tool ${name} failed: ${cause}`, { cause: err })
      }
    }
    const validator = validatorFor(definition.argsSchema)
    if (!validator.Check(args)) {
      const first = validator.Errors(args)[0]
      const where = first?.instancePath === '' || first?.instancePath === undefined ? 'args' : `args${first.instancePath}`
      report(name, 'TOOL_ERROR')
      throw new EnclaveToolError('TOOL_ERROR', `Invalid arguments for ${name}: ${where} ${first?.message ?? 'is invalid'}`)
    }
    approvalRequired(tool.approval)
    try {
      const { run, runAsTenant } = definition
      const bounded = tierBounded({ deadline: runDeadline, ceilingMs: caller.quotas.maxExecutionDurationMs, ...(runEnded !== undefined ? { ended: runEnded } : {}), ...(caller.tier !== undefined ? { tier: caller.tier } : {}) } satisfies RunBounds, deps.db.tierStatementMs)
      const { bounds } = bounded
      let work: Promise<unknown>
      if (runAsTenant !== undefined) work = runAsTenant(deps.db, caller, args, tool.config, deps.tools.limits, bounds)
      else if (run !== undefined) work = withTenant(deps.db, caller.tenantId, async (trx) => await run(trx, caller, args, tool.config, deps.tools.limits), bounds)
      else throw new Error(`Tool ${name} has nothing to run`)
      inDatabase.add(work)
      let result: unknown
      try { result = await work.catch((err: unknown) => { throw tierStatementFailure(err, bounded) }) } finally { inDatabase.delete(work) }
      report(name, 'OK', { resultBytes: Buffer.byteLength(JSON.stringify(result ?? null)) })
      return result
    } catch (err) {
      report(name, 'TOOL_ERROR')
      // The limit is the script's to know; database details stay on the host.
      if (err instanceof ToolLimitError || err instanceof DatabaseBusyError || err instanceof StatementTooLongError) throw new EnclaveToolError('TOOL_ERROR', err.message, { cause: err })
      throw new EnclaveToolError('TOOL_ERROR', `Tool ${name} failed`, { cause: err })
    }
  }
}
