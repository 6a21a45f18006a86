// The enclave: untrusted JavaScript in isolated-vm isolates, inside supervised runner processes.
// The only entry for code outside services/enclave/ (dependency-cruiser checks it): host/ is the
// supervisor in this process, runner/ what runs in the runner children, protocol/ what passes
// between them, common/ what both sides use.
export { Enclave } from './host/enclave.ts'
export { failure } from './host/run-result.ts'
export { toolFailure } from './host/tool-bridge.ts'
export { LEVELS } from './host/levels.ts'
export { checkSandbox, SandboxError, type SandboxPolicy, type MissingLayer } from './host/runner-launch.ts'
export {
  EnclaveToolError, ERROR_CODES, CATCHABLE_TOOL_CODES, FATAL_TOOL_CODES, isErrorCode, enclaveError, cancelledError
} from './common/errors.ts'
export { analyzeScript, type ScriptAnalysis } from './common/ast-check.ts'
export { importHeader, allowedText } from './common/module-imports.ts'
export type {
  SecurityLevel, EnclaveErrorCode, ExecutionResult, ExecutionError, ExecutionStats, LogEntry, LogLevel,
  ToolHandler, EnclaveOptions, RunOptions, EnclaveStats, EnclaveLogger, RunnerExitInfo, RunEvent, EnclaveEvent
} from './common/types.ts'
