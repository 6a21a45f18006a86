// npm run bench:load: the noisy neighbour. A quiet tenant sends trivial executions, one at a
// time, first alone and then while a noisy tenant keeps CPU-bound scripts running at its
// concurrency cap. Prints the quiet tenant's p50/p99 both ways, from the same run.
// Target: p99 with the neighbour <= 2x p99 without.
import { closedLoop, fmt, startBenchApp } from './support.ts'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8)
const NOISY_CAP = 5
const NOISY_SCRIPT = 'const end = Date.now() + 200; let x = 0; while (Date.now() < end) { x++ } return x'

const bench = await startBenchApp()
const quiet = await bench.tenant('bench-quiet', {}, 'starter')
const noisy = await bench.tenant('bench-noisy', { maxConcurrentExecutions: NOISY_CAP }, 'starter')

async function execute (headers: Record<string, string>, code: string): Promise<number> {
  const res = await fetch(`${bench.url}/api/execute`, { method: 'POST', headers, body: JSON.stringify({ code }) })
  await res.arrayBuffer()
  return res.status
}
const quietRun = async (): Promise<void> => {
  const status = await execute(quiet, 'return 1 + 1')
  if (status !== 200) throw new Error(`quiet tenant got ${status}`)
}

await closedLoop(1, 1, quietRun) // warm up
const alone = await closedLoop(1, SECONDS, quietRun)

// An object, not a `let`: the loop below reads what the main flow sets after its await.
const phase = { stop: false }
let noisyRuns = 0
let noisyRefused = 0
const neighbour = Promise.all(Array.from({ length: NOISY_CAP }, async () => {
  while (!phase.stop) {
    const status = await execute(noisy, NOISY_SCRIPT)
    if (status === 200) noisyRuns++
    else noisyRefused++
  }
}))
await new Promise((resolve) => setTimeout(resolve, 1000)) // let the neighbour saturate
const withNeighbour = await closedLoop(1, SECONDS, quietRun)
phase.stop = true
await neighbour

console.log(`noisy-neighbour benchmark: ${SECONDS} s per phase; noisy tenant: ${NOISY_CAP} CPU-bound scripts (200 ms each) in flight`)
console.log('quiet tenant            runs/s   p50 ms   p99 ms')
console.log(`alone                  ${fmt(alone.opsPerSec, 0).padStart(7)}  ${fmt(alone.p50).padStart(7)}  ${fmt(alone.p99).padStart(7)}`)
console.log(`with noisy neighbour   ${fmt(withNeighbour.opsPerSec, 0).padStart(7)}  ${fmt(withNeighbour.p50).padStart(7)}  ${fmt(withNeighbour.p99).padStart(7)}`)
console.log(`noisy tenant: ${noisyRuns} runs completed, ${noisyRefused} refused at its cap`)
const ratio = withNeighbour.p99 / alone.p99
console.log(`\np99 ratio (with / without): ${fmt(ratio)} — target <= 2.00: ${ratio <= 2 ? 'met' : 'MISSED'}`)
await bench.fastify.close()
