// The enclave: untrusted JavaScript in isolated-vm isolates, inside supervised runner processes.
export { Enclave } from './enclave.ts'
export { EnclaveToolError, ERROR_CODES, CATCHABLE_TOOL_CODES, FATAL_TOOL_CODES, isErrorCode } from './errors.ts'
export { LEVELS } from './levels.ts'
export type {
  SecurityLevel, EnclaveErrorCode, ExecutionResult, ExecutionError, ExecutionStats, LogEntry, LogLevel,
  ToolHandler, EnclaveOptions, RunOptions, EnclaveStats, EnclaveLogger, RunnerExitInfo, RunEvent, EnclaveEvent
} from './types.ts'
