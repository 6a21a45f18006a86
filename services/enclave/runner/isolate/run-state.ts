// What the bootstrap's parts share for the one run a context serves: the host's two functions and
// the limits (set by init), the console buffer, and the uncatchable stop a limit causes.
import type { AlarmCode, ISOLATE_CALL, ISOLATE_LOGS, ISOLATE_REFUSED, ISOLATE_RESULT } from '../../protocol/messages.ts'
import type { Intrinsics } from './intrinsics.ts'

/** Queued to the host (delivered when the isolate's task ends). Only strings and numbers cross. */
export type Send = (type: typeof ISOLATE_CALL | typeof ISOLATE_REFUSED | typeof ISOLATE_LOGS | typeof ISOLATE_RESULT, ...args: Array<string | number>) => void
/** Synchronous call to the host, for limits that must end the run even inside a loop that never yields. */
export type Alarm = (code: AlarmCode, message: string, logs: string, detail?: string) => void

type Limit = Exclude<AlarmCode, 'ALLOCATION_FAILED'>

export type RunState = ReturnType<typeof createRunState>

export function createRunState (k: Intrinsics) {
  const { hide, ErrorCtor, StringCtor } = k
  const ABORT_NAMES = { MAX_TOOL_CALLS: 'ToolCallLimitError', OUTPUT_LIMIT_EXCEEDED: 'OutputLimitError', MEMORY_LIMIT_EXCEEDED: 'MemoryLimitError' }
  const run = {
    send: null as Send | null,
    alarm: null as Alarm | null,
    maxLog: 0,
    maxOut: 0,
    maxCalls: 0,
    maxArgs: 0,
    memBytes: 0,
    live: false,
    /** The limit that ended the run: from then on every way back into the script throws. */
    aborted: null as { code: Limit, message: string } | null,
    // Console entries as JSON, travelling with the next tool call or the result.
    logBuf: '',
    takeLogs,
    abortError,
    trip,
    describeThrown
  }

  function takeLogs (): string {
    if (run.logBuf === '') return ''
    const out = '[' + run.logBuf + ']'
    run.logBuf = ''
    return out
  }
  function abortError (): Error {
    const aborted = run.aborted!
    const e = new ErrorCtor(aborted.message)
    hide(e, 'name', ABORT_NAMES[aborted.code])
    hide(e, 'code', aborted.code)
    hide(e, 'stack', e.name + ': ' + aborted.message)
    return e
  }
  // An uncatchable limit: tell the host at once (a synchronous call: queued messages would wait
  // for the end of this task, which a catching loop never reaches); it ends the execution and
  // disposes the isolate. The throw only unwinds until then.
  // detail: the tool name of the call over the limit (audited like any refused call).
  function trip (code: Limit, message: string, detail?: string): never {
    if (run.aborted === null) {
      run.aborted = { code, message }
      const alarm = run.alarm!
      alarm(code, message, takeLogs(), detail === undefined ? '' : detail)
    }
    throw abortError()
  }
  // What a thrown value says, without letting a hostile getter or toString escape.
  function describeThrown (e: unknown): string {
    try {
      return typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string' ? (e as { message: string }).message : StringCtor(e)
    } catch (_) {
      return 'unknown error'
    }
  }
  return run
}
