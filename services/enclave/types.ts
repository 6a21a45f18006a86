// Public types of the enclave. Kept free of runtime code so the HTTP layer can import them cheaply.

export type SecurityLevel = 'STRICT' | 'SECURE' | 'STANDARD' | 'PERMISSIVE'

export type EnclaveErrorCode =
  | 'VALIDATION_ERROR'
  | 'EXECUTION_ERROR'
  | 'TIMEOUT'
  | 'MEMORY_LIMIT_EXCEEDED'
  | 'OUTPUT_LIMIT_EXCEEDED'
  | 'MAX_TOOL_CALLS'
  | 'TOOL_QUOTA_EXCEEDED'
  | 'PERMISSION_DENIED'
  | 'TOOL_DISABLED'
  | 'UNKNOWN_TOOL'
  | 'TOOL_RATE_LIMITED'
  | 'TOOL_ERROR'
  | 'RUNNER_CRASHED'
  | 'INTERNAL_ERROR'

export type LogLevel = 'log' | 'info' | 'warn' | 'error' | 'debug'

export interface LogEntry { level: LogLevel, message: string }

export interface ExecutionError { name: string, code: EnclaveErrorCode, message: string }

export interface ExecutionStats {
  /** Wall time in ms from `run()` to its result. */
  duration: number
  toolCallCount: number
  /** Bytes of isolate heap in use after the run, where it could be measured. */
  memoryUsage?: number
  /** CPU ms the isolate spent on this run. */
  cpuTime?: number
}

export interface ExecutionResult {
  executionId: string
  success: boolean
  value?: unknown
  error?: ExecutionError
  logs: LogEntry[]
  stats: ExecutionStats
}

/** Called for every `callTool(name, args)`; `context` is whatever `run()` was given. */
export type ToolHandler = (name: string, args: unknown, context: unknown) => Promise<unknown>

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
  /** Isolates are reused only between runs with the same key (e.g. the tenant id), never across keys. */
  isolateKey?: string
}

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
