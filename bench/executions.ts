// Queued executions (not a test): submit-to-final latency of a trivial script against sync
// /api/execute in the same run, event delivery latency (a log line in the isolate → an SSE
// client), and cancel-to-final latency. Embedded defaults (in-process queue and events), or with
// --real PostgreSQL + BullMQ/Redis Streams (DATABASE_URL, REDIS_URL); loopback HTTP. The client
// runs in a process of its own, as bench:http's load generator does: in the service's process its
// fetch and SSE parsing would share the event loop with the runs it measures (the second request
// and the stream of a queued run would be charged twice). On a shared machine the figures are
// indicative; the ratio is the point.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { backendLabel, fmt, machineBusyMs, percentile, startBenchApp } from './support.ts'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40)
const CPU_WINDOW_MS = Number(process.env.BENCH_CPU_SECONDS ?? 3) * 1000
const CLIENT = process.env.BENCH_EXECUTIONS_CLIENT

interface CpuFigures { runs: number, wallMs: number, busyMs: number }
interface Figures { syncMs: number[], queuedMs: number[], deliveryMs: number[], cancelMs: number[], cpu?: { sync: CpuFigures, queued: CpuFigures } }

if (CLIENT === undefined) {
  const bench = await startBenchApp()
  const headers = await bench.tenant('bench-exec', { maxConcurrentExecutions: 1000 })
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, BENCH_EXECUTIONS_CLIENT: JSON.stringify({ url: bench.url, headers }) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  if (code !== 0) throw new Error(`the benchmark client failed (exit ${code})`)
  const figures = JSON.parse(out) as Figures
  const [s, q, d, c] = [figures.syncMs, figures.queuedMs, figures.deliveryMs, figures.cancelMs].map(sorted) as [number[], number[], number[], number[]]
  console.log(`rounds: ${ROUNDS} (${backendLabel()}; queue and events ${bench.fastify.config.REDIS_URL === undefined ? 'in process' : 'on BullMQ and Redis Streams'}; client in its own process)`)
  console.log(`sync /api/execute         p50 ${fmt(percentile(s, 50))} ms  p99 ${fmt(percentile(s, 99))} ms`)
  console.log(`submit → final (queued)   p50 ${fmt(percentile(q, 50))} ms  p99 ${fmt(percentile(q, 99))} ms  ratio p50 ${fmt(percentile(q, 50) / percentile(s, 50))}× (target ≤ 1.5×)`)
  console.log(`log line → SSE client     p50 ${fmt(percentile(d, 50))} ms  p99 ${fmt(percentile(d, 99))} ms  (${d.length} lines; target p50 ≤ 2 ms; 1 ms clock resolution)`)
  console.log(`cancel → final            p50 ${fmt(percentile(c, 50))} ms  p99 ${fmt(percentile(c, 99))} ms  (target p99 ≤ 100 ms)`)
  if (figures.cpu !== undefined) {
    // One client, runs back to back: when the machine is busy for most of a run, latency follows
    // CPU, and the ratio of CPU per run is what the latency ratio tends to.
    const per = (f: CpuFigures): string => `${fmt(f.wallMs / f.runs)} ms each, CPU ${fmt(f.busyMs / f.runs)} ms, cores busy ${fmt(f.busyMs / f.wallMs)}`
    const { sync, queued } = figures.cpu
    console.log(`whole machine, back to back: sync ${per(sync)}; queued ${per(queued)}; CPU per run ratio ${fmt((queued.busyMs / queued.runs) / (sync.busyMs / sync.runs))}×`)
  }
  await bench.fastify.close()
} else {
  const { url, headers } = JSON.parse(CLIENT) as { url: string, headers: Record<string, string> }
  process.stdout.write(JSON.stringify(await measure(url, headers)))
}

function sorted (xs: number[]): number[] { return [...xs].sort((a, b) => a - b) }

async function measure (url: string, headers: Record<string, string>): Promise<Figures> {
  async function * sse (executionId: string): AsyncGenerator<{ type: string, data: Record<string, unknown>, receivedAt: number }> {
    const res = await fetch(`${url}/api/executions/${executionId}/events`, { headers: { ...headers, accept: 'text/event-stream' } })
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const receivedAt = Date.now()
      buffer += decoder.decode(chunk, { stream: true })
      let end
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data === undefined) continue
        const event = JSON.parse(data) as { type: string, data: Record<string, unknown> }
        yield { ...event, receivedAt }
        if (event.type === 'final') return
      }
    }
  }

  async function submit (code: string): Promise<string> {
    const res = await fetch(`${url}/api/executions`, { method: 'POST', headers, body: JSON.stringify({ code }) })
    return ((await res.json()) as { executionId: string }).executionId
  }

  async function drain (events: AsyncGenerator<unknown>): Promise<void> {
    while (!(await events.next()).done) { /* until final */ }
  }

  // Warm-up: isolates, runners, the JIT.
  for (let i = 0; i < 10; i++) {
    await fetch(`${url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: 'return 1' }) })
    await drain(sse(await submit('return 1')))
  }

  // 1. submit-to-final vs sync execute, interleaved so both see the same load.
  const syncMs: number[] = []
  const queuedMs: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    let t0 = performance.now()
    await (await fetch(`${url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: 'return 1' }) })).json()
    syncMs.push(performance.now() - t0)
    t0 = performance.now()
    await drain(sse(await submit('return 1')))
    queuedMs.push(performance.now() - t0)
  }

  // 2. event delivery: each log line carries the isolate's clock; the client notes when it arrives.
  const deliveryMs: number[] = []
  for (let i = 0; i < Math.max(5, ROUNDS / 4); i++) {
    const id = await submit('for (let i = 0; i < 20; i++) { console.log(String(Date.now())); await callTool("data:query", { limit: 1 }) }\nreturn 1')
    for await (const event of sse(id)) {
      if (event.type === 'log') deliveryMs.push(event.receivedAt - Number(event.data.message))
    }
  }

  // 3. cancel-to-final: DELETE while the run spins, until `final` reaches the watching client.
  const cancelMs: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    const id = await submit('while (true) {}')
    const stream = sse(id)
    // Not `for await ... break`: that would close the stream.
    for (let next = await stream.next(); !next.done && next.value.type !== 'started'; next = await stream.next()) { /* until started */ }
    // The run is on its isolate once the runner has it; a short pause makes sure it spins.
    await new Promise((resolve) => setTimeout(resolve, 20))
    const t0 = Date.now()
    await fetch(`${url}/api/executions/${id}`, { method: 'DELETE', headers: { authorization: headers.authorization! } })
    for (let next = await stream.next(); !next.done; next = await stream.next()) {
      if (next.value.type === 'final') cancelMs.push(next.value.receivedAt - t0)
    }
  }

  // 4. CPU per run on the whole machine (every process: service, runners, client, PostgreSQL,
  // Redis), each kind run back to back for a few seconds. Clock ticks are 10 ms: hence seconds.
  const cpuOf = async (run: () => Promise<void>): Promise<CpuFigures | undefined> => {
    const before = machineBusyMs()
    const t0 = performance.now()
    let runs = 0
    while (performance.now() - t0 < CPU_WINDOW_MS) { await run(); runs++ }
    const after = machineBusyMs()
    return before === undefined || after === undefined ? undefined : { runs, wallMs: performance.now() - t0, busyMs: after - before }
  }
  const sync = await cpuOf(async () => { await (await fetch(`${url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code: 'return 1' }) })).json() })
  const queued = await cpuOf(async () => { await drain(sse(await submit('return 1'))) })

  return { syncMs, queuedMs, deliveryMs, cancelMs, ...(sync !== undefined && queued !== undefined ? { cpu: { sync, queued } } : {}) }
}
