// Profiling aid (not a benchmark): the app as bench:http starts it, under one autocannon client
// for BENCH_SECONDS; run with `node --cpu-prof --cpu-prof-dir=<dir> bench/profile-http.ts [--real]`.
import { autocannon, startBenchApp } from './support.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 1)
const PATH = process.env.BENCH_PATH ?? '/api/execute'
const CODE = process.env.BENCH_CODE ?? 'return 1 + 1'
const bench = await startBenchApp()
const headers = await bench.tenant(`bench-profile-${Date.now().toString(36)}`, { maxConcurrentExecutions: 1000 })
await autocannon({ url: bench.url + PATH, headers, body: JSON.stringify({ code: CODE }), connections: CONNECTIONS, duration: 2 })
const result = await autocannon({ url: bench.url + PATH, headers, body: JSON.stringify({ code: CODE }), connections: CONNECTIONS, duration: SECONDS })
console.log(`${(result.requests.total / result.duration).toFixed(0)} req/s, p50 ${result.latency.p50} ms, non-2xx ${result.non2xx}`)
await bench.fastify.close()
