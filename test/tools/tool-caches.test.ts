// The caches that keep an HTTP tool call cheap (issue 11, benchmark target): DNS answers inside
// the link-local guard, and signed assertions reused within a run. Neither may weaken what the
// uncached path guarantees, which is what these tests pin down. Time is a fake clock throughout.
import t from 'tap'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { decodeJwt, importJWK, jwtVerify } from 'jose'
import { buildRequest, guardedLookup, HttpToolRunner } from '../../services/tools/http-tool-runner.ts'
import { AssertionCache, createToolSigner, type AssertionClaims } from '../../services/tools/tool-signer.ts'
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
    'rebind.test': [[{ address: '127.0.0.1', family: 4 }], [{ address: '169.254.169.254', family: 4 }]],
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
    const list = answers[hostname] ?? [[{ address: '127.0.0.2', family: 4 }]]
    const answer = list.length > 1 ? list.shift() as LookupAddress[] : list[0] as LookupAddress[]
    if (options.all === true) callback(null, answer)
    else callback(null, answer[0]?.address ?? '', answer[0]?.family)
  }
  const lookup = guardedLookup(resolver, { ttlMs: 30_000, now: () => now })

  t.same(await lookUp(lookup, 'rebind.test'), { error: null, address: [{ address: '127.0.0.1', family: 4 }] })
  now += 29_999
  t.same(await lookUp(lookup, 'rebind.test'), { error: null, address: [{ address: '127.0.0.1', family: 4 }] }, 'within the TTL: the cached answer')
  t.same(asked, ['rebind.test'], 'and the resolver was asked once')
  now += 1
  t.same(await lookUp(lookup, 'rebind.test'), { error: 'ELINKLOCAL: refused address 169.254.169.254 (link-local)', address: '' }, 'expired: resolved again, and the new answer is checked')
  t.same(asked, ['rebind.test', 'rebind.test'])

  // A link-local answer, once cached, is refused on every use, not only the first.
  for (let i = 0; i < 3; i++) t.match(await lookUp(lookup, 'metadata.test'), { error: /^ELINKLOCAL: refused address 169\.254\.169\.254/ })
  t.equal(asked.filter((h) => h === 'metadata.test').length, 1)

  // A failure is not cached: the next connection asks again.
  t.match(await lookUp(lookup, 'flaky.test'), { error: /^EAI_AGAIN/ })
  t.same(await lookUp(lookup, 'flaky.test'), { error: null, address: [{ address: '127.0.0.2', family: 4 }] })
  t.equal(asked.filter((h) => h === 'flaky.test').length, 2)

  // One address and all addresses are different answers, cached apart.
  t.same(await lookUp(lookup, 'flaky.test', { family: 4 }), { error: null, address: '127.0.0.2' })
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

const T0 = 1_800_000_000_000 // a whole second, so iat = T0 / 1000 exactly
const claims: AssertionClaims = { audience: 'https://crm.example', userId: 'alice', tenantId: 'acme', executionId: 'exec-1', tool: 'crm:get' }

t.test('an assertion is reused within its run while it has more than 30 s left, and never sent with less', async (t) => {
  const signer = await createToolSigner('tenant-enclave')
  let now = T0
  const cache = new AssertionCache(signer, { now: () => now })
  const first = cache.assertion(claims)
  t.equal(decodeJwt(first).exp, T0 / 1000 + 60)
  now = T0 + 29_999
  t.equal(cache.assertion(claims), first, '30.001 s left: the same assertion')
  now = T0 + 30_000
  const second = cache.assertion(claims)
  t.not(second, first, '30 s left: a new one')
  t.not(decodeJwt(second).jti, decodeJwt(first).jti, 'with its own jti')
  t.equal(decodeJwt(second).iat, T0 / 1000 + 30)

  // Whatever the moment of the call (sub-second offsets included), what is handed out has more
  // than 30 s of life left, so it is valid whenever the upstream receives it within that margin.
  const sent = new Set<string>()
  for (let ms = 0; ms <= 200_000; ms += 777) {
    now = T0 + ms
    const token = cache.assertion(claims)
    sent.add(token)
    const exp = decodeJwt(token).exp ?? 0
    if (exp * 1000 - now <= 30_000) t.fail(`sent with ${exp * 1000 - now} ms left at +${ms} ms`)
  }
  t.ok(sent.size >= 6 && sent.size <= 8, `about one assertion per 30 s over 200 s (${sent.size})`)

  // Each token is a valid ES256 assertion, verified by the public key at its own moment.
  const key = await importJWK(signer.publicJwk, 'ES256')
  const token = cache.assertion(claims)
  const { payload } = await jwtVerify(token, key, { issuer: 'tenant-enclave', audience: claims.audience, currentDate: new Date(now) })
  t.match(payload, { tenantId: 'acme', sub: 'alice', executionId: 'exec-1', tool: 'crm:get' })
})

t.test('tenants, users, runs, tools and upstreams never share an assertion', async (t) => {
  const signer = await createToolSigner('tenant-enclave')
  const cache = new AssertionCache(signer, { now: () => T0 })
  const variants: AssertionClaims[] = [
    claims,
    { ...claims, tenantId: 'globex' },
    { ...claims, userId: 'bob' },
    { ...claims, executionId: 'exec-2' },
    { ...claims, tool: 'crm:delete' },
    { ...claims, audience: 'https://billing.example' },
    // Ids that would collide if the cache key simply joined them with a separator.
    { ...claims, tenantId: 'acme:alice', userId: '' },
    { ...claims, tenantId: 'acme', userId: ':alice' }
  ]
  const tokens = variants.map((c) => cache.assertion(c))
  t.equal(new Set(tokens).size, variants.length, 'one assertion each')
  variants.forEach((c, i) => {
    t.match(decodeJwt(tokens[i] as string), { tenantId: c.tenantId, sub: c.userId, executionId: c.executionId, tool: c.tool, aud: c.audience }, `assertion ${i} carries its own claims`)
  })
  t.same(variants.map((c) => cache.assertion(c)), tokens, 'and each is reused for its own claims only')
})

t.test('the assertion cache is bounded: past maxEntries the oldest is signed again', async (t) => {
  const signer = await createToolSigner('tenant-enclave')
  let signed = 0
  const counting = { ...signer, sign: (c: AssertionClaims, nowMs?: number) => { signed++; return signer.sign(c, nowMs) } }
  const cache = new AssertionCache(counting, { now: () => T0, maxEntries: 2 })
  for (const executionId of ['e1', 'e2', 'e3', 'e3', 'e2', 'e1']) cache.assertion({ ...claims, executionId })
  t.equal(signed, 4, 'e1 was dropped for e3 and signed again')
  t.equal(cache.size, 2)
})

t.test('over the wire: one assertion per run and tool, a new idempotency key per call, a fresh assertion before the old one gets short', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  let now = Date.now()
  const runner = new HttpToolRunner({ signer: await createToolSigner('tenant-enclave'), maxResultBytes: 1024 * 1024, assertionCache: { now: () => now } })
  t.teardown(async () => { await runner.close() })
  const users = tool('w:user', `${upstream.origin}/users/{id}`)
  const call = async (tenantId: string, callIndex: number): Promise<{ authorization: string, key: string }> => {
    const before = upstream.seen.length
    await runner.call(users, { tenantId, userId: 'u1', executionId: 'exec-w', callIndex, args: { id: String(callIndex) } })
    const request = upstream.seen[before]
    return { authorization: String(request?.headers.authorization), key: String(request?.headers['idempotency-key']) }
  }
  const a0 = await call('acme', 0)
  const a1 = await call('acme', 1)
  t.equal(a1.authorization, a0.authorization, 'the run\'s second call carries the same assertion')
  t.same([a0.key, a1.key], ['exec-w:0', 'exec-w:1'], 'but its own idempotency key')
  const other = await call('globex', 2)
  t.not(other.authorization, a0.authorization, 'another tenant gets its own')
  t.equal(decodeJwt(other.authorization.slice(7)).tenantId, 'globex')
  now += 31_000
  const later = await call('acme', 3)
  t.not(later.authorization, a0.authorization, 'with under 30 s left, a new assertion is signed')
  const exp = decodeJwt(later.authorization.slice(7)).exp ?? 0
  t.ok(exp * 1000 - now > 30_000, 'which has its full life ahead')
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
