// The public API: result shape, options, validation, levels, stats.
import t from 'tap'
import { Enclave, EnclaveToolError } from '../../services/enclave/index.ts'
import { type Ctx, testHandler } from './fixtures/helpers.ts'
import { waitFor } from '../support/wait-for.ts'

t.test('results, options and validation', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, toolHandler: testHandler })
  t.teardown(async () => await enclave.dispose())
  t.equal(await enclave.ready(), true)

  t.test('result shape', async (t) => {
    const r = await enclave.run('console.info("hi", 1)\nconst v = await callTool("echo", { a: [1] })\nreturn { v }', { executionId: 'exec-1', isolateKey: 'k', context: { tenant: 'k', calls: [] } })
    t.equal(r.executionId, 'exec-1')
    t.equal(r.success, true)
    t.same(r.value, { v: { a: [1] } })
    t.same(r.logs, [{ level: 'info', message: 'hi 1' }])
    t.equal(r.stats.toolCallCount, 1)
    t.type(r.stats.duration, 'number')
    t.type(r.stats.cpuTime, 'number')
    t.type(r.stats.memoryUsage, 'number')
    t.same(Object.keys(r).sort(), ['executionId', 'logs', 'stats', 'success', 'value'])
    const generated = await enclave.run('return 1')
    t.match(generated.executionId, /^[0-9a-f-]{36}$/)
  })

  t.test('every console level, formatted', async (t) => {
    const r = await enclave.run('console.log("a", 1, true, null, undefined, { b: 2 }, [3], new TypeError("e"))\nconsole.info("i")\nconsole.warn("w")\nconsole.error("x")\nconsole.debug("d")\nconsole.assert(false, "bad")\nconst o = {}\no.o = o\nconsole.log(o)')
    t.same(r.logs, [
      { level: 'log', message: 'a 1 true null undefined {"b":2} [3] TypeError: e' },
      { level: 'info', message: 'i' },
      { level: 'warn', message: 'w' },
      { level: 'error', message: 'x' },
      { level: 'debug', message: 'd' },
      { level: 'error', message: 'bad' },
      { level: 'log', message: '[object]' }
    ])
  })

  t.test('logs before an error are kept', async (t) => {
    const r = await enclave.run('console.log("before")\nthrow new RangeError("after")')
    t.same(r.error, { name: 'RangeError', code: 'EXECUTION_ERROR', message: 'after' })
    t.same(r.logs, [{ level: 'log', message: 'before' }])
  })

  t.test('code size is counted in UTF-8 bytes', async (t) => {
    const code = `return "${'€'.repeat(400)}"`
    const over = await enclave.run(code, { maxCodeBytes: 1000 })
    t.equal(over.error?.code, 'VALIDATION_ERROR')
    t.equal(over.error?.message, 'Code is 1209 bytes, over the limit of 1000 bytes')
    const fits = await enclave.run(code, { maxCodeBytes: 2000 })
    t.equal(fits.success, true)
  })

  t.test('invalid input never throws', async (t) => {
    t.equal((await enclave.run(42 as unknown as string)).error?.code, 'VALIDATION_ERROR')
    t.equal((await enclave.run('return 1', { timeoutMs: -1 })).error?.message, 'Invalid timeoutMs: must be between 1 and 3600000')
    t.equal((await enclave.run('return 1', { memoryLimitMB: 2 })).error?.message, 'Invalid memoryLimitMB: must be between 8 and 4096')
    t.equal((await enclave.run('return 1', { maxToolCalls: Number.NaN })).error?.message, 'Invalid maxToolCalls: not a finite number')
    t.equal((await enclave.run('return 1', { isolateKey: 7 as unknown as string })).error?.code, 'VALIDATION_ERROR')
  })

  t.test('syntax errors outside STRICT still have line and column', async (t) => {
    const r = await enclave.run('const a = 1\n\nreturn a b')
    t.same(r.error, { name: 'ValidationError', code: 'VALIDATION_ERROR', message: 'SyntaxError: Unexpected token (line 3, column 10)' })
  })

  t.test('per-run options override the level', async (t) => {
    const r = await enclave.run('for (let i = 0; i < 60; i++) await callTool("echo", i)\nreturn 1', { maxToolCalls: 60 })
    t.equal(r.success, true)
    const d = await enclave.run('for (let i = 0; i < 51; i++) await callTool("echo", i)')
    t.equal(d.error?.code, 'MAX_TOOL_CALLS', 'SECURE default is 50')
  })

  t.test('an execution never shows another run\'s logs', async (t) => {
    await enclave.run('console.log("one")\nreturn 1', { isolateKey: 'logs' })
    const r = await enclave.run('return 2', { isolateKey: 'logs' })
    t.same(r.logs, [])
  })
})

// What each level sets, seen in runs rather than by reading LEVELS back: the tool-call limit at its
// boundary, the console budget named in the flood's error, and whether the AST check refuses before
// running. (The level timeouts, 5 to 60 s, are left to the corpus's explicit timeoutMs cases: waiting
// them out here would cost minutes.)
const LEVEL_CONTRACT = {
  STRICT: { maxToolCalls: 10, maxConsoleBytes: 64 * 1024, astCheck: true },
  SECURE: { maxToolCalls: 50, maxConsoleBytes: 256 * 1024, astCheck: false },
  STANDARD: { maxToolCalls: 100, maxConsoleBytes: 1024 * 1024, astCheck: false },
  PERMISSIVE: { maxToolCalls: 1000, maxConsoleBytes: 10 * 1024 * 1024, astCheck: false }
} as const

for (const [level, expected] of Object.entries(LEVEL_CONTRACT) as Array<[keyof typeof LEVEL_CONTRACT, typeof LEVEL_CONTRACT[keyof typeof LEVEL_CONTRACT]]>) {
  t.test(`${level} runs with its own defaults`, async (t) => {
    const enclave = new Enclave({ securityLevel: level, runners: 1, toolHandler: testHandler })
    t.teardown(async () => await enclave.dispose())
    const calls = (n: number): string => `for (let i = 0; i < ${n}; i++) await callTool("echo", i)\nreturn "done"`
    t.equal((await enclave.run(calls(expected.maxToolCalls))).value, 'done', `${expected.maxToolCalls} tool calls pass`)
    t.same((await enclave.run(calls(expected.maxToolCalls + 1))).error?.code, 'MAX_TOOL_CALLS', 'one more ends the run')
    // Logs count toward the output limit (1 MB by default), which caps the console budget: raise it
    // to see the level's own budget, then see the cap.
    const floodCode = 'for (;;) console.log("x".repeat(1000))'
    const flood = await enclave.run(floodCode, { maxOutputBytes: 16 * 1024 * 1024 })
    t.same(flood.error, { name: 'OutputLimitError', code: 'OUTPUT_LIMIT_EXCEEDED', message: `Console output exceeded ${expected.maxConsoleBytes} bytes` })
    const capped = await enclave.run(floodCode)
    t.same(capped.error?.message, `Console output exceeded ${Math.min(expected.maxConsoleBytes, 1024 * 1024)} bytes`, 'capped by the default output limit')
    const probe = await enclave.run('return [].constructor === Array')
    if (expected.astCheck) t.equal(probe.error?.code, 'VALIDATION_ERROR', 'the AST check refuses before running')
    else t.equal(probe.value, true, 'no AST check')
  })
}

t.test('an unknown level is refused', async (t) => {
  t.throws(() => new Enclave({ securityLevel: 'LAX' as 'STRICT', runners: 1 }))
})

t.test('EnclaveToolError', async (t) => {
  const quota = new EnclaveToolError('TOOL_QUOTA_EXCEEDED', 'used up')
  t.equal(quota.fatal, true)
  t.equal(quota.code, 'TOOL_QUOTA_EXCEEDED')
  t.equal(new EnclaveToolError('MAX_TOOL_CALLS', 'x').fatal, true)
  t.equal(new EnclaveToolError('PERMISSION_DENIED', 'x').fatal, false)
  t.equal(new EnclaveToolError('TOOL_ERROR', 'x', { fatal: true }).fatal, true)
  t.ok(quota instanceof Error)
})

t.test('a duck-typed handler error with a code is honoured', async (t) => {
  const enclave = new Enclave({
    securityLevel: 'STANDARD',
    runners: 1,
    toolHandler: async (name) => {
      if (name === 'coded') throw Object.assign(new Error('Permission denied: tool:coded'), { code: 'PERMISSION_DENIED' })
      if (name === 'fatalish') throw Object.assign(new Error('stop'), { code: 'TOOL_QUOTA_EXCEEDED' })
      throw Object.assign(new Error('weird'), { code: 'ECONNRESET' })
    }
  })
  t.teardown(async () => await enclave.dispose())
  t.same((await enclave.run('await callTool("coded")')).error, { name: 'ToolError', code: 'PERMISSION_DENIED', message: 'Permission denied: tool:coded' })
  t.same((await enclave.run('try { await callTool("fatalish") } catch {}\nreturn 1')).error, { name: 'ToolQuotaError', code: 'TOOL_QUOTA_EXCEEDED', message: 'stop' })
  t.same((await enclave.run('try { await callTool("other") } catch (e) { return e.code }')).value, 'TOOL_ERROR')
})

t.test('without a tool handler every tool is unknown', async (t) => {
  const enclave = new Enclave({ securityLevel: 'STRICT', runners: 1 })
  t.teardown(async () => await enclave.dispose())
  const r = await enclave.run('try { await callTool("x") } catch (e) { return e.code }')
  t.equal(r.value, 'TOOL_NOT_FOUND')
})

t.test('dispose ends in-flight runs and refuses new ones', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, toolHandler: testHandler })
  await enclave.ready()
  const ctx: Ctx = { tenant: 'dispose', calls: [] }
  const pending = enclave.run('await callTool("hang")', { timeoutMs: 10_000, context: ctx })
  // Dispose once the run is inside its isolate (its tool call reached the handler).
  await waitFor(() => ctx.calls.length === 1, { message: 'the run reached its tool call' })
  await enclave.dispose()
  const r = await pending
  t.same(r.error, { name: 'InternalError', code: 'INTERNAL_ERROR', message: 'The enclave was disposed' })
  const after = await enclave.run('return 1')
  t.equal(after.error?.code, 'INTERNAL_ERROR')
  t.same(enclave.stats(), { runners: 0, runnersReady: 0, runnerRestarts: 0, inFlight: 0, executions: 1 })
})
