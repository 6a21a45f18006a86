// The meter of a run (issue 30, item 1): CPU measured by the isolate, wall time, bytes in and
// out counted exactly, in the result's stats, the final event, GET /api/executions/:id and the audit entry.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { adminHeaders, buildApp, createTenant } from '../helper.ts'

interface Stats { duration: number, toolCallCount: number, cpuTime?: number, wallMs: number, cpuMs: number, peakHeapBytes: number, toolTimeMs: number, bytesIn: number, bytesOut: number }

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

t.test('the meter', async (t) => {
  // An upstream that answers after 300 ms: a run awaiting it spends wall time, not CPU.
  const upstream = http.createServer((_req, res) => { setTimeout(() => { res.setHeader('content-type', 'application/json'); res.end('{"waited":true}') }, 300) })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { upstream.close() })
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '1', TOOL_UPSTREAMS: origin })
  const put = await app.inject({ method: 'PUT', url: '/admin/tools/meter:wait', headers: adminHeaders(), payload: { description: 'waits 300 ms', argsSchema: { type: 'object' }, http: { method: 'GET', url: `${origin}/wait` }, defaultEnabled: true } })
  t.equal(put.statusCode, 200, put.body)
  const tenant = await createTenant(app, 'meter', { tier: 'starter', permissions: ['tool:data:insert', 'tool:meter:wait'] })
  // The tenant's isolate is made once; the runs below reuse it, so their wall time is their own.
  t.equal((await tenant.execute('return 1')).statusCode, 200)

  t.test('a CPU-bound run: its CPU is the work it did, whatever the wall time', async (t) => {
    // A fixed amount of work, timed here on this thread's CPU clock: the isolate's figure must
    // match it, not the wall time (which on a loaded machine is whatever the scheduler makes it).
    const work = 'let x = 0; for (let i = 0; i < 60_000_000; i++) x = (x + i * 7) % 1_000_003; return x'
    // eslint-disable-next-line no-new-func -- the same loop the run executes, timed in this thread
    const loop = new Function(work) as () => number
    loop()
    const before = process.threadCpuUsage()
    const expected = loop()
    const used = process.threadCpuUsage(before)
    const localMs = (used.user + used.system) / 1000
    const res = await tenant.execute(work)
    const { stats, value } = res.json() as { stats: Stats, value: unknown }
    t.equal(value, expected, 'the run did the same work')
    t.ok(stats.cpuMs >= 0.5 * localMs && stats.cpuMs <= 2 * localMs + 20, `cpu ${stats.cpuMs} ms for work that took ${localMs.toFixed(1)} ms of CPU here`)
    t.ok(stats.cpuMs <= stats.wallMs + 2, `cpu ${stats.cpuMs} ms within wall ${stats.wallMs} ms`)
    t.equal(stats.cpuMs, Math.round(stats.cpuTime ?? -1), 'cpuMs is the isolate\'s cpuTime, rounded')
    t.equal(stats.wallMs, Math.round(stats.duration), 'wallMs is the duration, rounded')
    t.ok(stats.peakHeapBytes > 0, 'a heap was measured')
  })

  t.test('an awaiting run: CPU near zero, the wait counted as tool time', async (t) => {
    const res = await tenant.execute("return await callTool('meter:wait', {})")
    const { stats, value } = res.json() as { stats: Stats, value: unknown }
    t.same(value, { waited: true })
    t.ok(stats.wallMs >= 300, `wall ${stats.wallMs} ms`)
    t.ok(stats.toolTimeMs >= 300 && stats.toolTimeMs <= stats.wallMs, `tool time ${stats.toolTimeMs} ms`)
    // Waiting is not CPU: a meter that counted the 300 ms wait would report at least that.
    t.ok(stats.cpuMs < 100, `cpu ${stats.cpuMs} ms of ${stats.wallMs} ms`)
  })

  t.test('bytes in and out are exact, and the same meter is everywhere the run is read', async (t) => {
    const document = { name: 'Zoë', note: '€ and ✓', n: [1, 2, 3] }
    const code = `console.log('naïve €'); console.warn('x'); await callTool('data:insert', { document: ${JSON.stringify(document)} }); return { ok: '✓', list: [1, 'ü'] }`
    const res = await tenant.execute(code)
    const result = res.json() as { executionId: string, stats: Stats, logs: unknown[], value: unknown }
    t.equal(result.stats.bytesIn, Buffer.byteLength(code) + bytes({ document }))
    t.equal(result.stats.bytesOut, bytes({ ok: '✓', list: [1, 'ü'] }) + bytes({ level: 'log', message: 'naïve €' }) + bytes({ level: 'warn', message: 'x' }))
    t.equal(result.stats.toolCallCount, 1)

    await app.audit.flush()
    const audit = (await app.inject({ method: 'GET', url: `/api/audit/${result.executionId}`, headers: tenant.headers })).json() as { entry: Record<string, unknown> }
    const { cpuMs, peakHeapBytes, toolTimeMs, bytesIn, bytesOut, wallMs } = result.stats
    t.match(audit.entry, { durationMs: wallMs, toolCalls: 1, cpuMs, peakHeapBytes, toolTimeMs, bytesIn, bytesOut })

    // A queued run: the final event and GET /api/executions/:id carry the same stats.
    const submitted = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: "console.log('é'); return 'ß'" } })
    t.equal(submitted.statusCode, 202)
    const { executionId } = submitted.json() as { executionId: string }
    const events = (await app.inject({ method: 'GET', url: `/api/executions/${executionId}/events`, headers: { ...tenant.headers, accept: 'application/x-ndjson' } })).body
    const final = events.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string, data: { result: { stats: Stats } } }).find((e) => e.type === 'final')
    const got = (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json() as { result: { stats: Stats } }
    t.equal(final?.data.result.stats.bytesIn, Buffer.byteLength("console.log('é'); return 'ß'"))
    t.equal(final?.data.result.stats.bytesOut, bytes('ß') + bytes({ level: 'log', message: 'é' }))
    t.same(got.result.stats, final?.data.result.stats)
    t.match(got.result.stats, { wallMs: Number, cpuMs: Number, peakHeapBytes: Number, toolTimeMs: 0 })
  })

  t.test('a refusal has no meter on its audit entry', async (t) => {
    const small = await createTenant(app, 'meter-refused', { quotaOverrides: { maxExecutionsPerDay: 0 } })
    const res = await small.execute('return 1')
    t.equal(res.statusCode, 429)
    await app.audit.flush()
    const entries = (await app.inject({ method: 'GET', url: '/api/audit', headers: small.headers })).json().entries as Array<Record<string, unknown>>
    t.match(entries[0], { action: 'execution_refused', cpuMs: null, peakHeapBytes: null, toolTimeMs: null, bytesIn: null, bytesOut: null })
  })
})
