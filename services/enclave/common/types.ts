// Public types of the enclave. Kept free of runtime code so the HTTP layer can import them cheaply.

export type SecurityLevel = 'STRICT' | 'SECURE' | 'STANDARD' | 'PERMISSIVE'

// The result's shape and its error codes are the HTTP contract's: one TypeBox schema describes
// them, the route serialises with it, and these types come from it.
export type { EnclaveErrorCode, ExecutionError, ExecutionResult, ExecutionStats, LogEntry, LogLevel } from '../../../schemas/execution-result.ts'
import type { ExecutionResult, LogLevel } from '../../../schemas/execution-result.ts'

/**
 * Called for every `callTool(name, args)`; `context` is whatever `run()` was given; `runEnded` is
 * aborted when the run is over (its result is known), so work not yet started can be skipped.
 */
export type ToolHandler = (name: string, args: unknown, context: unknown, runEnded: AbortSignal) => Promise<unknown>

export interface EnclaveLogger {
  info: (obj: unknown, msg?: string) => void
  warn: (obj: unknown, msg?: string) => void
  error: (obj: unknown, msg?: string) => void
}

export interface RunnerExitInfo {
  runner: number
  pid: number | undefined
  code: number | null
  signal: string | null
  /** Executions that were in flight on it and have been ended. */
  inFlight: number
  /** True when the runner's output showed it ran out of memory. */
  outOfMemory: boolean
}

export interface EnclaveOptions {
  securityLevel?: SecurityLevel
  toolHandler?: ToolHandler
  /** Runner processes; 0 or undefined = os.availableParallelism(). */
  runners?: number
  logger?: EnclaveLogger
  onRunnerExit?: (info: RunnerExitInfo) => void
  /** Idle isolates a runner keeps per isolateKey (LRU beyond it). */
  maxIdleIsolatesPerKey?: number
  /** Idle isolates a runner keeps in all. */
  maxIdleIsolates?: number
  /** An idle isolate is disposed after this many ms unused. */
  idleIsolateTtlMs?: number
  /** An isolate is retired after this many runs. */
  maxRunsPerIsolate?: number
  /** Cores the isolates share, for per-tenant CPU fairness; default: this machine's. */
  cpuCores?: number
  /** How long a tenant whose script stopped a runner runs on the quarantine runner (ms). */
  quarantineMs?: number
  /** Resident memory a runner may hold beyond twice its runs' memory limits before it is stopped. */
  runnerBaseMemoryMB?: number
  /** How often the supervisor reads each runner's resident memory (ms). */
  memoryWatchIntervalMs?: number
}

export interface RunOptions {
  timeoutMs?: number
  memoryLimitMB?: number
  maxToolCalls?: number
  /** UTF-8 bytes of the JSON value plus the JSON log entries. */
  maxOutputBytes?: number
  /** UTF-8 bytes of captured console output (the level's console limit by default). */
  maxConsoleBytes?: number
  /** UTF-8 bytes of the code. */
  maxCodeBytes?: number
  /** UTF-8 bytes of one call's JSON arguments. */
  maxToolArgsBytes?: number
  executionId?: string
  /** This run's tools: called for every callTool (instead of the enclave's toolHandler). */
  tools?: ToolHandler
  /** Handed to the tool handler as its third argument; never enters the isolate. */
  context?: unknown
  /**
   * Called once the run's CPU is really free: with the result for most runs, later for a run
   * that ended (e.g. TIMEOUT) while its isolate was still executing. Hold the tenant's slot until then.
   */
  onSettled?: () => void
  /**
   * Live events of this run (log lines, tool calls and results) as they happen; without it the
   * runner reports logs only with the result. A throwing listener is ignored.
   */
  onEvent?: (event: EnclaveEvent) => void
  /**
   * A call the sandbox refused before any tool saw it (a name that is not a tool name, arguments
   * that are not JSON or over maxToolArgsBytes, the call over maxToolCalls): for the audit.
   */
  onToolRefused?: (call: { tool: string, code: string, argsBytes: number }) => void
  /** Isolates are reused only between runs with the same key (e.g. the tenant id), never across keys. */
  isolateKey?: string
  /**
   * What an earlier start of this run drew from Math.random, Date.now / `new Date()` / `Date()` and
   * performance.now, in order: returned first, so the run takes the same branches again.
   */
  replay?: number[]
  /**
   * The values the run drew live (after `replay`), in order: told before the tool call that follows
   * them reaches `tools`, and with the result for those after the last call. Recording is on only
   * for runs given this; null: the record went over its bound and was dropped (not replayable).
   */
  onDrawn?: (values: number[] | null) => void
  /** Sandbox modules this run may import (names from the built allow-list); none by default. */
  modules?: readonly string[]
}

/**
 * What a watched run reports while it runs: console lines as they are logged, each tool call as it
 * reaches the main process and its outcome (`code` OK or the error code).
 */
export type EnclaveEvent =
  | { type: 'log', level: LogLevel, message: string }
  | { type: 'tool_call', index: number, tool: string }
  | { type: 'tool_result', index: number, code: string, durationMs: number }

export interface EnclaveStats {
  runners: number
  runnersReady: number
  runnerRestarts: number
  inFlight: number
  executions: number
}

/** Emitted as 'run' after every execution: for metrics and tests, never sent to clients. */
export interface RunEvent {
  executionId: string
  isolateKey: string | undefined
  runner: number
  /** Opaque id of the isolate that ran it (runner pid and sequence). */
  isolateId: string | undefined
  reusedIsolate: boolean
  result: ExecutionResult
}
