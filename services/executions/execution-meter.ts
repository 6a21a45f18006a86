import type { ExecutionResult } from '../enclave/index.ts'

/** What the tool gateway adds up while a run goes on: the arguments it received and the time its calls took. */
export interface ToolMeter {
  /** UTF-8 bytes of the JSON arguments of each call the host received. */
  argsBytes: number
  /** Sum of the calls' durations in ms (unrounded; parallel calls each count). */
  toolTimeMs: number
}

export const newToolMeter = (): ToolMeter => ({ argsBytes: 0, toolTimeMs: 0 })

/**
 * The result with its meter in `stats` (docs/api.md "Metering"): whole numbers, so the audit row,
 * the rollups and the result always agree. Bytes are counted on the host from what crossed into
 * and out of the sandbox: the code as submitted (before any type stripping) plus the tool
 * arguments in; the returned value's JSON plus each log entry's JSON out.
 */
export function withMeter (result: ExecutionResult, code: string, tools: ToolMeter): ExecutionResult {
  let bytesOut = result.value === undefined ? 0 : Buffer.byteLength(JSON.stringify(result.value) ?? '')
  for (const entry of result.logs) bytesOut += Buffer.byteLength(JSON.stringify(entry))
  const { stats } = result
  return {
    ...result,
    stats: {
      ...stats,
      wallMs: Math.round(stats.duration),
      cpuMs: Math.round(stats.cpuTime ?? 0),
      peakHeapBytes: Math.round(stats.peakHeapBytes ?? 0),
      toolTimeMs: Math.round(tools.toolTimeMs),
      bytesIn: Buffer.byteLength(code) + tools.argsBytes,
      bytesOut
    }
  }
}
