// Failover drill: a Redis Cluster of 3 masters with a replica each, queued runs in flight, and the
// master that holds the queue killed (SIGKILL). The cluster promotes its replica; every run then
// ends (succeeded, or failed with a code that says why), none stays queued or running, and new
// runs are taken again; reads refused meanwhile are 503s and stop after the takeover, and a run
// the service lost is not charged. It prints the takeover time and when reads came back. On a
// cluster of its own (it starts six redis-server nodes), so it needs only Debian's redis-server
// and redis-cli: `npm run drill:redis-failover`.
// It prints when every run ended and whether the queue's watchdog recreated the worker: the
// promoted replica may lack the queue's last writes, and a BullMQ worker then sometimes takes none
// of the jobs that show as waiting or delayed again (docs/operations.md, Redis Cluster).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { BULLMQ_PREFIX } from '../../services/executions/bullmq-queue.ts'
import { openRedis } from '../../services/store/redis-connection.ts'
import { keySlot } from '../support/key-slot.ts'

const REDIS_SERVER = '/usr/bin/redis-server'
const REDIS_CLI = '/usr/bin/redis-cli'
const NODES = 6
// The nodes take NODES ports from the first, their cluster bus ports the NODES after them
// (DRILL_REDIS_FIRST_PORT moves the whole range, for a machine where it is taken).
const FIRST_PORT = Number(process.env.DRILL_REDIS_FIRST_PORT ?? 47001)

function cli (port: number, ...args: string[]): string {
  const result = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 30_000 })
  return result.stdout
}

function portsFree (first: number): boolean {
  for (let i = 0; i < NODES; i++) {
    for (const port of [first + i, first + NODES + i]) {
      if (cli(port, 'ping').trim() === 'PONG') return false
      const probe = spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore' })
      if (probe.status === 0) return false
    }
  }
  return true
}

if (!existsSync(REDIS_SERVER) || !existsSync(REDIS_CLI)) throw new Error(`the drill needs ${REDIS_SERVER} and ${REDIS_CLI} (Debian's redis-server)`)

t.test('a master of the queue is killed: its replica takes over, every run in flight ends, none is lost', async (t) => {
  let first = FIRST_PORT
  while (!portsFree(first)) first += 2 * NODES
  const dir = mkdtempSync(join(tmpdir(), 'enclave-failover-'))
  const servers = new Map<number, ChildProcess>()
  t.teardown(() => {
    for (const server of servers.values()) server.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  for (let i = 0; i < NODES; i++) {
    const port = first + i
    servers.set(port, spawn(REDIS_SERVER, ['--bind', '127.0.0.1', '--port', String(port), '--cluster-enabled', 'yes', '--cluster-port', String(port + NODES),
      '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '1500', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }))
  }
  const ports = [...servers.keys()]
  await waitFor(() => ports.every((port) => cli(port, 'ping').trim() === 'PONG'), { timeout: 10_000, interval: 100, message: 'the nodes answer' })
  const created = spawnSync(REDIS_CLI, ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(created.status, 0, 'cluster created')
  const replicasInSync = (): boolean => ports.filter((port) => /role:slave/.test(cli(port, 'info', 'replication'))).every((port) => /master_link_status:up/.test(cli(port, 'info', 'replication')))
  await waitFor(() => /cluster_state:ok/.test(cli(first, 'cluster', 'info')) && replicasInSync(), { timeout: 30_000, interval: 200, message: 'cluster ok, replicas in sync' })

  // The queue's watchdog says when it recreates its worker (a warning): counted and printed.
  const recreations: number[] = []
  const logStream = { write: (line: string) => { if (line.includes('recreating it')) recreations.push(Date.now()) } }
  const app = await buildApp(t, { REDIS_URL: `redis+cluster://${ports.slice(0, 3).map((port) => `127.0.0.1:${port}`).join(',')}`, ENCLAVE_RUNNERS: '1', EXECUTION_LEASE_MS: '3000', LOG_LEVEL: 'warn' }, undefined, logStream)
  const tenant = await createTenant(app, 'failover', { tier: 'starter', quotaOverrides: { maxExecutionDurationMs: 20_000 } })
  const submit = async (code: string): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code, timeoutMs: 20_000 } })
    t.equal(res.statusCode, 202, 'submitted')
    return res.json().executionId as string
  }
  const statusOf = async (id: string): Promise<{ status: string, result?: { success: boolean, error?: { code: string } } }> =>
    (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json()
    // Runs of 2.5 s each, more than the tenant's 5 slots: some run through the kill and the
    // promotion (about 3 s), some wait in the queue on the master that dies.
  const executionsToday = async (): Promise<number> => (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions as number
  const before = await executionsToday()
  const ids: string[] = []
  for (let i = 0; i < 10; i++) ids.push(await submit(`const end = Date.now() + 2500; while (Date.now() < end) {} return ${i}`))
  await waitFor(async () => (await statusOf(ids[0] as string)).status === 'running', { timeout: 15_000, message: 'a run is running' })

  // The master that serves the queue's slot.
  const slot = keySlot(`${BULLMQ_PREFIX}:executions:wait`)
  const admin = openRedis(`redis+cluster://127.0.0.1:${first}`)
  const layout = await admin.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
  admin.disconnect()
  const victim = layout.find(([from, to]) => slot >= from && slot <= to)?.[2][1] as number
  t.ok(servers.has(victim), `the queue's master is ${victim}`)
  // What a client sees from the kill on: a read of a run every 200 ms, each answer kept.
  const answers: Array<{ at: number, status: number, code?: string }> = []
  let killedAt = Date.now()
  const probing = new AbortController()
  const probe = (async () => {
    while (!probing.signal.aborted) {
      const res = await app.inject({ method: 'GET', url: `/api/executions/${ids[0] as string}`, headers: tenant.headers })
      const body = res.json() as { status?: string, code?: string, message?: string }
      answers.push({ at: Date.now() - killedAt, status: res.statusCode, ...(body.status === undefined ? { code: `${body.code ?? '?'} ${body.message ?? ''}` } : {}) })
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  servers.get(victim)?.kill('SIGKILL')
  servers.delete(victim)
  killedAt = Date.now()
  // Promoted: a surviving node's slot map names another master for the queue's slot.
  const survivor = ports.find((port) => port !== victim) as number
  const servedBy = (): number | undefined => {
    const lines = cli(survivor, 'cluster', 'nodes').split('\n')
    const owner = lines.find((line) => line.includes('master') && !line.includes('fail') && line.split(' ').slice(8).some((range) => {
      const [from, to] = range.split('-').map(Number)
      return from !== undefined && slot >= from && slot <= (to ?? from)
    }))
    return owner === undefined ? undefined : Number(/:(\d+)@/.exec(owner)?.[1])
  }
  await waitFor(() => { const port = servedBy(); return port !== undefined && port !== victim && /cluster_state:ok/.test(cli(survivor, 'cluster', 'info')) }, { timeout: 30_000, interval: 100, message: 'a replica took over' })
  t.comment(`the queue's slot is served by ${servedBy() ?? '?'}, ${Date.now() - killedAt} ms after the kill`)

  // Reads are served again once the new master is known: three answers in a row.
  const served = (): boolean => answers.length >= 3 && answers.slice(-3).every((answer) => answer.status === 200)
  const back = await waitFor(served, { timeout: 30_000, interval: 100, message: 'reads are served again' }).catch(() => false)
  probing.abort()
  await probe
  const failures = answers.filter((answer) => answer.status !== 200)
  t.comment(`reads after the kill: ${answers.length} probes, ${failures.length} refused, the last at ${failures.at(-1)?.at ?? '-'} ms${failures.length === 0 ? '' : ` (${[...new Set(failures.map((f) => `${f.status} ${f.code ?? ''}`))].join(' | ')})`}`)
  t.ok(back, 'reads are served again after the takeover')
  for (const failure of failures) t.equal(failure.status, 503, `a read refused meanwhile is a 503 to retry (${failure.code ?? ''})`)

  // Every run ends; a run that could not finish on the old master says so with its code.
  const ended = async (): Promise<boolean> => (await Promise.all(ids.map(statusOf))).every((view) => view.status !== undefined && view.status !== 'queued' && view.status !== 'running')
  t.ok(await waitFor(ended, { timeout: 60_000, interval: 500, message: 'every run ended' }), 'every run ended')
  t.comment(`every run ended ${Date.now() - killedAt} ms after the kill; the worker was recreated ${recreations.length} times${recreations.length === 0 ? '' : ` (at ${recreations.map((at) => at - killedAt).join(', ')} ms)`}`)
  const views = await Promise.all(ids.map(statusOf))
  for (const view of views) {
    if (view.status === 'succeeded') continue
    t.equal(view.status, 'failed', 'not succeeded: failed, with its reason')
    t.ok(view.result?.error?.code, `a failed run says why (${view.result?.error?.code ?? 'no code'}: ${(view.result?.error as { message?: string } | undefined)?.message ?? ''})`)
  }
  t.ok(views.some((view) => view.status === 'succeeded'), `runs ran (${views.map((view) => view.status).join(', ')})`)
  // A run the service lost is not charged: today's count holds the runs that ended otherwise.
  const lost = views.filter((view) => view.status === 'failed' && view.result?.error?.code === 'INTERNAL_ERROR').length
  t.equal(await executionsToday() - before, ids.length - lost, `today's executions count the ${ids.length - lost} runs that were not lost`)

  // The service goes on: a new run is taken and finishes on the promoted master.
  const after = await waitFor(async () => {
    const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: 'return 42' } })
    return res.statusCode === 202 ? res.json().executionId as string : false
  }, { timeout: 20_000, interval: 500, message: 'submissions are taken again' })
  t.ok(after, 'a submission is taken after the failover')
  t.ok(await waitFor(async () => (await statusOf(after as string)).status === 'succeeded', { timeout: 30_000, interval: 250, message: 'the new run succeeds' }), 'and runs')
})
