// The script's console, captured into JSON entries that travel with the next tool call or the
// result (or, for a live run, once per task), bounded by the console limit.
import type { LogLevel } from '../../common/types.ts'
import type { Intrinsics } from './intrinsics.ts'
import type { RunState } from './run-state.ts'

export function captureConsole (k: Intrinsics, run: RunState): void {
  const { G, hide, expose, apply, stringify, promiseThen, PromiseCtor, ErrorCtor, StringCtor } = k
  const settledPromise = new PromiseCtor<void>(function (resolve) { resolve() })
  let logLen = 0
  let flushQueued = false

  function fmt (v: unknown): string {
    const t = typeof v
    if (t === 'string') return v as string
    if (v === null) return 'null'
    if (t !== 'object' && t !== 'function') return StringCtor(v)
    try {
      if (t === 'function') return '[Function]'
      if (v instanceof ErrorCtor) return StringCtor(v.name) + ': ' + StringCtor(v.message)
      const s = stringify(v) as string | undefined
      return s === undefined ? StringCtor(v) : s
    } catch (e) {
      return '[object]'
    }
  }
  function emit (level: LogLevel, args: unknown[]): void {
    if (run.aborted !== null) throw run.abortError()
    const maxLog = run.maxLog
    let msg = ''
    for (let i = 0; i < args.length; i++) msg = i === 0 ? fmt(args[i]) : msg + ' ' + fmt(args[i])
    if (msg.length > maxLog) run.trip('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded ' + maxLog + ' bytes')
    const entry = '{"level":"' + level + '","message":' + stringify(msg) + '}'
    // UTF-16 length never exceeds UTF-8 bytes; the host recounts exactly.
    logLen += entry.length + 1
    if (logLen > maxLog) run.trip('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded ' + maxLog + ' bytes')
    run.logBuf = run.logBuf === '' ? entry : run.logBuf + ',' + entry
    // A live run reports its console once per task (a microtask after the code that logged), so
    // a burst of lines costs one message, and lines logged before an await arrive before it.
    if (run.live && !flushQueued) {
      flushQueued = true
      try { apply(promiseThen, settledPromise, [flushLogs]) } catch (e) { flushLogs() }
    }
  }
  function flushLogs (): void {
    flushQueued = false
    if (run.aborted === null && run.logBuf !== '') {
      const send = run.send!
      send('L', run.takeLogs())
    }
  }

  const consoleObject = {}
  function method (name: string, target: LogLevel): void {
    hide(consoleObject, name, expose(function (...args: unknown[]) { emit(target, args) }, name))
  }
  method('log', 'log')
  method('info', 'info')
  method('warn', 'warn')
  method('error', 'error')
  method('debug', 'debug')
  method('trace', 'debug')
  method('dir', 'log')
  method('table', 'log')
  hide(consoleObject, 'assert', expose(function (cond: unknown, ...args: unknown[]) {
    if (!cond) emit('error', args.length === 0 ? ['Assertion failed'] : args)
  }, 'assert'))
  hide(G, 'console', consoleObject)
}
