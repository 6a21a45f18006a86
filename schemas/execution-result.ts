import { Type, type Static } from 'typebox'
import { EXECUTION_ERROR_CODES } from '../services/errors/registry.ts'

// The one description of what a run returns: the HTTP route serialises with it and the
// enclave's types come from it. Its error codes are the error registry's execution codes.

export const ERROR_CODES: readonly Static<typeof EnclaveErrorCodeSchema>[] = EXECUTION_ERROR_CODES

export const EnclaveErrorCodeSchema = Type.Enum(EXECUTION_ERROR_CODES, { $id: 'ExecutionErrorCode', description: 'Why a run failed (the error registry\'s execution codes)' })
export type EnclaveErrorCode = Static<typeof EnclaveErrorCodeSchema>

export const LOG_LEVELS = ['log', 'info', 'warn', 'error', 'debug'] as const
export const LogLevelSchema = Type.Enum(LOG_LEVELS, { $id: 'LogLevel' })
export type LogLevel = Static<typeof LogLevelSchema>

export const LogEntrySchema = Type.Object({ level: LogLevelSchema, message: Type.String() }, { $id: 'LogEntry', description: 'One console call of the script' })
export type LogEntry = Static<typeof LogEntrySchema>

export const ExecutionErrorSchema = Type.Object({ name: Type.String(), code: EnclaveErrorCodeSchema, message: Type.String() }, { $id: 'ExecutionError', description: 'Why the script failed' })
export type ExecutionError = Static<typeof ExecutionErrorSchema>

export const ExecutionStatsSchema = Type.Object({
  duration: Type.Number({ description: 'Wall time in ms from the start of the run to its result' }),
  toolCallCount: Type.Integer(),
  memoryUsage: Type.Optional(Type.Number({ description: 'Bytes of isolate heap in use after the run, where it could be measured' })),
  cpuTime: Type.Optional(Type.Number({ description: 'CPU ms the isolate spent on this run' })),
  // The meter (docs/api.md "Metering"): whole numbers, set on every run that was admitted; the
  // audit row and the usage rollups carry the same figures.
  wallMs: Type.Optional(Type.Integer({ description: 'Wall time of the run in ms (duration, rounded)' })),
  cpuMs: Type.Optional(Type.Integer({ description: 'CPU ms the isolate measured for this run (isolated-vm cpuTime), rounded; 0 when nothing ran in an isolate' })),
  peakHeapBytes: Type.Optional(Type.Integer({ description: 'Largest isolate heap in use (V8 used heap + external bytes) sampled during the run; 0 when not measured' })),
  toolTimeMs: Type.Optional(Type.Integer({ description: 'Sum of the durations of the tool calls the host received, in ms (parallel calls each count)' })),
  bytesIn: Type.Optional(Type.Integer({ description: 'UTF-8 bytes of the submitted code plus the JSON arguments of each tool call the host received' })),
  bytesOut: Type.Optional(Type.Integer({ description: 'UTF-8 bytes of the JSON of the returned value plus the JSON of each log entry ({level, message})' }))
}, { $id: 'ExecutionStats' })
export type ExecutionStats = Static<typeof ExecutionStatsSchema>

export const ExecutionResultSchema = Type.Object({
  executionId: Type.String(),
  success: Type.Boolean(),
  value: Type.Optional(Type.Unknown({ description: 'The script\'s return value (JSON)' })),
  error: Type.Optional(ExecutionErrorSchema),
  logs: Type.Array(LogEntrySchema),
  stats: ExecutionStatsSchema
}, { $id: 'ExecutionResult', description: 'What a run returned: its value or its error, its logs and its stats' })
export type ExecutionResult = Static<typeof ExecutionResultSchema>
