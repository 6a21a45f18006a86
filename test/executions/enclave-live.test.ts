// The enclave's side of executions: live events while a run goes on, and cancel() ending a run at
// once whatever it is doing (CPU-bound, awaiting a tool, waiting for a CPU lane).
import t from 'tap'
import { Enclave, type EnclaveEvent } from '../../services/enclave/index.ts'

t.test('live events and cancel', async (t) => {
  let toolAborted: (() => void) | undefined
  const aborted = new Promise<void>((resolve) => { toolAborted = resolve })
  const enclave = new Enclave({
    securityLevel: 'SECURE',
    runners: 1,
    toolHandler: async (name, args, _ctx, runEnded) => {
      if (name === 'echo') return args
      if (name === 'fail') throw Object.assign(new Error('nope'), { code: 'TOOL_ERROR' })
      // A slow upstream: answers only when the run ends, and records that it saw the abort.
      return await new Promise((resolve) => {
        runEnded.addEventListener('abort', () => { toolAborted?.(); resolve('late') })
      })
    }
  })
  t.teardown(async () => await enclave.dispose())
  t.equal(await enclave.ready(), true)

  /** Starts a run; `reached` resolves at its first event of `type`. */
  const runUntil = (type: EnclaveEvent['type'], code: string, executionId: string) => {
    let seen: () => void = () => {}
    const reached = new Promise<void>((resolve) => { seen = resolve })
    const running = enclave.run(code, { executionId, timeoutMs: 30_000, onEvent: (e) => { if (e.type === type) seen() } })
    return { running, reached }
  }

  t.test('log lines, tool calls and results arrive in order, before the result', async (t) => {
    const events: EnclaveEvent[] = []
    const r = await enclave.run('console.log("one"); console.warn("two")\nawait callTool("echo", 1)\ntry { await callTool("fail", {}) } catch {}\nconsole.info("three")\nreturn 1', {
      onEvent: (e) => events.push(e)
    })
    t.equal(r.success, true)
    t.same(events, [
      { type: 'log', level: 'log', message: 'one' },
      { type: 'log', level: 'warn', message: 'two' },
      { type: 'tool_call', index: 1, tool: 'echo' },
      { type: 'tool_result', index: 1, code: 'OK', durationMs: events[3]?.type === 'tool_result' ? events[3].durationMs : -1 },
      { type: 'tool_call', index: 2, tool: 'fail' },
      { type: 'tool_result', index: 2, code: 'TOOL_ERROR', durationMs: events[5]?.type === 'tool_result' ? events[5].durationMs : -1 },
      { type: 'log', level: 'info', message: 'three' }
    ])
    // The result still carries every line.
    t.same(r.logs.map((l) => l.message), ['one', 'two', 'three'])
  })

  t.test('a log line before a long await arrives while the run still waits', async (t) => {
    let seen: () => void = () => {}
    const logged = new Promise<void>((resolve) => { seen = resolve })
    const running = enclave.run('console.log("waiting"); await callTool("slow", {}); return 1', {
      executionId: 'live-log', onEvent: (e) => { if (e.type === 'log') seen() }
    })
    await logged
    t.equal(enclave.cancel('live-log'), true)
    const r = await running
    t.equal(r.error?.code, 'CANCELLED')
  })

  t.test('cancel ends a CPU-bound run with CANCELLED, uncatchable', async (t) => {
    // The tool's result is the last thing before the loop; the pause lets the loop begin.
    const { running, reached } = runUntil('tool_result', 'await callTool("echo", 1); try { while (true) {} } catch { return "caught" }', 'cpu-bound')
    await reached
    await new Promise((resolve) => setTimeout(resolve, 50))
    t.equal(enclave.cancel('cpu-bound'), true)
    const r = await running
    t.equal(r.success, false)
    t.same(r.error, { name: 'CancelledError', code: 'CANCELLED', message: 'The execution was cancelled' })
    // A finished run cannot be cancelled any more.
    t.equal(enclave.cancel('cpu-bound'), false)
  })

  t.test('cancel while awaiting a slow tool aborts the tool\'s runEnded signal', async (t) => {
    const { running, reached } = runUntil('tool_call', 'return await callTool("slow", {})', 'in-tool')
    await reached
    t.equal(enclave.cancel('in-tool'), true)
    const r = await running
    t.equal(r.error?.code, 'CANCELLED')
    await aborted
    t.pass('the tool handler saw the abort')
  })

  t.test('an unknown id is not cancelled; the enclave goes on serving', async (t) => {
    t.equal(enclave.cancel('nope'), false)
    const r = await enclave.run('return 2')
    t.equal(r.value, 2)
  })
})
