// What a runner reports, decoded into the ExecutionResult callers see.
import { enclaveError } from '../common/errors.ts'
import type { DoneMessage } from '../protocol/messages.ts'
import { LOG_LEVELS as LEVELS } from '../../../schemas/execution-result.ts'
import type { ExecutionError, ExecutionResult, LogEntry, LogLevel } from '../common/types.ts'

const LOG_LEVELS = new Set<LogLevel>(LEVELS)

export function elapsed (started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000
}

export function failure (executionId: string, started: number, error: ExecutionError, toolCallCount = 0): ExecutionResult {
  return { executionId, success: false, error, logs: [], stats: { duration: elapsed(started), toolCallCount } }
}

export function decodeDone (executionId: string, started: number, msg: DoneMessage): ExecutionResult {
  const stats: ExecutionResult['stats'] = { duration: elapsed(started), toolCallCount: msg.tc }
  if (msg.mem !== undefined) stats.memoryUsage = msg.mem
  if (msg.cpu !== undefined) stats.cpuTime = Math.round(msg.cpu * 1000) / 1000
  if (msg.pk !== undefined) stats.peakHeapBytes = msg.pk
  const result: ExecutionResult = { executionId, success: msg.ok, logs: parseLogs(msg.l), stats }
  if (!msg.ok) {
    result.error = msg.e ?? enclaveError('INTERNAL_ERROR', 'The execution failed without an error')
    return result
  }
  if (msg.v !== undefined) {
    try {
      result.value = JSON.parse(msg.v)
    } catch {
      result.success = false
      result.error = enclaveError('INTERNAL_ERROR', 'The result could not be read')
    }
  }
  return result
}

export function parseLogs (chunks: string[]): LogEntry[] {
  const logs: LogEntry[] = []
  for (const chunk of chunks) {
    let entries: unknown
    try { entries = JSON.parse(chunk) } catch { continue }
    if (!Array.isArray(entries)) continue
    for (const e of entries as Array<Partial<LogEntry>>) {
      if (e !== null && typeof e === 'object' && LOG_LEVELS.has(e.level as LogLevel) && typeof e.message === 'string') {
        logs.push({ level: e.level as LogLevel, message: e.message })
      }
    }
  }
  return logs
}
