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
  cpuTime: Type.Optional(Type.Number({ description: 'CPU ms the isolate spent on this run' }))
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
