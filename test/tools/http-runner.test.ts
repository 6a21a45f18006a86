import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK } from 'jose'
import { HttpToolError, HttpToolRunner } from '../../services/tools/http-tool-runner.ts'
import { classifyAddress } from '../../services/tools/upstream-address-guard.ts'
import { createToolSigner } from '../../services/tools/tool-signer.ts'
import type { HttpToolSpec, ToolDefinition } from '../../services/tools/tool-definition.ts'
import { loadConfig } from '../../plugins/config.ts'
import { buildApp } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { startUpstream } from './fixtures/upstream.ts'

const SECRET = 'x'.repeat(32)

function tool (url: string, extra: Partial<HttpToolSpec> = {}): ToolDefinition & { http: HttpToolSpec } {
  return {
    name: 'x:test',
    description: 'test',
    argsSchema: {} as never,
    http: { method: 'GET', url, timeoutMs: 5000, maxResponseKB: 64, ...extra },
    run: async () => null
  }
}
const call = { tenantId: 't1', userId: 'u1', executionId: 'e1', callIndex: 0, args: {} }

t.test('addresses are classed however they are written', async (t) => {
  for (const address of ['169.254.169.254', '169.254.0.1', 'fe80::1', 'FE80::abcd', 'febf::1', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe']) {
    t.equal(classifyAddress(address), 'metadata', `${address} is link-local`)
  }
  for (const address of ['127.0.0.1', '10.0.0.1', '::1', 'fec0::1', '::ffff:127.0.0.1']) {
    t.equal(classifyAddress(address), 'private', `${address} is private`)
  }
  for (const address of ['169.255.0.1', '8.8.8.8', '2606:4700::1111']) t.equal(classifyAddress(address), 'public', `${address} is public`)
  t.equal(classifyAddress('example.com'), null)
})

t.test('a host that resolves to a link-local address is refused after DNS, before any connection', async (t) => {
  const signer = await createToolSigner('tenant-enclave')
  const resolved: string[] = []
  const runner = new HttpToolRunner({
    signer,
    maxResultBytes: 4 * 1024 * 1024,
    // A resolver that answers like a poisoned or rebinding DNS would.
    lookup: (hostname, options, callback) => {
      resolved.push(hostname)
      const answers: Record<string, Array<{ address: string, family: number }>> = {
        'metadata.test': [{ address: '169.254.169.254', family: 4 }],
        'mixed.test': [{ address: '127.0.0.1', family: 4 }, { address: 'fe80::1', family: 6 }]
      }
      const list = answers[hostname] ?? []
      if (options.all === true) callback(null, list)
      else callback(null, list[0]?.address ?? '', list[0]?.family)
    }
  })
  t.teardown(async () => { await runner.close() })
  await t.rejects(runner.call(tool('http://metadata.test/latest/meta-data/'), call), new HttpToolError('refused address 169.254.169.254 (link-local or cloud metadata)'))
  await t.rejects(runner.call(tool('http://mixed.test:8080/x'), call), new HttpToolError('refused address 127.0.0.1 (loopback, private or reserved: a hostname must resolve to a public address)'))
  t.same(resolved, ['metadata.test', 'mixed.test'])
})

t.test('the end of the run aborts the request and closes its socket', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const runner = new HttpToolRunner({ signer: await createToolSigner('tenant-enclave'), maxResultBytes: 4 * 1024 * 1024 })
  t.teardown(async () => { await runner.close() })
  const ended = new AbortController()
  const pending = runner.call(tool(`${upstream.origin}/slow`, { timeoutMs: 30_000 }), { ...call, runEnded: ended.signal })
  await waitFor(() => upstream.seen.some((r) => r.url === '/slow'), { message: 'the upstream has the request' })
  ended.abort()
  await t.rejects(pending, { message: 'the run ended before the upstream answered' })
  await waitFor(() => upstream.aborted.includes('/slow'), { timeout: 5000, message: 'the upstream sees the socket close' })
  // A new call after an aborted one works (the pool replaced the connection).
  t.same((await runner.call(tool(`${upstream.origin}/users/{id}`), { ...call, args: { id: 'z' } })).value, { id: 'z', name: 'Ada' })
})

t.test('TOOL_RESULT_MAX_BYTES caps the body even when the tool allows more', async (t) => {
  const upstream = await startUpstream()
  t.teardown(upstream.close)
  const runner = new HttpToolRunner({ signer: await createToolSigner('tenant-enclave'), maxResultBytes: 32 * 1024 })
  t.teardown(async () => { await runner.close() })
  // The tool's own limit (64 MB, the most an admin may set) would let the whole body in.
  await t.rejects(runner.call(tool(`${upstream.origin}/big`, { maxResponseKB: 64 * 1024 }), call),
    { message: 'response body over the tool result limit of 32768 bytes (TOOL_RESULT_MAX_BYTES)', upstreamStatus: 200 })
  await waitFor(() => upstream.aborted.includes('/big'), { timeout: 5000, message: 'the upstream sees the socket close' })
  t.ok(upstream.bigBytesWritten() < 16 * 1024 * 1024, `the service stopped reading: ${upstream.bigBytesWritten()} of 64 MB written`)
  // A small answer under both limits still arrives.
  t.same((await runner.call(tool(`${upstream.origin}/users/{id}`, { maxResponseKB: 64 * 1024 }), { ...call, args: { id: 'q' } })).value, { id: 'q', name: 'Ada' })
})

t.test('config: TOOL_UPSTREAMS, TOOL_SIGNING_KEY and SERVICE_ISSUER are checked at start', async (t) => {
  t.match(loadConfig({ JWT_SECRET: SECRET }), { TOOL_UPSTREAMS: '', SERVICE_ISSUER: 'tenant-enclave' })
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ TOOL_UPSTREAMS: 'https://api.example.com/v1' }, /TOOL_UPSTREAMS lists "https:\/\/api.example.com\/v1"/],
    [{ TOOL_UPSTREAMS: 'ftp://files.example.com' }, /TOOL_UPSTREAMS/],
    [{ TOOL_SIGNING_KEY: 'not a key' }, /TOOL_SIGNING_KEY/],
    [{ TOOL_SIGNING_KEY: rsa }, /TOOL_SIGNING_KEY must be a P-256/],
    [{ TOOL_SIGNING_KEY: p384 }, /TOOL_SIGNING_KEY must be a P-256/],
    [{ SERVICE_ISSUER: '' }, /SERVICE_ISSUER/]
  ]
  for (const [env, pattern] of cases) t.throws(() => loadConfig({ JWT_SECRET: SECRET, ...env }), pattern, Object.keys(env).join())
})

t.test('TOOL_SIGNING_KEY signs the assertions; the JWKS publishes its public half under its thumbprint, and takes more keys', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const app = await buildApp(t, { TOOL_SIGNING_KEY: pem, SERVICE_ISSUER: 'platform-a' })
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey))
  const res = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(res.statusCode, 200)
  // The session identity key (encrypted sessions) is published beside it.
  t.same(res.json().keys.find((k: { kid: string }) => k.kid === kid), { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' })
  t.notOk(JSON.stringify(res.json()).includes('"d"'), 'no private part')
  app.serviceKeys.addPublicJwk({ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'session-identity', use: 'sig' })
  const kids = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json().keys.map((k: { kid: string }) => k.kid)
  t.equal(kids[0], kid, 'the tool signing key first')
  t.ok(kids.includes('session-identity'), 'and the added key')
  t.throws(() => { app.serviceKeys.addPublicJwk({ kty: 'EC', kid: 'leak', d: 'secret' }) }, /private/)
})
