// The bootstrap is typed functions turned into one script with Function.prototype.toString: a
// part that used anything but its parameters and the isolate's globals would fail only inside an
// isolate. Run here in a bare node:vm context, a mistake shows at once and by name.
import t from 'tap'
import vm from 'node:vm'
import { BOOTSTRAP_SOURCE } from '../../services/enclave/runner/bootstrap.ts'

type Init = (send: (...args: unknown[]) => void, alarm: (...args: unknown[]) => void, config: string, source: string) => void

async function runInBareContext (source: string): Promise<unknown[][]> {
  const context = vm.createContext({})
  const [init] = vm.runInContext(BOOTSTRAP_SOURCE, context, { filename: 'enclave:bootstrap' }) as [Init, unknown]
  const sent: unknown[][] = []
  const config = JSON.stringify({ maxLog: 1000, maxOut: 1000, maxCalls: 1, maxArgs: 100, memBytes: 64 << 20 })
  init((...args) => sent.push(args), (...args) => sent.push(['alarm', ...args]), config, source)
  await new Promise((resolve) => setImmediate(resolve))
  return sent
}

t.test('the assembled source is one strict script whose parts need nothing from this module', async (t) => {
  t.match(BOOTSTRAP_SOURCE, /^\(function \(\) \{\n'use strict'\n/)
  const sent = await runInBareContext("console.log('hi', typeof Function); try { Function('1') } catch (e) { console.log(e.name) } return [new ArrayBuffer(8).byteLength, new Uint8Array(3).length]")
  t.same(sent, [['R', 'v', '[8,3]', '[{"level":"log","message":"hi function"},{"level":"log","message":"EvalError"}]']])
})

t.test('a refused tool call, an uncaught error and a limit each reach the host as the protocol says', async (t) => {
  t.same(await runInBareContext("await callTool(42).catch((e) => console.log(e.code)); throw new TypeError('boom')"), [
    ['F', 'TOOL_ERROR', '', 0, ''],
    ['R', 'e', '{"name":"TypeError","code":"EXECUTION_ERROR","message":"boom"}', '[{"level":"log","message":"TOOL_ERROR"}]']
  ])
  const sent = await runInBareContext("try { 'x'.repeat(1e9) } catch {} return 1")
  t.same(sent[0], ['alarm', 'MEMORY_LIMIT_EXCEEDED', 'Memory limit of 64 MB exceeded: a string of 1000000000 characters', '', ''])
})
