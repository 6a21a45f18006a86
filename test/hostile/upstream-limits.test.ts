import t from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { HttpToolError, HttpToolRunner, type HttpToolRunnerOptions } from '../../services/tools/http-tool-runner.ts'
import { createToolSigner } from '../../services/tools/tool-signer.ts'
import { UpstreamAdmission } from '../../services/tools/upstream-admission.ts'
import type { HttpToolSpec, ToolDefinition } from '../../services/tools/tool-definition.ts'
import type { Tier } from '../../services/tenants/tiers.ts'
import { adminHeaders, buildApp, createTenant } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'

// Issue 28: a tenant flooding a slow endpoint must not take the upstream's connections from the
// others (finding 5), and no form of a metadata, loopback or private address may be reached
// through a hostname or an unlisted literal (the LOW finding). Order and counts are asserted,
// never durations: the machine is shared.

const METADATA = (a: string): string => `refused address ${a} (link-local or cloud metadata)`
const PRIVATE = (a: string): string => `refused address ${a} (loopback, private or reserved: a hostname must resolve to a public address)`

function tool (url: string, extra: Partial<HttpToolSpec> = {}): ToolDefinition & { http: HttpToolSpec } {
  return { name: 'u:test', description: 'test', argsSchema: {} as never, http: { method: 'GET', url, timeoutMs: 10_000, maxResponseKB: 64, ...extra }, run: async () => null }
}
const call = (tenantId: string, callIndex = 0): { tenantId: string, userId: string, executionId: string, callIndex: number, args: unknown } => ({ tenantId, userId: 'u', executionId: `e-${tenantId}`, callIndex, args: {} })

/** An upstream whose /slow answers only when the test says so, and whose /fast answers at once. */
async function startHeldUpstream (): Promise<{ origin: string, port: number, arrived: string[], held: () => number, releaseOne: () => void, close: () => Promise<void> }> {
  const arrived: string[] = []
  const waiting: ServerResponse[] = []
  const server = createServer((req, res) => {
    arrived.push(req.url ?? '')
    if ((req.url ?? '').startsWith('/slow')) { waiting.push(res); return }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    arrived,
    held: () => waiting.length,
    releaseOne: () => { waiting.shift()?.writeHead(200, { 'content-type': 'application/json' }).end('{"slow":true}') },
    close: async () => {
      for (const res of waiting.splice(0)) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => { resolve() }))
    }
  }
}

async function runner (t: { teardown: (fn: () => Promise<void>) => void }, options: Partial<HttpToolRunnerOptions> = {}, tiers: Record<string, Tier> = {}): Promise<HttpToolRunner> {
  const r = new HttpToolRunner({ signer: await createToolSigner('tenant-enclave'), maxResultBytes: 1024 * 1024, tierOf: (id) => tiers[id] ?? 'enterprise', ...options })
  t.teardown(async () => { await r.close() })
  return r
}

t.test('metadata addresses are refused in every form, whatever TOOL_UPSTREAMS lists', async (t) => {
  const forms: Array<[string, string]> = [
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['http://169.254.169.254./latest/meta-data/', '169.254.169.254'],
    ['http://2852039166/', '169.254.169.254'],
    ['http://0xa9.0xfe.0xa9.0xfe/', '169.254.169.254'],
    ['http://0251.0376.0251.0376/', '169.254.169.254'],
    ['http://169.254.43518/', '169.254.169.254'],
    ['http://100.100.100.200/latest/meta-data/', '100.100.100.200'],
    ['http://168.63.129.16/machine', '168.63.129.16'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'fd00:ec2::254'],
    ['http://[fe80::1]/', 'fe80::1'],
    ['http://[::ffff:169.254.169.254]/', '::ffff:a9fe:a9fe'],
    ['http://[::169.254.169.254]/', '::a9fe:a9fe'],
    ['http://[64:ff9b::a9fe:a9fe]/', '64:ff9b::a9fe:a9fe'],
    ['http://[64:ff9b::100.100.100.200]/', '64:ff9b::6464:64c8'],
    ['http://[2002:a9fe:a9fe::]/', '2002:a9fe:a9fe::'],
    ['http://[::ffff:168.63.129.16]/', '::ffff:a83f:8110']
  ]
  const r = await runner(t, { upstreams: forms.map(([url]) => new URL(url).origin) })
  for (const [url, address] of forms) {
    await t.rejects(r.call(tool(url), call('t1')), new HttpToolError(METADATA(address)), url)
  }
})

t.test('an IP literal that is loopback, private or reserved is refused unless TOOL_UPSTREAMS lists it', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const forms: Array<[string, string]> = [
    ['http://127.0.0.2/', '127.0.0.2'], ['http://2130706433/', '127.0.0.1'], ['http://0x7f.1/', '127.0.0.1'],
    ['http://10.0.0.1/', '10.0.0.1'], ['http://172.16.5.4/', '172.16.5.4'], ['http://192.168.1.1/', '192.168.1.1'],
    ['http://100.64.0.1/', '100.64.0.1'], ['http://0.0.0.0/', '0.0.0.0'], ['http://192.0.0.192/', '192.0.0.192'],
    ['http://198.18.0.1/', '198.18.0.1'], ['http://224.0.0.1/', '224.0.0.1'], ['http://255.255.255.255/', '255.255.255.255'],
    ['http://[::1]/', '::1'], ['http://[::]/', '::'], ['http://[fc00::1]/', 'fc00::1'], ['http://[fd12:3456::1]/', 'fd12:3456::1'],
    ['http://[ff02::1]/', 'ff02::1'], ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1'], ['http://[::ffff:10.0.0.1]/', '::ffff:a00:1'],
    ['http://[64:ff9b::7f00:1]/', '64:ff9b::7f00:1'], ['http://[64:ff9b:1::1]/', '64:ff9b:1::1'], ['http://[2002:7f00:1::]/', '2002:7f00:1::']
  ]
  // The listed loopback origin works; every other private literal is refused.
  const r = await runner(t, { upstreams: [upstream.origin] })
  t.same((await r.call(tool(`${upstream.origin}/fast`), call('t1'))).value, { ok: true }, 'the listed http://127.0.0.1:PORT is called')
  for (const [url, address] of forms) {
    await t.rejects(r.call(tool(url), call('t1')), new HttpToolError(PRIVATE(address)), url)
  }
})

t.test('a hostname whose DNS answer is private, loopback or metadata is refused when the socket would connect', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const answers: Record<string, string> = {
    'loopback.test': '127.0.0.1',
    'private.test': '10.1.2.3',
    'v6-loopback.test': '::1',
    'mapped.test': '::ffff:127.0.0.1',
    'ula.test': 'fd00::5',
    'imds6.test': 'fd00:ec2::254',
    'nat64.test': '64:ff9b::a9fe:a9fe',
    'alibaba.test': '100.100.100.200',
    'azure.test': '168.63.129.16',
    'internal.test': '127.0.0.1'
  }
  const r = await runner(t, {
    upstreams: [upstream.origin],
    privateHosts: ['internal.test'],
    dnsCache: { ttlMs: 0 },
    lookup: (hostname, options, callback) => {
      const address = answers[hostname] ?? '192.0.2.1'
      const family = address.includes(':') ? 6 : 4
      if (options.all === true) callback(null, [{ address, family }])
      else callback(null, address, family)
    }
  })
  const metadata = new Set(['fd00:ec2::254', '64:ff9b::a9fe:a9fe', '100.100.100.200', '168.63.129.16'])
  for (const [host, address] of Object.entries(answers)) {
    if (host === 'internal.test') continue
    const expected = metadata.has(address) ? METADATA(address) : PRIVATE(address)
    await t.rejects(r.call(tool(`http://${host}:${upstream.port}/fast`), call('t1')), new HttpToolError(expected), host)
  }
  t.same(upstream.arrived, [], 'no refused answer reached a socket')
  // A host the admin named in TOOL_UPSTREAM_PRIVATE_HOSTS may resolve to loopback.
  t.same((await r.call(tool(`http://internal.test:${upstream.port}/fast`), call('t1'))).value, { ok: true })
})

t.test('a rebinding DNS answer is refused where the socket uses it, even beside a public address', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  let asked = 0
  const r = await runner(t, {
    dnsCache: { ttlMs: 0 },
    // First a public address with loopback behind it (the fallback trick), then loopback alone.
    lookup: (_hostname, options, callback) => {
      const list = asked++ === 0 ? [{ address: '8.8.8.8', family: 4 }, { address: '127.0.0.1', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]
      if (options.all === true) callback(null, list)
      else callback(null, list[0]?.address ?? '', 4)
    }
  })
  await t.rejects(r.call(tool(`http://rebind.test:${upstream.port}/fast`), call('t1')), new HttpToolError(PRIVATE('127.0.0.1')))
  await t.rejects(r.call(tool(`http://rebind.test:${upstream.port}/fast`), call('t1')), new HttpToolError(PRIVATE('127.0.0.1')))
  t.equal(asked, 2, 'each connection attempt resolved, and was checked, once')
  t.same(upstream.arrived, [])
})

t.test('one tenant\'s calls in flight to an origin are capped; another tenant goes straight through', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const r = await runner(t, { caps: { tenantMaxInFlight: 2, connectionsPerOrigin: 16 } }, { flooder: 'starter', bystander: 'enterprise' })
  const slow = tool(`${upstream.origin}/slow`)
  const flood = [0, 1, 2].map((i) => r.call(slow, call('flooder', i)))
  await waitFor(() => upstream.held() === 2, { message: 'two slow calls reached the upstream' })
  t.equal(r.admission.inFlight(`${upstream.origin} tenant:flooder`), 2)
  // The third waits for the flooder's own slot; the bystander's call does not wait at all.
  t.same((await r.call(tool(`${upstream.origin}/fast`), call('bystander'))).value, { ok: true })
  t.same(upstream.arrived, ['/slow', '/slow', '/fast'], 'the bystander was served while the flooder\'s third call waited')
  upstream.releaseOne()
  await waitFor(() => upstream.held() === 2, { message: 'the third slow call was admitted once a slot freed' })
  upstream.releaseOne()
  upstream.releaseOne()
  t.same((await Promise.all(flood)).map((o) => o.value), [{ slow: true }, { slow: true }, { slow: true }])
  t.equal(r.admission.inFlight(`${upstream.origin} tenant:flooder`), 0, 'every slot was given back')
})

t.test('a call that finds no slot within its timeout fails with a message naming the limit', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const r = await runner(t, { caps: { tenantMaxInFlight: 1, connectionsPerOrigin: 4 } }, { a: 'starter', f1: 'free', f2: 'free', e1: 'enterprise', e2: 'enterprise' })
  const slow = tool(`${upstream.origin}/slow`)
  const quick = tool(`${upstream.origin}/fast`, { timeoutMs: 200 })
  const held = [r.call(slow, call('a')), r.call(slow, call('f1'))]
  await waitFor(() => upstream.held() === 2, { message: 'a and f1 hold a slot each' })
  // The tenant's own cap.
  await t.rejects(r.call(quick, call('a', 1)), new HttpToolError(`this tenant already has 1 calls in flight to ${upstream.origin} (TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT) and none ended within this call's 200 ms timeout; make fewer calls to it at once`))
  // The free tier's share: 25 % of 4 connections is 1, held by f1.
  await t.rejects(r.call(quick, call('f2')), new HttpToolError(`the free tier's tenants together have 1 calls in flight to ${upstream.origin} (their share of TOOL_UPSTREAM_CONNECTIONS) and none ended within this call's 200 ms timeout; retry later`))
  // The origin's connections: e1 takes the last two, e2 finds none.
  held.push(r.call(slow, call('e1')))
  const r2 = r.call(slow, call('e1', 1)) // waits on e1's own cap of 1: not a connection
  await waitFor(() => upstream.held() === 3, { message: 'e1 holds a third connection' })
  held.push(r.call(slow, call('e2')))
  await waitFor(() => upstream.held() === 4, { message: 'e2 holds the fourth' })
  await t.rejects(r.call(quick, call('e3')), new HttpToolError(`all 4 connections to ${upstream.origin} are in use (TOOL_UPSTREAM_CONNECTIONS) and none came free within this call's 200 ms timeout; retry later`))
  t.same(upstream.arrived.filter((u) => u === '/fast'), [], 'no refused call reached the upstream')
  for (let i = 0; i < 5; i++) upstream.releaseOne()
  await waitFor(() => upstream.held() === 1, { message: 'e1\'s second call got its slot' })
  upstream.releaseOne()
  await Promise.all([...held, r2])
  t.equal(r.admission.inFlight(upstream.origin), 0)
  t.equal(r.admission.trackedKeys, 0, 'the queues of calls that gave up are gone')
})

t.test('waiting calls are admitted in arrival order, and a call whose run ends leaves no slot taken', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const r = await runner(t, { caps: { tenantMaxInFlight: 1 } })
  const first = r.call(tool(`${upstream.origin}/slow?n=1`), call('a', 1))
  await waitFor(() => upstream.held() === 1, { message: 'the first call holds the slot' })
  const ended = new AbortController()
  const gone = r.call(tool(`${upstream.origin}/slow?n=gone`), { ...call('a', 2), runEnded: ended.signal })
  const rest = [3, 4, 5].map((n) => r.call(tool(`${upstream.origin}/slow?n=${n}`), call('a', n)))
  ended.abort()
  await t.rejects(gone, new HttpToolError('the run ended before the upstream answered'))
  for (let i = 0; i < 4; i++) {
    upstream.releaseOne()
    if (i < 3) await waitFor(() => upstream.held() === 1, { message: `call ${i + 3} admitted` })
  }
  await Promise.all([first, ...rest])
  t.same(upstream.arrived, ['/slow?n=1', '/slow?n=3', '/slow?n=4', '/slow?n=5'], 'in order, and the ended run\'s call never sent')
  t.equal(r.admission.inFlight(`${upstream.origin} tenant:a`), 0)
  t.equal(r.admission.trackedKeys, 0, 'no queue is left behind for an idle tenant, tier or origin')
})

t.test('a call admitted at once holds a slot at every level; a full level leaves none taken', async (t) => {
  const admission = new UpstreamAdmission({ connectionsPerOrigin: 4, tenantMaxInFlight: 2, tierSharePercent: { free: 25, starter: 50, enterprise: 100 } })
  const origin = 'http://upstream.test'
  const a = admission.tryAdmit(origin, 'a', 'free')
  t.ok(a !== undefined, 'every level had a slot')
  t.same([admission.inFlight(`${origin} tenant:a`), admission.inFlight(`${origin} tier:free`), admission.inFlight(origin)], [1, 1, 1])
  // The free tier's share of 4 connections is 1: b's tenant slot is free, its tier's is not.
  t.equal(admission.tryAdmit(origin, 'b', 'free'), undefined, 'the tier is full')
  t.equal(admission.inFlight(`${origin} tenant:b`), 0, 'b\'s tenant slot was given back')
  // A waiter queued in `admit` is never passed by a call admitted at once.
  const waiting = admission.admit(origin, 'b', 'free', new AbortController().signal, 10_000)
  await new Promise((resolve) => setImmediate(resolve)) // b holds its tenant slot and waits on the tier's
  t.same([admission.inFlight(`${origin} tenant:b`), admission.inFlight(`${origin} tier:free`)], [1, 1])
  a?.()
  a?.() // a second call releases nothing
  t.equal(admission.tryAdmit(origin, 'c', 'free'), undefined, 'the freed slot is b\'s')
  const b = await waiting
  t.same([admission.inFlight(`${origin} tenant:b`), admission.inFlight(`${origin} tier:free`), admission.inFlight(origin)], [1, 1, 1])
  b()
  t.equal(admission.trackedKeys, 0, 'nothing is kept for idle keys')
})

t.test('through the service: the limit is a catchable TOOL_ERROR the script can read', async (t) => {
  const upstream = await startHeldUpstream()
  t.teardown(upstream.close)
  const app = await buildApp(t, { TOOL_UPSTREAMS: upstream.origin, TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT: '1' })
  const define = async (name: string, path: string, timeoutMs: number): Promise<void> => {
    const res = await app.inject({ method: 'PUT', url: `/admin/tools/${name}`, headers: adminHeaders(), payload: { description: name, argsSchema: { type: 'object' }, http: { method: 'GET', url: `${upstream.origin}${path}`, timeoutMs }, defaultEnabled: true } })
    if (res.statusCode !== 200) throw new Error(`could not define ${name}: ${res.body}`)
  }
  await define('u:hold', '/slow', 20_000)
  await define('u:quick', '/fast', 300)
  const tenant = await createTenant(app, 'upstream-cap', { permissions: ['tool:u:hold', 'tool:u:quick'], tier: 'starter' })
  const running = tenant.execute(`
    const hold = callTool('u:hold', {}).then((v) => v, (e) => e.code)
    let quick
    try { quick = await callTool('u:quick', {}) } catch (e) { quick = e.code + ': ' + e.message }
    return { quick, hold: await hold }
  `)
  await waitFor(() => upstream.held() === 1, { message: 'the slow call holds the tenant\'s one slot' })
  // The slow call is let go only once the quick one has failed on the cap (the metrics say so).
  await waitFor(async () => (await app.inject({ method: 'GET', url: '/metrics' })).body.includes('tenant_enclave_tool_calls_total{tool="u:quick",outcome="TOOL_ERROR"} 1'), { timeout: 20_000, message: 'the quick call failed' })
  upstream.releaseOne()
  const res = await running
  t.same(res.json().value, {
    quick: `TOOL_ERROR: Tool u:quick failed: this tenant already has 1 calls in flight to ${upstream.origin} (TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT) and none ended within this call's 300 ms timeout; make fewer calls to it at once`,
    hold: { slow: true }
  })
})
