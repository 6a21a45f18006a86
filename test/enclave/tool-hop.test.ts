// The tool hop (isolate → runner → handler → runner → isolate): many calls leaving in one turn
// each get their own answer, watched runs still see every call and result, a handler's failures
// reach the script as before, and the ping that measures the hop's floor is checked like any
// other runner message.
import t from 'tap'
import { Enclave, type EnclaveEvent } from '../../services/enclave/index.ts'
import { checkRunnerMessage } from '../../services/enclave/host/runner-messages.ts'

const handler = async (name: string, args: unknown): Promise<unknown> => {
  if (name === 'echo') return args
  if (name === 'sync-throw') throw Object.assign(new Error('no such row'), { code: 'TOOL_ERROR' })
  if (name === 'bigint') return 1n
  if (name === 'fatal') throw Object.assign(new Error('quota gone'), { code: 'TOOL_QUOTA_EXCEEDED' })
  return undefined
}

t.test('the tool hop', async (t) => {
  const enclave = new Enclave({ securityLevel: 'STRICT', runners: 1, toolHandler: handler })
  t.teardown(async () => await enclave.dispose())
  t.equal(await enclave.ready(), true)

  t.test('20 calls made in one turn each get their own answer, in order', async (t) => {
    const r = await enclave.run('return await Promise.all(Array.from({ length: 20 }, (_, i) => callTool("echo", { i })))', { maxToolCalls: 20 })
    t.equal(r.success, true)
    t.same(r.value, Array.from({ length: 20 }, (_, i) => ({ i })))
    t.equal(r.stats.toolCallCount, 20)
  })

  t.test('sequential calls carry each result back into the script', async (t) => {
    const r = await enclave.run('let x = 0\nfor (let i = 0; i < 20; i++) x = (await callTool("echo", { i, x })).x + i\nreturn x', { maxToolCalls: 20 })
    t.equal(r.success, true)
    t.equal(r.value, 190)
  })

  t.test('a watched run reports every call and its result', async (t) => {
    const events: EnclaveEvent[] = []
    const r = await enclave.run('await callTool("echo", 1)\ntry { await callTool("sync-throw") } catch (e) { return e.code }', { onEvent: (e) => events.push(e) })
    t.equal(r.value, 'TOOL_ERROR')
    const tools = events.filter((e) => e.type === 'tool_call' || e.type === 'tool_result').map((e) => e.type === 'tool_result' ? [e.type, e.index, e.code] : [e.type, e.index])
    t.same(tools, [['tool_call', 1], ['tool_result', 1, 'OK'], ['tool_call', 2], ['tool_result', 2, 'TOOL_ERROR']])
  })

  t.test('a result that is not JSON is a TOOL_ERROR the script can catch', async (t) => {
    const r = await enclave.run('try { await callTool("bigint") } catch (e) { return [e.code, e.message.startsWith("Tool result is not JSON-serialisable")] }')
    t.same(r.value, ['TOOL_ERROR', true])
  })

  t.test('a fatal handler error ends the run with its code', async (t) => {
    const r = await enclave.run('try { await callTool("fatal") } catch (e) { return "caught" }')
    t.equal(r.success, false)
    t.equal(r.error?.code, 'TOOL_QUOTA_EXCEEDED')
  })

  t.test('a runner answers a ping over the same pipe', async (t) => {
    const ms = await enclave.pingRunner(0)
    t.ok(ms > 0, 'a round trip takes some time')
    const r = await enclave.run('return 1')
    t.equal(r.value, 1, 'the runner still serves runs')
    await t.rejects(enclave.pingRunner(5), /not ready/)
  })
})

t.test('a pong the supervisor did not ask for is a protocol violation', async (t) => {
  const runner = { inFlight: new Map(), draining: new Map(), pings: new Map([[3, { resolve: () => {}, reject: () => {} }]]) } as never
  t.equal(checkRunnerMessage(runner, { t: 'pong', n: 3 }), null)
  t.equal(checkRunnerMessage(runner, { t: 'pong', n: 4 }), 'a pong for no ping')
  t.equal(checkRunnerMessage(runner, { t: 'pong', n: -1 }), 'a pong for no ping')
  t.equal(checkRunnerMessage(runner, { t: 'pong' } as never), 'a pong for no ping')
})
