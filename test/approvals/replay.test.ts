// One start of a run that may wait for approvals (executeScript with `approvals`), on real isolates
// and the embedded database: a gated call suspends the start with a journal; the next start
// replays that journal (recorded results, drawn values, console lines) and goes on live from the
// decided call. Counting tools prove each side effect happens exactly once.
import t from 'tap'
import fc from 'fast-check'
import { randomUUID } from 'node:crypto'
import { Type } from 'typebox'
import { buildApp, createTenant } from '../helper.ts'
import { executeScript, type ExecutionEvent, type ExecutionOutcome } from '../../services/executions/execute-script.ts'
import type { RunJournal } from '../../services/executions/approvals/run-journal.ts'
import { pendingCalls } from '../../services/executions/approvals/run-journal.ts'
import { ToolRegistry } from '../../services/tools/tool-registry.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import type { ToolCaller } from '../../services/tools/tool-definition.ts'
import type { ExecutionResult } from '../../services/enclave/index.ts'

t.test('replay of a run waiting for approvals', async (t) => {
  const app = await buildApp(t)
  const counts = new Map<string, number>()
  const counting = (name: string, approval: 'always' | 'never') => ({
    name,
    description: `Counts its calls (${approval})`,
    argsSchema: Type.Unknown(),
    approval,
    run: async (_trx: unknown, caller: ToolCaller, args: unknown) => {
      const key = `${caller.tenantId}/${name}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
      if ((args as { fail?: boolean } | null)?.fail === true) throw new Error('asked to fail')
      return { n: counts.get(key), args }
    }
  })
  const tools = new ToolRegistry(app.db, [counting('plain', 'never'), counting('gated', 'always')], { cacheTtlMs: 60_000, limits: app.tools.limits })
  const deps = { ...app.executionDeps, tools }

  const tenantFor = async (label: string, quotas: Partial<ToolCaller['quotas']> = {}) => {
    const tenant = await createTenant(app, label, { tier: 'enterprise' })
    const caller: ToolCaller = { tenantId: tenant.tenantId, userId: 'u1', permissions: ['tool:plain', 'tool:gated'], quotas: { ...TIER_QUOTAS.enterprise, ...quotas } }
    const count = (name: string): number => counts.get(`${tenant.tenantId}/${name}`) ?? 0
    const executionId = randomUUID()
    /** One start of the run, with the journal of its last suspension. */
    const start = async (code: string, journal?: RunJournal) => {
      const events: ExecutionEvent[] = []
      const outcome = await executeScript(deps, caller, { executionId, code, approvals: journal === undefined ? {} : { journal }, onEvent: (e) => { events.push(e) } }) as Extract<ExecutionOutcome, { ran: true }>
      return { outcome, events, journal: outcome.suspended?.journal, result: outcome.result }
    }
    return { caller, count, start, tenant }
  }
  const decide = (journal: RunJournal, approve: boolean, reason?: string): RunJournal => {
    for (const call of pendingCalls(journal)) call.decision = { approve, by: 'decider-1', at: new Date().toISOString(), ...(reason !== undefined ? { reason } : {}) }
    return JSON.parse(JSON.stringify(journal)) as RunJournal // as stored between starts
  }
  const ended = (result: ExecutionResult) => result.success ? { value: result.value } : { code: result.error?.code, message: result.error?.message }

  t.test('two gated calls between ordinary ones: suspends twice, each side effect once, console lines once', async (t) => {
    const run = await tenantFor('replay-two')
    const code = `
      const a = await callTool('plain', { i: 1 })
      const r = Math.random()
      console.log('before g1', r)
      const g1 = await callTool('gated', { r })
      console.log('after g1')
      const b = await callTool('plain', { i: 2, at: Date.now() })
      const g2 = await callTool('gated', { i: 3 })
      console.log('done')
      return { a: a.n, g1: g1.n, b: b.n, g2: g2.n, r, same: g1.args.r === r }`
    const first = await run.start(code)
    t.ok(first.journal, 'the first start suspends')
    t.equal(run.count('plain'), 1)
    t.equal(run.count('gated'), 0, 'the gated call did not act')
    const required = first.events.filter((e) => e.type === 'approval_required')
    t.equal(required.length, 1)
    t.match(required[0]?.data, { callId: 'call-1', tool: 'gated', args: { r: Number }, position: 1 })
    t.equal(first.journal!.starts, 1)
    t.equal(first.journal!.logLines, 1)

    const second = await run.start(code, decide(first.journal!, true))
    t.ok(second.journal, 'the second gated call suspends again')
    t.same(pendingCalls(second.journal!).map((c) => c.callId), ['call-3'])
    t.equal(run.count('plain'), 2, 'the first plain call was replayed, not made again')
    t.equal(run.count('gated'), 1)
    t.equal(second.journal!.starts, 2)

    const third = await run.start(code, decide(second.journal!, true))
    t.equal(third.journal, undefined, 'the run ended')
    const value = third.result.value as Record<string, unknown>
    t.same({ ...value, r: typeof value.r }, { a: 1, g1: 1, b: 2, g2: 2, r: 'number', same: true }, 'each call answered as it was first made')
    t.equal(run.count('plain'), 2)
    t.equal(run.count('gated'), 2)
    const lines = [first, second, third].flatMap((s) => s.events.filter((e) => e.type === 'log').map((e) => (e.data as { message: string }).message.split(' ')[0]))
    t.same(lines, ['before', 'after', 'done'], 'no console line went out twice')
    t.equal(third.result.logs.length, 3, 'the final result has every line')
    const toolCalls = [first, second, third].flatMap((s) => s.events.filter((e) => e.type === 'tool_call'))
    t.equal(toolCalls.length, 4, 'each call announced once')
  })

  t.test('a call other than the recorded one ends the run REPLAY_DIVERGED naming the position; nothing runs live', async (t) => {
    const run = await tenantFor('replay-diverged')
    const first = await run.start("await callTool('plain', { i: 1 }); await callTool('gated', {}); return 1")
    t.ok(first.journal)
    const other = await run.start("await callTool('plain', { i: 2 }); await callTool('gated', {}); return 1", decide(first.journal!, true))
    t.same(ended(other.result).code, 'REPLAY_DIVERGED')
    t.match(other.result.error?.message, /position 0.*plain with \{"i":2\}.*plain with \{"i":1\}/)
    const caught = await run.start("try { await callTool('gated', {}) } catch (e) { return 'caught' } return 1", decide(first.journal!, true))
    t.equal(ended(caught.result).code, 'REPLAY_DIVERGED', 'uncatchable')
    t.equal(run.count('plain'), 1)
    t.equal(run.count('gated'), 0)
  })

  t.test('a rejected call throws ApprovalRejectedError the script can catch; the tool never acts', async (t) => {
    const run = await tenantFor('replay-reject')
    const code = "try { await callTool('gated', { pay: 5 }) } catch (e) { return [e.name, e.code, e.message] } return 'paid'"
    const first = await run.start(code)
    const second = await run.start(code, decide(first.journal!, false, 'not today'))
    t.equal(second.journal, undefined)
    const [name, errCode, message] = second.result.value as string[]
    t.equal(name, 'ApprovalRejectedError')
    t.equal(errCode, 'APPROVAL_REJECTED')
    t.match(message, /call-0 of gated \(position 0\): not today/)
    t.equal(run.count('gated'), 0)
  })

  t.test('Promise.all of 40 gated calls: 40 pending in one suspension; call 41 suspends again; a grant runs calls without waiting', async (t) => {
    const run = await tenantFor('replay-batch')
    const code = `
      const all = await Promise.all(Array.from({ length: 40 }, (_, i) => callTool('gated', { i })))
      const next = await callTool('gated', { i: 40 })
      const last = await callTool('gated', { i: 41 })
      return [all.length, next.n, last.n]`
    const first = await run.start(code)
    t.equal(pendingCalls(first.journal!).length, 40)
    t.equal(first.events.filter((e) => e.type === 'approval_required').length, 40)
    t.equal(run.count('gated'), 0)
    const second = await run.start(code, decide(first.journal!, true))
    t.same(pendingCalls(second.journal!).map((c) => c.position), [40], 'call 41 waits')
    t.equal(run.count('gated'), 40)
    const granted = decide(second.journal!, true)
    granted.grants = [{ tool: 'gated', remaining: 1, by: 'decider-2' }]
    const third = await run.start(code, granted)
    t.equal(third.journal, undefined)
    t.same(third.result.value, [40, 41, 42])
    t.equal(run.count('gated'), 42)
  })

  t.test('a grant is spent call by call and recorded with its decider', async (t) => {
    const run = await tenantFor('replay-grant')
    const code = "for (let i = 0; i < 4; i++) await callTool('gated', { i }); return 'done'"
    const first = await run.start(code)
    const journal = decide(first.journal!, true)
    journal.grants = [{ tool: 'gated', remaining: 2, by: 'decider-2' }]
    const second = await run.start(code, journal)
    t.same(pendingCalls(second.journal!).map((c) => c.position), [3])
    t.same(second.journal!.calls.slice(1, 3).map((c) => c.decision?.by), ['decider-2', 'decider-2'])
    t.same(second.journal!.grants, [{ tool: 'gated', remaining: 0, by: 'decider-2' }])
    t.equal(run.count('gated'), 3)
  })

  t.test('replayed calls do not take the daily tool quota again; a waiting call takes none', async (t) => {
    const run = await tenantFor('replay-quota', { maxToolCallsPerDay: 3 })
    const code = "await callTool('plain', { i: 1 }); await callTool('plain', { i: 2, fail: true }).catch(() => {}); await callTool('gated', {}); return 'done'"
    const first = await run.start(code)
    t.ok(first.journal)
    t.same(first.journal!.calls[1]!.outcome, { ok: false, code: 'TOOL_ERROR', message: 'Tool plain failed' }, 'a failure is recorded as the script saw it')
    const second = await run.start(code, decide(first.journal!, true))
    t.same(ended(second.result), { value: 'done' }, '3 calls made, 3 allowed: the replayed two were not counted again')
    const usage = await app.inject({ method: 'GET', url: '/api/usage', headers: run.tenant.headers })
    t.equal(usage.json().toolCalls, 3)
  })

  t.test('a plain call made in the same turn as a gated one finishes and is recorded; the next start answers it from the record', async (t) => {
    const run = await tenantFor('replay-same-turn')
    const code = "const [g, p] = await Promise.all([callTool('gated', { pay: 1 }), callTool('plain', { read: 1 })]); return [g.n, p.n]"
    const first = await run.start(code)
    t.same(pendingCalls(first.journal!).map((c) => c.callId), ['call-0'])
    t.match(first.journal!.calls[1], { callId: 'call-1', tool: 'plain', outcome: { ok: true, value: { n: 1 } } })
    t.equal(run.count('plain'), 1)
    const second = await run.start(code, decide(first.journal!, true))
    t.same(second.result.value, [1, 1])
    t.equal(run.count('plain'), 1, 'not made again')
    t.equal(run.count('gated'), 1)
  })

  t.test('a call the sandbox refused keeps its position on replay', async (t) => {
    const run = await tenantFor('replay-refused')
    const code = "const e = await callTool('plain', { n: 1n }).catch((e) => e.code); const g = await callTool('gated', { after: e }); return [e, g.n]"
    const first = await run.start(code)
    t.same(pendingCalls(first.journal!).map((c) => c.callId), ['call-1'])
    const second = await run.start(code, decide(first.journal!, true))
    t.same(second.result.value, ['TOOL_ERROR', 1])
    t.equal(run.count('plain'), 0)
  })

  t.test('a run whose record of drawn values is over its bound cannot wait: REPLAY_RECORD_TOO_LARGE', async (t) => {
    const run = await tenantFor('replay-too-large')
    const first = await run.start("for (let i = 0; i < 200000; i++) Math.random(); await callTool('gated', {}); return 1")
    t.equal(first.journal, undefined, 'nothing to keep')
    t.equal(ended(first.result).code, 'REPLAY_RECORD_TOO_LARGE')
    t.match(first.result.error?.message, /Math.random/)
    t.equal(first.events.filter((e) => e.type === 'approval_required').length, 0)
    t.equal(run.count('gated'), 0)
  })

  t.test('the record a run may keep is its tier\'s maxJournalBytes: over the free tier\'s 1 MiB → REPLAY_RECORD_TOO_LARGE naming it; the same run fits on enterprise', async (t) => {
    t.same([TIER_QUOTAS.free.maxJournalBytes, TIER_QUOTAS.starter.maxJournalBytes, TIER_QUOTAS.enterprise.maxJournalBytes], [1024 * 1024, 4 * 1024 * 1024, 8 * 1024 * 1024])
    // Two calls echoing 300 000 characters each: the record keeps each call's arguments and result (about 1.2 MB).
    const code = "const s = 'x'.repeat(300000); await callTool('plain', { s }); await callTool('plain', { s }); await callTool('gated', {}); return 1"
    const free = await tenantFor('replay-cap-free', { maxJournalBytes: TIER_QUOTAS.free.maxJournalBytes })
    const refused = await free.start(code)
    t.equal(refused.journal, undefined, 'nothing to keep')
    t.equal(ended(refused.result).code, 'REPLAY_RECORD_TOO_LARGE')
    t.match(refused.result.error?.message, /over 1 MiB, this tier's maxJournalBytes \(tool results\)/)
    t.equal(free.count('gated'), 0, 'the gated call never acted')
    const enterprise = await tenantFor('replay-cap-enterprise')
    const waits = await enterprise.start(code)
    t.ok(waits.journal, 'under 8 MiB it waits')
  })

  t.test('property: scripts branching on Math.random and the clock never diverge across suspend and replay', async (t) => {
    const run = await tenantFor('replay-property')
    const condition = fc.constantFrom('Math.random() < 0.5', 'Date.now() % 2 === 0', 'new Date().getMilliseconds() < 500', 'Math.random() * 10 > 3')
    const step = fc.record({ condition, gated: fc.boolean() })
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 5 }), async (steps) => {
      const code = 'const path = []\n' + steps.map((s, i) =>
        `if (${s.condition}) { path.push(${i + 1}); await callTool('${s.gated ? 'gated' : 'plain'}', { i: ${i}, r: Math.random() }) } else path.push(-${i + 1})`).join('\n') + '\nreturn path'
      const before = run.count('gated') + run.count('plain')
      let state = await run.start(code)
      let starts = 1
      while (state.journal !== undefined && starts < 10) {
        state = await run.start(code, decide(state.journal, true))
        starts++
      }
      const path = state.result.value as number[]
      return state.result.success && run.count('gated') + run.count('plain') - before === path.filter((p) => p > 0).length
    }), { numRuns: 15 })
    t.pass('15 random scripts resumed to their end without diverging, each call made once')
  })
})
