// Part of `npm run bench`: the encrypted session's handshake, and an encrypted trivial execute
// against a plain one, both over loopback HTTP with fetch, in one run on one app (embedded
// defaults). Target: encrypted ≤ 1.2 × the plain request's time. Then the same for a streamed
// run (4 events: started, 2 logs, final), plain NDJSON against session.stream (no target).
import { openSession } from '../clients/typescript/src/session.ts'
import { backendLabel, closedLoop, fmt, percentile, startBenchApp } from './support.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const HANDSHAKES = 200
const ROUNDS = 3

const bench = await startBenchApp()
const headers = await bench.tenant('bench-sessions', { maxConcurrentExecutions: 1000 })
const token = headers.authorization?.slice('Bearer '.length) as string
const pinnedThumbprint = bench.fastify.sessionIdentity.thumbprint
console.log(`tenant-enclave session benchmark: Node ${process.version}, ${backendLabel()}, client in this process (fetch + Web Crypto)\n`)

// Warm up both paths (isolates, connections, JIT).
const warm = await openSession({ baseUrl: bench.url, token, pinnedThumbprint })
for (let i = 0; i < 50; i++) await warm.execute('return 1 + 1')

const handshakes: number[] = []
for (let i = 0; i < HANDSHAKES; i++) {
  const t0 = performance.now()
  await openSession({ baseUrl: bench.url, token, pinnedThumbprint })
  handshakes.push(performance.now() - t0)
}
handshakes.sort((a, b) => a - b)
console.log(`handshake (GET /.well-known/enclave-session.json + POST /api/sessions + verify + derive), ${HANDSHAKES} sequential: p50 ${fmt(percentile(handshakes, 50))} ms, p99 ${fmt(percentile(handshakes, 99))} ms\n`)

const body = JSON.stringify({ code: 'return 1 + 1' })
const plain = async (): Promise<void> => {
  const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers, body })
  if (res.status !== 200) throw new Error(`plain execute answered ${res.status}`)
  await res.json()
}
const session = await openSession({ baseUrl: bench.url, token, pinnedThumbprint })
const encrypted = async (): Promise<void> => {
  const result = await session.execute('return 1 + 1')
  if (result.value !== 2) throw new Error('encrypted execute returned the wrong value')
}

// Alternating rounds, so drift on a shared machine falls on both alike.
const per = SECONDS / ROUNDS
const samples = { plain: [] as Array<{ opsPerSec: number, p50: number, p99: number }>, encrypted: [] as Array<{ opsPerSec: number, p50: number, p99: number }> }
for (let round = 0; round < ROUNDS; round++) {
  samples.plain.push(await closedLoop(1, per, plain))
  samples.encrypted.push(await closedLoop(1, per, encrypted))
}
const mean = (list: Array<{ opsPerSec: number, p50: number, p99: number }>, key: 'opsPerSec' | 'p50' | 'p99'): number => list.reduce((n, s) => n + s[key], 0) / list.length
console.log('trivial execute, 1 in flight   req/s   p50 ms  p99 ms')
for (const name of ['plain', 'encrypted'] as const) {
  console.log(`${name.padEnd(30)} ${fmt(mean(samples[name], 'opsPerSec'), 0).padStart(5)}  ${fmt(mean(samples[name], 'p50')).padStart(7)}  ${fmt(mean(samples[name], 'p99')).padStart(6)}`)
}
const ratio = mean(samples.encrypted, 'p50') / mean(samples.plain, 'p50')
const throughput = mean(samples.plain, 'opsPerSec') / mean(samples.encrypted, 'opsPerSec')
console.log(`\nencrypted / plain: p50 ${fmt(ratio)}×, time per request (1 / throughput) ${fmt(throughput)}× — ${ratio <= 1.2 ? 'meets' : 'MISSES'} the 1.2× target`)

const streamedCode = 'console.log("a"); console.log("b"); return 3'
const streamBody = JSON.stringify({ code: streamedCode })
const plainStream = async (): Promise<void> => {
  const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers: { ...headers, accept: 'application/x-ndjson' }, body: streamBody })
  const lines = (await res.text()).split('\n').filter((l) => l !== '')
  if (res.status !== 200 || lines.length !== 4) throw new Error(`plain stream answered ${res.status} with ${lines.length} events`)
}
const encryptedStream = async (): Promise<void> => {
  const events: string[] = []
  for await (const event of session.stream(streamedCode)) events.push(event.type)
  if (events.length !== 4) throw new Error(`encrypted stream gave ${events.join(', ')}`)
}
for (let i = 0; i < 20; i++) { await plainStream(); await encryptedStream() }
const streams = { plain: [] as typeof samples.plain, encrypted: [] as typeof samples.plain }
for (let round = 0; round < ROUNDS; round++) {
  streams.plain.push(await closedLoop(1, per, plainStream))
  streams.encrypted.push(await closedLoop(1, per, encryptedStream))
}
console.log('\nstreamed run (4 events), 1 in flight   req/s   p50 ms  p99 ms')
for (const name of ['plain', 'encrypted'] as const) {
  console.log(`${name.padEnd(37)} ${fmt(mean(streams[name], 'opsPerSec'), 0).padStart(5)}  ${fmt(mean(streams[name], 'p50')).padStart(7)}  ${fmt(mean(streams[name], 'p99')).padStart(6)}`)
}
console.log(`\nencrypted / plain stream: p50 ${fmt(mean(streams.encrypted, 'p50') / mean(streams.plain, 'p50'))}×, time per run ${fmt(mean(streams.plain, 'opsPerSec') / mean(streams.encrypted, 'opsPerSec'))}×`)
await bench.fastify.close()
