// The check floods of issue 28, rows of `npm run bench:hostile`: a bystander's trivial run, alone
// and beside an enterprise tenant (4 checks in flight, the most a tier allows) sending pre-flight
// checks back to back from 8 connections: POST /api/execute/check, and check_script over /mcp.
// Two sizes: 15 KB scripts (parsed on the event loop until checks got their own thread), and the
// largest TypeScript the tier may check (250 KB).
import { closedLoop, withLoopDelay, type BenchApp } from './support.ts'

type Execute = (headers: Record<string, string>, code: string, timeoutMs?: number) => Promise<number>
/** The bystander's latency, and the event loop's delay (p99) while it was measured. */
interface Latency { p50: number, p99: number, loopP99: number }
export interface CheckFloodRow { name: string, beside: Latency, checks: number, refused: number }
// (A check stopped at its tier's time bound, 422 CHECK_TIMEOUT, counts as answered: it ran.)

const CONNECTIONS = 8

/** About `bytes` of typed code (functions with annotations): parsed, stripped and walked in full. */
function typedScript (bytes: number): string {
  const parts = ['interface Line { sku: string, qty: number, price: number }']
  for (let i = 0; parts.join('\n').length < bytes; i++) {
    parts.push(`function total${i} (lines: Line[], factor: number = ${i + 1}): number {\n  return lines.reduce((sum: number, l: Line) => sum + l.qty * l.price * factor, 0) as number\n}`)
  }
  parts.push('return total0([{ sku: "a", qty: 2, price: 3 }])')
  return parts.join('\n')
}

export async function checkFloods (bench: BenchApp, execute: Execute, seconds: number): Promise<{ alone: Latency, rows: CheckFloodRow[] }> {
  const bystander = await bench.tenant('bench-check-bystander', {}, 'starter')
  const measure = async (): Promise<Latency> => {
    const { result, p99 } = await withLoopDelay(async () => await closedLoop(1, seconds, async () => {
      const status = await execute(bystander, 'return 1 + 1')
      if (status !== 200) throw new Error(`the bystander got HTTP ${status}`)
    }))
    return { p50: result.p50, p99: result.p99, loopP99: p99 }
  }
  await closedLoop(1, 1, async () => { await execute(bystander, 'return 1 + 1') }) // warm up
  // The check thread loads its TypeScript stripper and parser once (over a second of CPU): a
  // service that has been up has done so, and that one-time start is not what a row measures.
  const warm = await fetch(`${bench.url}/api/execute/check`, { method: 'POST', headers: bystander, body: JSON.stringify({ code: typedScript(15_000), language: 'typescript' }) })
  if (warm.status !== 200) throw new Error(`the warm-up check got HTTP ${warm.status}`)
  const alone = await measure()
  // A tenant per flood: what one flood's checks owe must not hold back the next row's.
  const attackers = await Promise.all([0, 1, 2].map(async (i) => await bench.tenant(`bench-check-flooder-${i}`, { maxConcurrentExecutions: 8 }, 'enterprise')))
  const [first, second, third] = attackers as [Record<string, string>, Record<string, string>, Record<string, string>]
  const mcpHeaders = { ...third, accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }
  const small = typedScript(15_000)
  const large = typedScript(240_000)
  const floods: Array<{ name: string, path: string, headers: Record<string, string>, body: string }> = [
    { name: 'check flood: /api/execute/check, 15 KB TS', path: '/api/execute/check', headers: first, body: JSON.stringify({ code: small, language: 'typescript' }) },
    { name: 'check flood: /api/execute/check, 240 KB TS', path: '/api/execute/check', headers: second, body: JSON.stringify({ code: large, language: 'typescript' }) },
    { name: 'check flood: MCP check_script, 15 KB TS', path: '/mcp', headers: mcpHeaders, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'check_script', arguments: { code: small, language: 'typescript' } } }) }
  ]
  const rows: CheckFloodRow[] = []
  for (const flood of floods) {
    const phase = { stop: false }
    let checks = 0
    let refused = 0
    const running = Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (!phase.stop) {
        const res = await fetch(`${bench.url}${flood.path}`, { method: 'POST', headers: flood.headers, body: flood.body })
        const text = await res.text()
        const after = /CHECK_TIME_EXCEEDED/.test(text) ? Number(res.headers.get('retry-after') ?? 1) : 0
        if (res.status === 429 || /CHECK_(LIMIT|TIME)_EXCEEDED/.test(text)) refused++
        else if (res.status === 200 || (res.status === 422 && text.includes('CHECK_TIMEOUT'))) checks++
        else throw new Error(`${flood.name}: HTTP ${res.status} ${text.slice(0, 200)}`)
        // Past its check time the client waits as told: in service, the per-minute request rate
        // (lifted in this benchmark so the bystander can measure) would otherwise hold it back,
        // and a flood of refused requests is that limit's business, not the checks'. Refused for
        // checks in flight, it retries at once.
        if (after > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(after * 1000, 60_000)))
      }
    }))
    await new Promise((resolve) => setTimeout(resolve, 500))
    const beside = await measure()
    phase.stop = true
    await running
    rows.push({ name: flood.name, beside, checks, refused })
  }
  return { alone, rows }
}
