// What keeps an HTTP tool call cheap without weakening it: DNS answers cached inside the
// address guard, URL templates parsed once; and what is never cached: the signed assertion,
// fresh per call. Time is a fake clock where it matters.
import t from 'tap'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { decodeJwt, importJWK, jwtVerify } from 'jose'
import { buildRequest, HttpToolRunner } from '../../services/tools/http-tool-runner.ts'
import { guardedLookup } from '../../services/tools/upstream-address-guard.ts'
import { createToolSigner, type AssertionClaims } from '../../services/tools/tool-signer.ts'
import type { HttpToolSpec, ToolDefinition } from '../../services/tools/tool-definition.ts'
import { startUpstream } from './fixtures/upstream.ts'

type Answer = string | LookupAddress[]
type Resolver = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: Answer, family?: number) => void) => void

/** Calls a lookup like net.connect does and returns its outcome. */
async function lookUp (lookup: Resolver, hostname: string, options: LookupOptions = { all: true }): Promise<{ error: string | null, address: Answer }> {
  return await new Promise((resolve) => {
    lookup(hostname, options, (err, address) => { resolve({ error: err === null ? null : `${String(err.code)}: ${err.message}`, address }) })
  })
}

t.test('DNS answers: reused for their TTL, checked on every use, resolved and checked again after', async (t) => {
  let now = 1_000_000
  const asked: string[] = []
  // A rebinding DNS: the first answer for rebind.test is harmless, every later one is metadata.
  const answers: Record<string, LookupAddress[][]> = {
    'rebind.test': [[{ address: '93.184.215.14', family: 4 }], [{ address: '169.254.169.254', family: 4 }]],
    'metadata.test': [[{ address: '169.254.169.254', family: 4 }]]
  }
  let failNext = true
  const resolver: Resolver = (hostname, options, callback) => {
    asked.push(hostname)
    if (hostname === 'flaky.test' && failNext) {
      failNext = false
      callback(Object.assign(new Error('getaddrinfo EAI_AGAIN flaky.test'), { code: 'EAI_AGAIN' }), '')
      return
    }
    const list = answers[hostname] ?? [[{ address: '93.184.215.15', family: 4 }]]
    const answer = list.length > 1 ? list.shift() as LookupAddress[] : list[0] as LookupAddress[]
    if (options.all === true) callback(null, answer)
    else callback(null, answer[0]?.address ?? '', answer[0]?.family)
  }
  const lookup = guardedLookup(resolver, { ttlMs: 30_000, now: () => now })

  t.same(await lookUp(lookup, 'rebind.test'), { error: null, address: [{ address: '93.184.215.14', family: 4 }] })
  now += 29_999
  t.same(await lookUp(lookup, 'rebind.test'), { error: null, address: [{ address: '93.184.215.14', family: 4 }] }, 'within the TTL: the cached answer')
  t.same(asked, ['rebind.test'], 'and the resolver was asked once')
  now += 1
  t.same(await lookUp(lookup, 'rebind.test'), { error: 'EREFUSEDADDRESS: refused address 169.254.169.254 (link-local or cloud metadata)', address: '' }, 'expired: resolved again, and the new answer is checked')
  t.same(asked, ['rebind.test', 'rebind.test'])

  // A link-local answer, once cached, is refused on every use, not only the first.
  for (let i = 0; i < 3; i++) t.match(await lookUp(lookup, 'metadata.test'), { error: /^EREFUSEDADDRESS: refused address 169\.254\.169\.254/ })
  t.equal(asked.filter((h) => h === 'metadata.test').length, 1)

  // A failure is not cached: the next connection asks again.
  t.match(await lookUp(lookup, 'flaky.test'), { error: /^EAI_AGAIN/ })
  t.same(await lookUp(lookup, 'flaky.test'), { error: null, address: [{ address: '93.184.215.15', family: 4 }] })
  t.equal(asked.filter((h) => h === 'flaky.test').length, 2)

  // One address and all addresses are different answers, cached apart.
  t.same(await lookUp(lookup, 'flaky.test', { family: 4 }), { error: null, address: '93.184.215.15' })
  t.equal(asked.filter((h) => h === 'flaky.test').length, 3)
})

t.test('the DNS cache is bounded: past maxEntries the oldest answer goes', async (t) => {
  const asked: string[] = []
  const lookup = guardedLookup((hostname, _options, callback) => { asked.push(hostname); callback(null, [{ address: '127.0.0.1', family: 4 }]) }, { maxEntries: 2, now: () => 0 })
  for (const host of ['a.test', 'b.test', 'c.test', 'c.test', 'b.test', 'a.test']) await lookUp(lookup, host)
  t.same(asked, ['a.test', 'b.test', 'c.test', 'a.test'])
})

function tool (name: string, url: string): ToolDefinition & { http: HttpToolSpec } {
  return { name, description: 'test', argsSchema: {} as never, http: { method: 'GET', url, timeoutMs: 5000, maxResponseKB: 64 }, run: async () => null }
}

t.test('kept-alive connections are reused: a name is looked up only when the pool opens a connection', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const port = new URL(upstream.origin).port
  const lookups: string[] = []
  const runner = new HttpToolRunner({
    signer: await createToolSigner('tenant-enclave'),
    maxResultBytes: 1024 * 1024,
    // No DNS cache here, so every lookup the sockets make reaches this resolver.
    dnsCache: { ttlMs: 0 },
    // api.test stands for an internal upstream: its loopback answer is allowed by name.
    privateHosts: ['api.test'],
    lookup: (hostname, options, callback) => {
      lookups.push(hostname)
      if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 }])
      else callback(null, '127.0.0.1', 4)
    }
  })
  t.teardown(async () => { await runner.close() })
  const connectionsBefore = upstream.connections()
  const users = tool('k:user', `http://api.test:${port}/users/{id}`)
  for (let i = 0; i < 20; i++) {
    const outcome = await runner.call(users, { tenantId: 't1', userId: 'u1', executionId: 'e1', callIndex: i, args: { id: `u${i}` } })
    t.same(outcome.value, { id: `u${i}`, name: 'Ada' })
  }
  const opened = upstream.connections() - connectionsBefore
  // undici's pool hands a connection out again only once it has signalled it is free, a tick
  // after the body ended, so a caller that calls again at once may get a second connection;
  // from then on the two are reused in turn.
  t.ok(opened >= 1 && opened <= 2, `20 sequential calls over ${opened} kept-alive connection(s)`)
  t.same(lookups, Array.from({ length: opened }, () => 'api.test'), 'one lookup per connection opened, none per call')
})

const claims: AssertionClaims = { audience: 'https://crm.example', userId: 'alice', tenantId: 'acme', executionId: 'exec-1', tool: 'crm:get' }

t.test('each assertion is a valid ES256 token with its own claims and a full minute of life', async (t) => {
  const signer = await createToolSigner('tenant-enclave')
  const key = await importJWK(signer.publicJwk, 'ES256')
  const now = Date.now()
  const variants: AssertionClaims[] = [claims, { ...claims, tenantId: 'globex' }, { ...claims, userId: 'bob' }, { ...claims, tool: 'crm:delete' }]
  const jtis = new Set<unknown>()
  for (const c of variants) {
    // In place, and on the thread pool (remote MCP calls): the same token but for its jti.
    for (const { token, expiresAtMs } of [signer.sign(c, now), await signer.signLater(c, now)]) {
      const { payload } = await jwtVerify(token, key, { issuer: 'tenant-enclave', audience: c.audience, currentDate: new Date(now) })
      t.match(payload, { tenantId: c.tenantId, sub: c.userId, executionId: c.executionId, tool: c.tool, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 60 })
      t.equal(expiresAtMs, (payload.exp ?? 0) * 1000)
      jtis.add(payload.jti)
    }
  }
  t.equal(jtis.size, variants.length * 2, 'each token has its own jti')
})

t.test('over the wire: every call carries a fresh assertion (its own jti) and its own idempotency key', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const runner = new HttpToolRunner({ signer: await createToolSigner('tenant-enclave'), maxResultBytes: 1024 * 1024 })
  t.teardown(async () => { await runner.close() })
  const users = tool('w:user', `${upstream.origin}/users/{id}`)
  const call = async (tenantId: string, callIndex: number): Promise<{ authorization: string, key: string }> => {
    const before = upstream.seen.length
    await runner.call(users, { tenantId, userId: 'u1', executionId: 'exec-w', callIndex, args: { id: String(callIndex) } })
    const request = upstream.seen[before]
    return { authorization: String(request?.headers.authorization), key: String(request?.headers['idempotency-key']) }
  }
  const calls = [await call('acme', 0), await call('acme', 1), await call('acme', 2)]
  const jtis = calls.map((c) => decodeJwt(c.authorization.slice('Bearer '.length)).jti)
  t.equal(new Set(jtis).size, 3, 'three calls of one tool in one run: three jtis, so an upstream can refuse a replay')
  t.same(calls.map((c) => c.key), ['exec-w:0', 'exec-w:1', 'exec-w:2'], 'and one idempotency key per call')
  const other = await call('globex', 3)
  t.equal(decodeJwt(other.authorization.slice(7)).tenantId, 'globex', 'another tenant\'s call carries its own tenant')
})

/** The request as built before templates were compiled: fill the string, then parse it whole. */
function reference (spec: HttpToolSpec, args: Record<string, unknown>): { origin: string, path: string, body: string | undefined } {
  const used = new Set<string>()
  const filled = spec.url.replace(/\{([A-Za-z0-9_.-]+)\}/g, (_, name: string) => {
    used.add(name)
    return encodeURIComponent(String(args[name])).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  })
  const url = new URL(filled)
  const rest = Object.entries(args).filter(([key, value]) => !used.has(key) && value !== undefined)
  for (const [key, value] of rest) {
    if (spec.method !== 'GET') break
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(key, item !== null && typeof item === 'object' ? JSON.stringify(item) : String(item))
  }
  return { origin: url.origin, path: url.pathname + url.search, body: spec.method === 'GET' ? undefined : JSON.stringify(Object.fromEntries(rest)) }
}

t.test('a URL template parsed once builds exactly the request that parsing each filled URL built', async (t) => {
  const templates = [
    'http://api.test/users/{id}',
    'http://api.test:8080/a/{x}/b/{y}.json',
    'http://api.test/{x}/{x}',
    'http://api.test/ü €/{x}',
    'http://api.test/a/{x}/../b',
    'http://api.test/a/./{x}',
    'http://api.test/literal%7Bx%7D/{x}',
    'http://api.test/search?fixed=a b&q={x}',
    'http://api.test/items/{x}?v=1',
    'http://[::1]:9/v/{x}'
  ]
  const argSets: Array<Record<string, unknown>> = [
    { x: 'plain', y: 7, id: 'u1' },
    { x: 'a/b?c#d@e', y: true, id: '../ü€', extra: 'q r', list: ['1', 2], obj: { k: [1] } },
    { x: "!'()*~-_.", y: '..x', id: '%2e%2e', none: undefined }
  ]
  for (const url of templates) {
    for (const method of ['GET', 'POST'] as const) {
      const spec: HttpToolSpec = { method, url, timeoutMs: 1000, maxResponseKB: 1 }
      for (const args of argSets) {
        const built = buildRequest(spec, args)
        t.same({ origin: built.origin, path: built.path, body: built.body }, reference(spec, args), `${method} ${url} ${JSON.stringify(args)}`)
      }
    }
  }
})
