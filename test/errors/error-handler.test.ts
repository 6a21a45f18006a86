// The error handler lets only registry codes out, and tells dependency outages by code alone.
import Fastify from 'fastify'
import t from 'tap'
import { Type } from 'typebox'
import errorHandler from '../../plugins/error-handler.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { DatabaseUnavailableError } from '../../services/db/pg-errors.ts'
import { StoreUnavailableError } from '../../services/store/limit-store.ts'

async function appThrowing (error: () => unknown) {
  const app = Fastify({ logger: false })
  await app.register(errorHandler)
  app.get('/boom', async () => { throw error() })
  app.post('/typed', { schema: { body: Type.Object({ n: Type.Integer() }) } }, async () => ({ ok: true }))
  t.teardown(async () => { await app.close() })
  return app
}

const libraryError = (statusCode: number, code: string, message: string) => Object.assign(new Error(message), { statusCode, code })

t.test('a ServiceError is answered from the registry, with its fields and Retry-After', async (t) => {
  const app = await appThrowing(() => new ServiceError('EXECUTION_QUOTA_EXCEEDED', {}, { fields: { limit: 5, reset: '2026-01-02T00:00:00.000Z' }, retryAfterSeconds: 30 }))
  const res = await app.inject('/boom')
  t.equal(res.statusCode, 429)
  t.equal(res.headers['retry-after'], '30')
  t.same(res.json(), { error: 'Execution quota exceeded', code: 'EXECUTION_QUOTA_EXCEEDED', limit: 5, reset: '2026-01-02T00:00:00.000Z' })
})

t.test('a schema failure is BAD_REQUEST', async (t) => {
  const app = await appThrowing(() => new Error('unused'))
  const res = await app.inject({ method: 'POST', url: '/typed', payload: { n: 'x' } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { error: 'Bad Request', code: 'BAD_REQUEST', message: /^n must be / })
})

t.test('a 4xx with a code outside the registry leaves as its status\'s generic code', async (t) => {
  const notFound = await (await appThrowing(() => libraryError(404, 'LIB_MISSING', 'No such widget'))).inject('/boom')
  t.equal(notFound.statusCode, 404)
  t.same(notFound.json(), { error: 'No such widget', code: 'NOT_FOUND' })
  const forbidden = await (await appThrowing(() => libraryError(403, 'LIB_DENIED', 'not yours'))).inject('/boom')
  t.same([forbidden.statusCode, forbidden.json()], [403, { error: 'Forbidden: not yours', code: 'FORBIDDEN' }])
})

t.test('a 4xx whose status has no generic code is a 500 INTERNAL_ERROR', async (t) => {
  const res = await (await appThrowing(() => libraryError(409, 'LIB_CONFLICT', 'internal detail'))).inject('/boom')
  t.equal(res.statusCode, 500)
  t.same(res.json(), { error: 'Internal Server Error', code: 'INTERNAL_ERROR' })
})

t.test('a library error that carries a registry code at its status keeps it', async (t) => {
  const res = await (await appThrowing(() => libraryError(410, 'SESSION_EXPIRED', 'The session has expired; open a new one'))).inject('/boom')
  t.same([res.statusCode, res.json()], [410, { error: 'The session has expired; open a new one', code: 'SESSION_EXPIRED' }])
})

t.test('a dependency failure is told by its code or its cause\'s, never its message', async (t) => {
  const cases: Array<[string, () => unknown, number]> = [
    ['DatabaseUnavailableError', () => new DatabaseUnavailableError(new Error('timeout exceeded when trying to connect')), 503],
    ['StoreUnavailableError', () => new StoreUnavailableError('Redis unavailable: Connection is closed.'), 503],
    ['a socket error as cause', () => new Error('query failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }), 503],
    ['a SQLSTATE of admin shutdown', () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), 503],
    ['an untagged message that only sounds like one', () => new Error('Connection terminated unexpectedly'), 500]
  ]
  for (const [name, error, status] of cases) {
    const res = await (await appThrowing(error)).inject('/boom')
    t.equal(res.statusCode, status, name)
    t.equal(res.json().code, status === 503 ? 'DEPENDENCY_UNAVAILABLE' : 'INTERNAL_ERROR', name)
  }
  const res = await (await appThrowing(() => new DatabaseUnavailableError(new Error('x')))).inject('/boom')
  t.same(res.json(), { error: 'Service unavailable', code: 'DEPENDENCY_UNAVAILABLE', message: 'A backing service (PostgreSQL or Redis) is unreachable; retry later' })
})

t.test('an unknown route is NOT_FOUND', async (t) => {
  const res = await (await appThrowing(() => new Error('unused'))).inject('/nowhere')
  t.same([res.statusCode, res.json()], [404, { error: 'Not Found', code: 'NOT_FOUND', message: 'Route GET /nowhere not found' }])
})
