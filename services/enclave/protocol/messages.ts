// Messages between the main process and a runner (one JSON object per line, see line-channel.ts), and
// between a runner and the bootstrap inside an isolate.
import type { ExecutionError } from '../common/types.ts'

/** Limits of one run as the runner applies them (all resolved, no defaults left). */
export interface RunLimits {
  timeoutMs: number
  /** Of timeoutMs, already spent before the runner got the run (waiting for a CPU lane). */
  waitedMs: number
  memoryLimitMB: number
  maxToolCalls: number
  maxOutputBytes: number
  maxConsoleBytes: number
  maxToolArgsBytes: number
  astCheck: boolean
  /** Sandbox modules the run may import (names the build made); none when absent. */
  modules?: string[]
}

/** How a runner keeps its isolates: given on its command line when it starts. */
export interface PoolConfig {
  maxIdlePerKey: number
  maxIdle: number
  idleTtlMs: number
  maxRunsPerIsolate: number
}

// ---- runner -> main

export interface ReadyMessage { t: 'ready', pid: number }
/** A tool call: `a` is the JSON of the arguments, '' for undefined. */
export interface CallMessage { t: 'call', id: string, c: number, n: string, a: string, r?: string }
/**
 * A tool call the sandbox refused before it reached the main process (a bad name or arguments,
 * or the call over the run's limit): only so it is audited like every other call. `n` is the name
 * as given (escaped and cut when it is not a valid tool name), `b` the arguments' size if known.
 */
export interface RefusedCallMessage { t: 'refused', id: string, n: string, code: RefusedCallCode, b: number }
export type RefusedCallCode = 'TOOL_NOT_FOUND' | 'TOOL_ERROR' | 'MAX_TOOL_CALLS'
export const REFUSED_CALL_CODES: ReadonlySet<string> = new Set<RefusedCallCode>(['TOOL_NOT_FOUND', 'TOOL_ERROR', 'MAX_TOOL_CALLS'])

/** CPU ms each running execution has used so far, sent while runs are active. */
export interface CpuMessage { t: 'cpu', s: Array<[id: string, cpuMs: number]> }
/** A run that ended while its isolate was still busy has now really stopped. */
export interface FreedMessage { t: 'freed', id: string }
/** A run that ended while its isolate was busy did not stop in time: its thread still burns CPU. */
export interface StuckMessage { t: 'stuck', id: string }

export interface DoneMessage {
  t: 'done'
  id: string
  ok: boolean
  /** JSON of the returned value; absent for undefined. */
  v?: string
  e?: ExecutionError
  /** Chunks of logs, each a JSON array of {level, message}. */
  l: string[]
  tc: number
  cpu?: number
  mem?: number
  /** The largest isolate heap (used + external bytes) sampled during the run. */
  pk?: number
  iso?: string
  reused?: boolean
  /** The isolate may still be running (a 'freed' or 'stuck' message follows). */
  busy?: boolean
  /** Values drawn live since the last call (Math.random, the clock): a JSON array of numbers. */
  r?: string
}

/** Console output of a live run (`ev` in its run message) as it happens: a JSON array of {level, message}. */
export interface LogMessage { t: 'log', id: string, l: string }

/** The answer to a ping, at once from the runner's event loop: the floor of every round trip. */
export interface PongMessage { t: 'pong', n: number }

export type ToMain = ReadyMessage | CallMessage | RefusedCallMessage | CpuMessage | FreedMessage | StuckMessage | DoneMessage | LogMessage | PongMessage

// ---- main -> runner

/** `ev`: report console output as it happens (log messages), for runs someone watches. */
/**
 * `rp`: values the run's Math.random and clock return first, recorded by an earlier start of it;
 * `rec`: record the values drawn live, up to this many characters of JSON (else 'lost').
 */
export interface RunMessage { t: 'run', id: string, code: string, key?: string, o: RunLimits, ev?: boolean, rp?: number[], rec?: number }
/** A tool result: `v` is JSON ('' for undefined), or `e` a refusal; `f` ends the run. */
export interface ToolResultMessage { t: 'ret', id: string, c: number, v?: string, e?: { code: string, message: string }, f?: boolean }

/** The caller cancelled the run: end it at once, as a timeout does. */
export interface CancelMessage { t: 'cancel', id: string }

/** Asks for a pong with the same `n` (no isolate involved): measures the bare process round trip. */
export interface PingMessage { t: 'ping', n: number }

export type ToRunner = RunMessage | ToolResultMessage | CancelMessage | PingMessage

// ---- isolate -> runner: the bootstrap calls `send(type, ...)` and `alarm(code, message, logs)`

/** `send('C', callId, name, argsJson, logs, drawn)`: the script called a tool. */
export const ISOLATE_CALL = 'C'
/** `send('F', code, name, size, logs)`: a call refused inside the isolate (its name or its arguments). */
export const ISOLATE_REFUSED = 'F'
/** `send('L', logs)`: console output of a live run, flushed once per task. */
export const ISOLATE_LOGS = 'L'
/** `send('R', kind, payload, logs)`: the script's outcome. */
export const ISOLATE_RESULT = 'R'

/** Kinds of ISOLATE_RESULT: a value (JSON), output over the limit (its size), an error (JSON), a syntax error (JSON). */
export type ResultKind = 'v' | 'o' | 'e' | 'x'

/** Codes the bootstrap raises through `alarm`: limits that end the run at once. */
export type AlarmCode = 'MAX_TOOL_CALLS' | 'OUTPUT_LIMIT_EXCEEDED' | 'MEMORY_LIMIT_EXCEEDED'
  /** Not an end: V8 refused an ArrayBuffer, which makes a run ending in that RangeError a memory limit. */
  | 'ALLOCATION_FAILED'
