// Cross-slot safety: on a Redis Cluster a script (or MULTI) whose keys hash to different slots
// fails with CROSSSLOT. Every script the service defines is in the table below with the keys its
// callers really pass (built by the service's own key builders, or recorded from the call), and
// each row's keys must share one slot. A script added without a row fails the completeness check.
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { QueueKeys } from 'bullmq'
import { admitExecution, admitSubmission } from '../../services/quotas/admission.ts'
import { concurrencyKey, cpuMsKey, executionsKey, queuedKey, toolCallsKey, toolWindowKey, userCpuMsKey, userExecutionsKey, userToolCallsKey, waitingKey } from '../../services/quotas/counter-keys.ts'
import { DUE_KEY, eventKeys, endKey, idempotencyKey, recordKey, unstoredKey } from '../../services/executions/execution-keys.ts'
import { BULLMQ_PREFIX } from '../../services/executions/bullmq-queue.ts'
import { QUEUE_FACTOR } from '../../services/executions/execution-submission.ts'
import { newExecutionId } from '../../services/executions/execution-request.ts'
import { quotasFor } from '../../services/tenants/tiers.ts'
import { utcDayWindow, type LimitStore } from '../../services/store/index.ts'
import { isClusterUrl, openRedis } from '../../services/store/redis-connection.ts'
import { hashedPart, keySlot } from '../support/key-slot.ts'

const ROOT = join(import.meta.dirname, '..', '..')
// Tenant ids as the API accepts them, a brace included: a tenant's tag must hold whatever its id.
const TENANTS = ['acme', 'tenant-42', '0b6f8c2e-1d7a-4c9b-9a51-3e2f6d8c7b10', 'odd}id{x']
const EXECUTIONS = [newExecutionId(), newExecutionId()]

/** The keys `admit` is called with by each admission path (recorded from the real call). */
async function admitKeys (admitWith: (store: LimitStore) => Promise<unknown>): Promise<string[]> {
  let keys: string[] = []
  const recording = {
    kind: 'redis',
    async admit (lease: { key: string }, counters: Array<{ key: string }>) {
      keys = [lease.key, ...counters.map((c) => c.key)]
      return { outcome: 'admitted', count: 1, resetAt: 0 }
    }
  } as unknown as LimitStore
  await admitWith(recording)
  return keys
}

/** script (as defined with defineCommand, or MULTI) → every key list its callers pass it. */
async function scriptTable (): Promise<Record<string, string[][]>> {
  const day = utcDayWindow().dayKey
  const quotas = quotasFor('starter')
  // With every per-user limit set, admission takes the user's counters too (a user id may hold braces).
  const perUser = { executionsPerDay: 5, toolCallsPerDay: 5, cpuSecondsPerDay: 5 }
  const perTenant = async (tenantId: string): Promise<{ admit: string[][], takeAll: string[][], single: string[][] }> => ({
    admit: [
      await admitKeys(async (store) => await admitExecution(store, { tenantId, userId: 'u', quotas }, EXECUTIONS[0] as string, 1000)),
      await admitKeys(async (store) => await admitExecution(store, { tenantId, userId: 'odd{user}', quotas, perUser }, EXECUTIONS[0] as string, 1000)),
      await admitKeys(async (store) => await admitSubmission(store, { tenantId, userId: 'u}{', quotas, perUser }, EXECUTIONS[0] as string, { key: queuedKey(tenantId), bound: QUEUE_FACTOR, leaseMs: 1000 }))
    ],
    takeAll: [[toolCallsKey(tenantId, day)], [toolCallsKey(tenantId, day), userToolCallsKey(tenantId, 'odd{user}', day)]],
    single: [[executionsKey(tenantId, day)], [toolCallsKey(tenantId, day)], [toolWindowKey(tenantId, 'http:get', 0)], [concurrencyKey(tenantId)], [queuedKey(tenantId)], [waitingKey(tenantId)],
      [cpuMsKey(tenantId, day)], [userCpuMsKey(tenantId, 'odd{user}', day)], [userExecutionsKey(tenantId, 'odd{user}', day)], [userToolCallsKey(tenantId, 'odd{user}', day)]]
  })
  const tenants = await Promise.all(TENANTS.map(perTenant))
  const single = [...tenants.flatMap((x) => x.single), ...EXECUTIONS.map((id) => [endKey(id)]), ['tenant-enclave:rate:ip:127.0.0.1'], ['tenant-enclave:auth-failures:127.0.0.1:0']]
  const bull = new QueueKeys(BULLMQ_PREFIX).getKeys('executions')
  return {
    limitStoreAdmit: tenants.flatMap((x) => x.admit),
    limitStoreConsume: single,
    limitStoreConsumeUpTo: single,
    limitStoreConsumeUpToAll: tenants.flatMap((x) => x.takeAll),
    limitStoreRefund: single,
    limitStoreAcquireLease: single,
    limitStoreCountLeases: single,
    executionEventAppend: EXECUTIONS.map((id) => { const k = eventKeys(id); return [k.stream, k.counter, k.owner, k.appends] }),
    // A queued run's record: each script takes one key (the record, the due set, an idempotency key).
    executionRecordCreate: EXECUTIONS.map((id) => [recordKey(id)]),
    executionRecordRestore: EXECUTIONS.map((id) => [recordKey(id)]),
    executionRecordMove: EXECUTIONS.map((id) => [recordKey(id)]),
    executionRecordsTakeDue: [[DUE_KEY]],
    executionRecordReleaseKey: TENANTS.map((tenantId) => [idempotencyKey(tenantId, 'order-{7}')]),
    enclaveSessionAccept: [['tenant-enclave:session:s1']],
    enclaveSessionReserve: [['tenant-enclave:session:s1']],
    // BullMQ's own scripts take any number of one queue's keys: all of them together.
    bullmq: [Object.values(bull)]
  }
}

async function sourceFiles (dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...await sourceFiles(path))
    else if (entry.name.endsWith('.ts')) found.push(path)
  }
  return found
}

t.test('every script the service defines has a row in the table', async (t) => {
  const table = await scriptTable()
  const defined: string[] = []
  for (const dir of ['services', 'plugins', 'routes']) {
    for (const file of await sourceFiles(dir)) {
      const text = await readFile(join(ROOT, file), 'utf8')
      for (const match of text.matchAll(/defineCommand\('([A-Za-z0-9]+)'/g)) defined.push(match[1] as string)
      if (file.startsWith(join('services', 'enclave'))) {
        // The enclave's `eval` is isolated-vm's (a script into an isolate): it holds no Redis client.
        t.notMatch(text, /from '(ioredis|[./]*store\/[^']*)'/, `${file} (the enclave) has no Redis client`)
        continue
      }
      // A script sent directly, or a multi-key command, would need a row (and a slot rule) too.
      t.notMatch(text, /\.(eval|evalsha|mget|mset|sunion|sinter|rename)\(/, `${file} sends no unlisted multi-key command`)
    }
  }
  t.ok(defined.length >= 9, 'found the defined scripts')
  for (const name of defined) t.ok(table[name] !== undefined, `${name} has a row`)
})

t.test("each script's keys hash to one slot", async (t) => {
  for (const [script, calls] of Object.entries(await scriptTable())) {
    for (const keys of calls) {
      t.ok(keys.length > 0, `${script}: keys recorded`)
      const slots = new Set(keys.map(keySlot))
      t.equal(slots.size, 1, `${script}: ${keys.join(', ')} in one slot (${[...slots].join(', ')})`)
    }
  }
})

t.test("a tenant's keys carry the tenant's tag, an execution's keys the execution's", async (t) => {
  const day = utcDayWindow().dayKey
  for (const tenantId of ['acme', 'tenant-42']) {
    for (const key of [executionsKey(tenantId, day), toolCallsKey(tenantId, day), concurrencyKey(tenantId), toolWindowKey(tenantId, 'x', 0), queuedKey(tenantId), waitingKey(tenantId),
      cpuMsKey(tenantId, day), userExecutionsKey(tenantId, 'u{1}', day), userToolCallsKey(tenantId, 'u{1}', day), userCpuMsKey(tenantId, 'u{1}', day),
      unstoredKey(tenantId), idempotencyKey(tenantId, '{k}')]) {
      t.equal(hashedPart(key), `t:${tenantId}`, key)
    }
  }
  const id = EXECUTIONS[0] as string
  for (const key of [...Object.values(eventKeys(id)), endKey(id), recordKey(id)]) t.equal(hashedPart(key), id, key)
  // Two tenants' keys are not pinned to one slot: the cluster spreads tenants over its nodes.
  t.not(keySlot(concurrencyKey('acme')), keySlot(concurrencyKey('tenant-42')))
})

t.test('the slot function is the cluster specification\'s', async (t) => {
  // The specification's example values.
  t.equal(keySlot('123456789'), 12739)
  t.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'))
  t.equal(hashedPart('foo{}{bar}'), 'foo{}{bar}', 'an empty tag: the whole key')
  t.equal(hashedPart('foo{{bar}}zap'), '{bar')
  t.equal(hashedPart('foo{bar}{zap}'), 'bar', 'the first tag only')
})

const url = process.env.REDIS_URL
if (url !== undefined && isClusterUrl(url)) {
  t.test('CLUSTER KEYSLOT of a real node agrees for every key in the table', async (t) => {
    const redis = openRedis(url)
    t.teardown(() => { redis.disconnect() })
    for (const calls of Object.values(await scriptTable())) {
      for (const key of calls.flat()) t.equal(Number(await redis.call('CLUSTER', 'KEYSLOT', key)), keySlot(key), key)
    }
  })
}
