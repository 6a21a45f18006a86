// Recording and replaying a run's Math.random and clock (RunOptions.onDrawn / replay): a run started
// again with what an earlier start drew returns the same values and takes the same branches.
import t from 'tap'
import fc from 'fast-check'
import { Enclave } from '../../services/enclave/index.ts'
import { testHandler } from './fixtures/helpers.ts'

t.test('drawn values: recorded in order, replayed exactly', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, toolHandler: testHandler })
  t.teardown(async () => await enclave.dispose())
  t.equal(await enclave.ready(), true)

  const code = `
    const a = Math.random()
    const t = Date.now()
    const d = new Date().getTime()
    const s = Date()
    await callTool('echo', { a })
    const b = Math.random()
    const p = typeof performance === 'object' ? performance.now() : null
    return { a, t, d, s, b, p, isDate: new Date() instanceof Date, ctor: new Date().constructor === Date, fixed: new Date(0).toISOString(), utc: Date.UTC(2020, 0, 1) }
  `

  t.test('the values drawn before a call reach the host before the call does', async (t) => {
    const drawn: Array<number[] | null> = []
    const seenAtCall: number[] = []
    const first = await enclave.run(code, {
      onDrawn: (values) => { drawn.push(values) },
      tools: async (name, args) => { seenAtCall.push(drawn.flat().length); return await testHandler(name, args, { calls: [] }) }
    })
    t.equal(first.success, true, JSON.stringify(first.error))
    const v = first.value as Record<string, unknown>
    t.equal(v.isDate, true)
    t.equal(v.ctor, true)
    t.equal(v.fixed, '1970-01-01T00:00:00.000Z', 'a Date with arguments is the real one')
    t.equal(v.utc, 1577836800000)
    t.same(seenAtCall, [4], 'Math.random, Date.now, new Date() and Date() before the call')
    const record = drawn.flat() as number[]
    t.equal(record[0], v.a)
    t.equal(record[1], v.t)

    const again = await enclave.run(code, { replay: record })
    t.same({ ...again.value as object }, { ...v }, 'every drawn value, and what follows from them, is the same')

    // Part of the record: the rest is drawn live and reported, only the rest.
    const later: number[] = []
    const partial = await enclave.run(code, { replay: record.slice(0, 2), onDrawn: (values) => { later.push(...(values ?? [])) } })
    const pv = partial.value as Record<string, unknown>
    t.equal(pv.a, v.a)
    t.equal(pv.t, v.t)
    t.equal(later.length, record.length - 2)
  })

  t.test('a run without onDrawn records nothing and works as before', async (t) => {
    const r = await enclave.run('let x = 0; for (let i = 0; i < 100000; i++) x += Math.random(); return x > 0')
    t.equal(r.value, true)
  })

  t.test('a record over its bound is dropped: onDrawn(null)', async (t) => {
    const drawn: Array<number[] | null> = []
    const r = await enclave.run('for (let i = 0; i < 200000; i++) Math.random(); await callTool("echo", {}); return 1', { onDrawn: (values) => { drawn.push(values) } })
    t.equal(r.value, 1)
    t.equal(drawn[0], null, 'told at the next call')
    t.ok(drawn.every((values) => values === null), 'and never a partial record after')
  })

  t.test('property: scripts branching on Math.random and the clock replay identically', async (t) => {
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom('Math.random() < 0.5', 'Date.now() % 2 === 0', 'new Date().getMilliseconds() < 500', 'Math.random() * 10 > 3'), { minLength: 1, maxLength: 6 }), async (conditions) => {
      const script = 'const path = []\n' + conditions.map((c, i) => `if (${c}) { path.push(${i}); await callTool('echo', { i: ${i} }) } else path.push(-${i})`).join('\n') + '\nreturn path'
      const record: number[] = []
      const calls: unknown[] = []
      const first = await enclave.run(script, { onDrawn: (values) => { record.push(...(values ?? [])) }, tools: async (_name, args) => { calls.push(args); return args } })
      const replayedCalls: unknown[] = []
      const again = await enclave.run(script, { replay: record, tools: async (_name, args) => { replayedCalls.push(args); return args } })
      return JSON.stringify(first.value) === JSON.stringify(again.value) && JSON.stringify(calls) === JSON.stringify(replayedCalls)
    }), { numRuns: 25 })
    t.pass('25 random scripts replayed identically')
  })
})
