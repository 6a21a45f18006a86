// A run's options resolved against its security level's defaults and the enclave's bounds.
import { BOUNDS, COMMON_DEFAULTS, LEVELS } from './levels.ts'
import type { RunLimits } from '../protocol/messages.ts'
import { enclaveError } from '../common/errors.ts'
import type { ExecutionError, RunOptions, SecurityLevel } from '../common/types.ts'

export type ResolvedLimits =
  | { ok: true, limits: RunLimits, maxCodeBytes: number }
  | { ok: false, message: string }

type Bounded = keyof typeof BOUNDS

function bounded (options: RunOptions, name: Bounded, fallback: number): number | string {
  const value = options[name]
  if (value === undefined) return fallback
  const [min, max] = BOUNDS[name]
  if (typeof value !== 'number' || !Number.isFinite(value)) return `Invalid ${name}: not a finite number`
  if (value < min || value > max) return `Invalid ${name}: must be between ${min} and ${max}`
  return name === 'timeoutMs' ? value : Math.floor(value)
}

export function resolveRunLimits (level: SecurityLevel, options: RunOptions): ResolvedLimits {
  const defaults = LEVELS[level]
  const values = {
    timeoutMs: bounded(options, 'timeoutMs', defaults.timeoutMs),
    memoryLimitMB: bounded(options, 'memoryLimitMB', COMMON_DEFAULTS.memoryLimitMB),
    maxToolCalls: bounded(options, 'maxToolCalls', defaults.maxToolCalls),
    maxOutputBytes: bounded(options, 'maxOutputBytes', COMMON_DEFAULTS.maxOutputBytes),
    maxConsoleBytes: bounded(options, 'maxConsoleBytes', defaults.maxConsoleBytes),
    maxToolArgsBytes: bounded(options, 'maxToolArgsBytes', COMMON_DEFAULTS.maxToolArgsBytes),
    maxCodeBytes: bounded(options, 'maxCodeBytes', COMMON_DEFAULTS.maxCodeBytes)
  }
  for (const value of Object.values(values)) if (typeof value === 'string') return { ok: false, message: value }
  const { maxCodeBytes, ...limits } = values as Record<keyof typeof values, number>
  const modules = options.modules
  if (modules !== undefined && (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string'))) return { ok: false, message: 'Invalid modules: not a list of module names' }
  return { ok: true, limits: { ...limits, waitedMs: 0, astCheck: defaults.astCheck, ...(modules !== undefined && modules.length > 0 ? { modules: [...modules] } : {}) }, maxCodeBytes }
}

export type RunRequest =
  | { ok: true, limits: RunLimits, key: string | undefined }
  | { ok: false, error: ExecutionError }

/** A run's code and options, checked before it is admitted: its limits and key, or why it is refused. */
export function checkRunRequest (level: SecurityLevel, code: unknown, options: RunOptions): RunRequest {
  const refuse = (message: string): RunRequest => ({ ok: false, error: enclaveError('VALIDATION_ERROR', message) })
  if (typeof code !== 'string') return refuse('Code must be a string')
  const resolved = resolveRunLimits(level, options)
  if (!resolved.ok) return refuse(resolved.message)
  const maxCode = resolved.maxCodeBytes
  if (code.length > maxCode || (code.length * 3 > maxCode && Buffer.byteLength(code) > maxCode)) {
    return refuse(`Code is ${Buffer.byteLength(code)} bytes, over the limit of ${maxCode} bytes`)
  }
  const key = options.isolateKey
  if (key !== undefined && typeof key !== 'string') return refuse('isolateKey must be a string')
  return { ok: true, limits: resolved.limits, key }
}
