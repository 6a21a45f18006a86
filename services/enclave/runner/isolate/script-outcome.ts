// Starting the tenant's code and reporting how it ended. The result is built as JSON text here,
// so no tenant object ever leaves the isolate.
import type { Intrinsics } from './intrinsics.ts'
import type { Alarm, RunState, Send } from './run-state.ts'
import type { ToolCalls } from './tool-calls.ts'
import type { Nondeterminism } from './nondeterminism.ts'

/** What the runner puts in init's configJson (see isolate-run.ts). */
export interface IsolateConfig { maxLog: number, maxOut: number, maxCalls: number, maxArgs: number, memBytes: number, live?: boolean, replay?: number[], record?: number }

export type Init = (sendFn: Send, alarmFn: Alarm, configJson: string, source: string) => void

export function scriptOutcome (k: Intrinsics, run: RunState, tools: ToolCalls, drawn: Nondeterminism): Init {
  const { apply, stringify, parse, strSlice, weakGet, promiseThen, ErrorCtor, StringCtor, AsyncFunction } = k

  function errorJson (name: string, code: string, message: string): string {
    return '{"name":' + stringify(apply(strSlice, name, [0, 200])) + ',"code":"' + code +
      '","message":' + stringify(apply(strSlice, message, [0, 8192])) + '}'
  }
  function describe (e: unknown): string {
    const known = apply(weakGet, tools.toolErrors, [e]) as { code: string, message: string } | undefined
    if (known !== undefined) return errorJson('ToolError', known.code, known.message)
    let name = 'Error'
    let message: string
    try {
      if ((typeof e === 'object' && e !== null) || typeof e === 'function') {
        const n = (e as { name?: unknown }).name
        if (typeof n === 'string' && n !== '') name = n
        const m = (e as { message?: unknown }).message
        message = typeof m === 'string' ? m : StringCtor(e)
      } else {
        message = StringCtor(e)
      }
    } catch (_) {
      message = 'Uncaught exception that could not be described'
    }
    return errorJson(name, 'EXECUTION_ERROR', message)
  }
  function report (kind: 'v' | 'o' | 'e', payload: string): void {
    const send = run.send!
    const logs = run.takeLogs()
    const values = drawn.take()
    if (values === '') send('R', kind, payload, logs)
    else send('R', kind, payload, logs, values)
  }
  function succeed (value: unknown): void {
    if (run.aborted !== null) return
    let json: string | undefined = ''
    if (value !== undefined) {
      try {
        json = stringify(value) as string | undefined
      } catch (e) {
        if (run.aborted !== null) return
        report('e', errorJson('TypeError', 'EXECUTION_ERROR', 'Return value is not JSON-serialisable: ' + run.describeThrown(e)))
        return
      }
      if (run.aborted !== null) return
      if (json === undefined) {
        report('e', errorJson('TypeError', 'EXECUTION_ERROR', 'Return value is not JSON-serialisable (' + typeof value + ')'))
        return
      }
      if (json.length > run.maxOut) { report('o', StringCtor(json.length)); return }
    }
    report('v', json)
  }
  function fail (e: unknown): void {
    if (run.aborted !== null) return
    let json
    try { json = describe(e) } catch (_) { json = errorJson('Error', 'EXECUTION_ERROR', 'Uncaught exception') }
    report('e', json)
  }

  // Runs once per context: takes the host's functions and the run's limits, then compiles and
  // starts the tenant's code.
  return function init (sendFn, alarmFn, configJson, source) {
    if (run.send !== null) throw new ErrorCtor('init runs once')
    run.send = sendFn
    run.alarm = alarmFn
    const config = parse(configJson) as IsolateConfig
    run.maxLog = config.maxLog
    run.maxOut = config.maxOut
    run.maxCalls = config.maxCalls
    run.maxArgs = config.maxArgs
    run.memBytes = config.memBytes
    run.live = config.live === true
    if (config.replay !== undefined || config.record !== undefined) drawn.start(config.replay ?? [], config.record !== undefined, config.record ?? 0)
    let main
    try {
      // Parsed as a function body on its own: the code cannot close the function early.
      main = AsyncFunction(source)
    } catch (e) {
      sendFn('R', 'x', errorJson(typeof (e as { name?: unknown }).name === 'string' ? (e as { name: string }).name : 'SyntaxError', 'VALIDATION_ERROR', run.describeThrown(e)), '')
      return
    }
    let p
    try { p = main() } catch (e) { fail(e); return }
    apply(promiseThen, p, [succeed, fail])
  }
}
