import type { SecurityLevel } from '../common/types.ts'

export interface LevelDefaults {
  timeoutMs: number
  maxToolCalls: number
  maxConsoleBytes: number
  /** STRICT parses the code with acorn first and refuses forbidden constructs. */
  astCheck: boolean
}

const KB = 1024
const MB = 1024 * KB

// The guide's defaults per security level.
export const LEVELS: Readonly<Record<SecurityLevel, LevelDefaults>> = {
  STRICT: { timeoutMs: 5000, maxToolCalls: 10, maxConsoleBytes: 64 * KB, astCheck: true },
  SECURE: { timeoutMs: 15000, maxToolCalls: 50, maxConsoleBytes: 256 * KB, astCheck: false },
  STANDARD: { timeoutMs: 30000, maxToolCalls: 100, maxConsoleBytes: 1 * MB, astCheck: false },
  PERMISSIVE: { timeoutMs: 60000, maxToolCalls: 1000, maxConsoleBytes: 10 * MB, astCheck: false }
}

// Limits the levels do not set.
export const COMMON_DEFAULTS = {
  memoryLimitMB: 128,
  maxOutputBytes: 1 * MB,
  maxCodeBytes: 1 * MB,
  maxToolArgsBytes: 1 * MB
}

export const BOUNDS = {
  timeoutMs: [1, 3_600_000],
  memoryLimitMB: [8, 4096],
  maxToolCalls: [0, 1_000_000],
  maxOutputBytes: [0, 256 * MB],
  maxConsoleBytes: [0, 256 * MB],
  maxCodeBytes: [1, 64 * MB],
  maxToolArgsBytes: [2, 64 * MB]
} as const

export function isSecurityLevel (x: unknown): x is SecurityLevel {
  return x === 'STRICT' || x === 'SECURE' || x === 'STANDARD' || x === 'PERMISSIVE'
}
