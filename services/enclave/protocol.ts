// Messages between the main process and a runner, one JSON object per line (see wire.ts).
import type { ExecutionError } from './types.ts'

/** Limits of one run as the runner applies them (all resolved, no defaults left). */
export interface RunLimits {
  timeoutMs: number
  memoryLimitMB: number
  maxToolCalls: number
  maxOutputBytes: number
  maxConsoleBytes: number
  maxToolArgsBytes: number
  astCheck: boolean
}

export type ToMain =
  | { t: 'ready', pid: number }
  /** A tool call: `a` is the JSON of the arguments, '' for undefined. */
  | { t: 'call', id: string, c: number, n: string, a: string }
  | DoneMessage

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
  iso?: string
  reused?: boolean
}

export type ToRunner =
  | { t: 'run', id: string, code: string, key?: string, o: RunLimits }
  /** A tool result: `v` is JSON ('' for undefined), or `e` a refusal; `f` ends the run. */
  | { t: 'ret', id: string, c: number, v?: string, e?: { code: string, message: string }, f?: boolean }
