// Hostile tenants against the enclave's resource isolation (issue 10): memory outside the heap,
// work that outlives a timeout, CPU hogging, crashes that take others' runs, forged limit codes,
// and what a runner holds. Each case failed before its fix.
import t from 'tap'
import { readFileSync, readlinkSync } from 'node:fs'
import { Enclave, type RunEvent } from '../../services/enclave/index.ts'
import { checkRunnerMessage } from '../../services/enclave/host/runner-messages.ts'
import { RUNNER_ENV_ALLOW_LIST } from '../../services/enclave/host/runner-launch.ts'
import { testHandler } from '../enclave/fixtures/helpers.ts'
import { waitFor } from '../support/wait-for.ts'

const FREE = { memoryLimitMB: 32, timeoutMs: 5000 }
const MB = 1024 * 1024

function rssOf (pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
}

function cpuTicksOf (pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch { return undefined }
}

/** Runs `code` while sampling the runner's RSS every 10 ms; returns the result and the peak. */
async function withPeakRss (enclave: Enclave, code: string, options: object): Promise<{ code: string | undefined, peak: number }> {
  const pid = enclave.runnerPids()[0]!
  let peak = rssOf(pid)
  const sampler = setInterval(() => { try { peak = Math.max(peak, rssOf(pid)) } catch {} }, 10)
  const r = await enclave.run(code, options)
  clearInterval(sampler)
  return { code: r.error?.code, peak }
}

t.test('memory outside the heap counts against the limit; the runner stays under its budget', async (t) => {
  const enclave = new Enclave({ securityLevel: 'STRICT', runners: 1 })
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  // The supervisor's budget for a runner with one free-tier run: base + 2 × 32 MB.
  const budget = (256 + 2 * FREE.memoryLimitMB) * MB
  const probes = [
    'const b = new ArrayBuffer(1, {maxByteLength: 2**32}); b.resize(2**30); const u = new Uint8Array(b); for (let i = 0; i < u.length; i += 4096) u[i] = 1; return u.length',
    'const all = []; for (let i = 0; i < 64; i++) all.push(new ArrayBuffer(1, {maxByteLength: 2**32})); return all.length',
    'const b = new ArrayBuffer(1, {maxByteLength: 30 * 2**20}); b.resize(30 * 2**20); const c = new ArrayBuffer(1, {maxByteLength: 30 * 2**20}); c.resize(30 * 2**20); return b.byteLength + c.byteLength',
    "return 'x'.repeat(2**28).indexOf('y')",
    "return 'x'.padEnd(2**28, 'y').length",
    'return new Array(1e8).fill(0).length'
  ]
  for (const code of probes) {
    const { code: errorCode, peak } = await withPeakRss(enclave, code, FREE)
    t.equal(errorCode, 'MEMORY_LIMIT_EXCEEDED', code)
    t.ok(peak < budget, `peak RSS ${Math.round(peak / MB)} MB under the budget of ${budget / MB} MB`)
  }
  t.equal(enclave.stats().runnerRestarts, 0, 'no probe took the runner down')
  const small = await enclave.run('const b = new ArrayBuffer(1, {maxByteLength: 2**20}); b.resize(2**20); return b.byteLength', FREE)
  t.equal(small.value, 2 ** 20, 'a resizable buffer within the limit works')
})

t.test('a forged limit code is an EXECUTION_ERROR', async (t) => {
  const enclave = new Enclave({ securityLevel: 'STRICT', runners: 1 })
  t.teardown(async () => await enclave.dispose())
  const forged = await enclave.run("throw {name: 'RangeError', message: 'Array buffer allocation failed'}", FREE)
  t.same(forged.error, { name: 'RangeError', code: 'EXECUTION_ERROR', message: 'Array buffer allocation failed' })
  const coded = await enclave.run("const e = new Error('Memory limit of 32 MB exceeded'); e.code = 'MEMORY_LIMIT_EXCEEDED'; e.name = 'MemoryLimitError'; throw e", FREE)
  t.same(coded.error, { name: 'MemoryLimitError', code: 'EXECUTION_ERROR', message: 'Memory limit of 32 MB exceeded' })
  // A real refusal, caught and then rethrown as is, is a memory limit: the host saw it happen.
  const real = await enclave.run('try { new Uint8Array(2 ** 30) } catch (e) { throw e }', FREE)
  t.equal(real.error?.code, 'MEMORY_LIMIT_EXCEEDED')
})

t.test('tool arguments are measured before they leave the isolate', async (t) => {
  const calls: string[] = []
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, toolHandler: async (name) => { calls.push(name); return 1 } })
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  const { code, peak } = await withPeakRss(enclave, 'const big = "x".repeat(100 * 2**20)\ntry { await callTool("echo", big) } catch (e) { return e.code + ": " + e.message }', { memoryLimitMB: 512, timeoutMs: 20_000 })
  t.equal(code, undefined)
  t.same(calls, [], 'the handler never saw the call')
  const r = await enclave.run('const big = "x".repeat(100 * 2**20)\ntry { await callTool("echo", big) } catch (e) { return e.code + ": " + e.message }', { memoryLimitMB: 512, timeoutMs: 20_000 })
  t.equal(r.value, 'TOOL_ERROR: Tool arguments exceed 1048576 bytes')
  // The isolate holds the string and its JSON (~200 MB); a copy out to the runner would add more.
  t.ok(peak < 600 * MB, `peak RSS ${Math.round(peak / MB)} MB`)
})

t.test('a timed-out run that V8 cannot stop frees its CPU within the bound, and holds its slot until then', async (t) => {
  const exits: number[] = []
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 1, onRunnerExit: (info) => exits.push(info.pid ?? 0) })
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  const [pid] = enclave.runnerPids()
  let settledAt = 0
  const sortProbe = "const big = 'a'.repeat(2**20); const a = []; const N = 100000; for (let i = 0; i < N; i++) a.push(big.slice((i*7919) % N)); a.sort()"
  const r = await enclave.run(sortProbe, { memoryLimitMB: 32, timeoutMs: 1500, onSettled: () => { settledAt = performance.now() } })
  const resultAt = performance.now()
  t.equal(r.error?.code, 'TIMEOUT')
  t.equal(settledAt, 0, 'the slot is still held when the TIMEOUT is answered')
  // Bound: 250 ms to call the isolate stuck, then at most 1 s for the runner's other runs.
  t.ok(await waitFor(() => settledAt > 0, { timeout: resultAt + 3000 - performance.now(), message: 'the run settled' }), 'settled')
  t.ok(settledAt - resultAt < 2000, `CPU freed ${Math.round(settledAt - resultAt)} ms after the TIMEOUT`)
  t.same(exits, [pid], 'the runner with the stuck thread was stopped')
  const gone = performance.now() + 2000
  while (cpuTicksOf(pid!) !== undefined && performance.now() < gone) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(cpuTicksOf(pid!), undefined, 'that process is gone, its CPU with it')
  t.equal((await enclave.run('return 1')).value, 1, 'a replacement serves')
})

t.test('CPU fairness: 60 busy loops of one tenant leave a bystander its share', async (t) => {
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 2, toolHandler: testHandler })
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  // A history of trivial runs must not buy a tenant a bigger share.
  for (let i = 0; i < 4; i++) await enclave.run('return 1', { isolateKey: 'hog' })
  let hogsEnded = 0
  const hogs = Array.from({ length: 60 }, async () => await enclave.run('while (true) {}', { isolateKey: 'hog', timeoutMs: 12_000 }).finally(() => { hogsEnded++ }))
  await new Promise((resolve) => setTimeout(resolve, 300))
  // ~170 ms of CPU on a quiet machine of ours.
  const job = 'let x = 0\nfor (let i = 0; i < 5e6; i++) x = (x + i * 7) % 1000003\nreturn x'
  const quiet = await enclave.run(job, { isolateKey: 'bystander-calibrate', timeoutMs: 5000 })
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now()
    const r = await enclave.run(job, { isolateKey: 'bystander', timeoutMs: 5000 })
    const took = performance.now() - t0
    t.equal(r.value, quiet.value, 'the bystander finished')
    // Unfair is waiting behind the hog, whose runs end only at their 12 s timeout: the bystander
    // must finish before any of them. Its wall time (under 1 s on a quiet machine) gets half
    // that timeout, as on a machine at load 8 and more this process has a fraction of a core.
    t.equal(hogsEnded, 0, 'no hog run had ended: the bystander did not wait for a core')
    t.ok(took < 6000, `bystander took ${Math.round(took)} ms (CPU ${r.stats.cpuTime} ms)`)
  }
  await enclave.dispose()
  const ends = await Promise.all(hogs)
  t.ok(ends.every((r) => r.success === false), 'no hog finished')
})

t.test('runners hold no secret, run as nobody without network, and are confined', async (t) => {
  const secrets = { JWT_SECRET: 'jwt-secret-that-must-stay-in-the-api', DATABASE_ADMIN_URL: 'postgres://owner:pw@127.0.0.1/x', DATABASE_URL: 'postgres://app:pw@127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1:6379' }
  const saved = { ...process.env }
  Object.assign(process.env, secrets)
  t.teardown(() => { for (const k of Object.keys(secrets)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k] } })
  const enclave = new Enclave({ securityLevel: 'STRICT', runners: 1 })
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  const [pid] = enclave.runnerPids()
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((x) => x !== '')
  for (const entry of environ) t.ok((RUNNER_ENV_ALLOW_LIST as readonly string[]).includes(entry.split('=')[0]), `allowed: ${entry.split('=')[0]}`)
  for (const value of Object.values(secrets)) t.notOk(readFileSync(`/proc/${pid}/environ`, 'utf8').includes(value), 'no secret value')
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  t.ok(cmdline.includes('--permission'), 'Node permission model')
  t.notOk(cmdline.some((a) => a.startsWith('--allow-child-process') || a.startsWith('--allow-worker') || a.startsWith('--allow-fs-write')), 'no process, worker or write allowances')
  const p = enclave.protections
  t.equal(p.permissionModel, true)
  t.equal(p.environment, 'allow-list')
  if (process.getuid?.() === 0) {
    t.equal(p.user, 'nobody')
    t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'runs as nobody')
  }
  if (p.network === 'none') {
    t.not(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'its own network namespace')
    t.equal(p.filesystem, 'read-only')
  }
})

t.test('the supervisor treats runner messages as untrusted', async (t) => {
  const limits = { timeoutMs: 1000, waitedMs: 0, memoryLimitMB: 32, maxToolCalls: 2, maxOutputBytes: 100, maxConsoleBytes: 100, maxToolArgsBytes: 50, astCheck: true }
  const run = { limits, toolCalls: 0, callIds: new Set<number>() }
  // The neighbour of the unit under test: a runner as the check sees it (its runs).
  const runner = { inFlight: new Map([['7', run]]), draining: new Map() } as never
  t.equal(checkRunnerMessage(runner, { t: 'call', id: '7', c: 1, n: 'data:query', a: '{}' }), null)
  t.equal(checkRunnerMessage(runner, { t: 'call', id: '8', c: 1, n: 'data:query', a: '{}' }), 'a tool call for an execution it was not given')
  t.equal(checkRunnerMessage(runner, { t: 'call', id: '7', c: 1, n: 'x', a: 'y'.repeat(51) }), 'a tool call over its bounds')
  run.callIds.add(1)
  t.equal(checkRunnerMessage(runner, { t: 'call', id: '7', c: 1, n: 'x', a: '' }), 'a tool call id that is not new')
  run.toolCalls = 2
  t.equal(checkRunnerMessage(runner, { t: 'call', id: '7', c: 2, n: 'x', a: '' }), 'more tool calls than the execution may make')
  t.equal(checkRunnerMessage(runner, { t: 'done', id: '7', ok: true, v: 'z'.repeat(101), l: [], tc: 0 }), 'a value over the output limit')
  t.equal(checkRunnerMessage(runner, { t: 'done', id: '9', ok: true, l: [], tc: 0 }), 'a result for an execution it was not given')
  t.equal(checkRunnerMessage(runner, { t: 'freed', id: '7' }), "'freed' for an execution that is not draining")
  t.equal(checkRunnerMessage(runner, { t: 'cpu', s: [['8', 1]] }), 'CPU samples for executions it was not given')
  t.equal(checkRunnerMessage(runner, { t: 'nope' } as never), 'an unknown message type')
})

t.test('a runner stopped for memory blames the run alone in it; that tenant is quarantined', async (t) => {
  // A base below an idle runner's own RSS: the memory watch stops a runner as soon as it runs anything.
  const enclave = new Enclave({ securityLevel: 'SECURE', runners: 2, runnerBaseMemoryMB: 1, memoryWatchIntervalMs: 20 })
  const events: RunEvent[] = []
  enclave.on('run', (e: RunEvent) => events.push(e))
  t.teardown(async () => await enclave.dispose())
  await enclave.ready()
  const r = await enclave.run('while (true) {}', { isolateKey: 'bomber', timeoutMs: 5000, memoryLimitMB: 8 })
  t.equal(r.error?.code, 'MEMORY_LIMIT_EXCEEDED')
  t.match(r.error?.message, /the sandbox process was stopped$/)
  await enclave.run('return 1', { isolateKey: 'bomber', timeoutMs: 5000, memoryLimitMB: 8 })
  t.equal(events[1].runner, 2, 'its next run goes to the quarantine runner')
})
