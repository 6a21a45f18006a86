import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

t.test('the per-tenant request rate limit', async (t) => {
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '3' })
  const noisy = await createTenant(app, 'rl-noisy')
  const other = await createTenant(app, 'rl-other')
  const usage = async (headers: Record<string, string>) => await app.inject({ method: 'GET', url: '/api/usage', headers })

  const first = await usage(noisy.headers)
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-ratelimit-limit'], '3')
  t.equal(first.headers['x-ratelimit-remaining'], '2')
  await usage(noisy.headers)
  await usage(noisy.headers)
  const refused = await usage(noisy.headers)
  t.equal(refused.statusCode, 429)
  // The exact body: the rate limit's own fields arrive as its errorResponseBuilder made them.
  t.same(refused.json(), { error: 'Rate limit exceeded', code: 'RATE_LIMITED', message: 'Rate limit exceeded: at most 3 requests per minute; retry in 1 minute', limit: 3 })
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After is set')

  const execute = await noisy.execute('return 1')
  t.equal(execute.statusCode, 429, 'execute is limited too')
  t.same(execute.json(), { error: 'Rate limit exceeded', code: 'RATE_LIMITED', message: 'Rate limit exceeded: at most 3 requests per minute; retry in 1 minute', limit: 3 }, 'through its 429 schema too')
  const after = await usage(other.headers)
  t.equal(after.statusCode, 200, 'another tenant has its own window')
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200, '/health is not limited')
})
