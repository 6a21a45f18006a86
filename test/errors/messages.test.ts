import t from 'tap'
import type { InjectOptions } from 'fastify'
import { adminHeaders, bearer, buildApp, createTenant, TEST_SECRET, uniqueTenantId } from '../helper.ts'
import { signToken } from '../../services/tokens.ts'

// Every bad input an integrator is likely to send, with the exact answer it gets: the status, the
// code, the message (what was wrong, the limit or the allowed values, how to fix it) and, for a
// 401, the reason and the RFC 6750 challenge.

interface Row {
  name: string
  /** The app with JWT_ISSUER, JWT_AUDIENCE and a 64 KiB BODY_LIMIT_BYTES, else the default one. */
  issuerApp?: boolean
  request: InjectOptions
  status: number
  code: string
  message: string
  reason?: string
  claim?: string
  /** Where the code and message are: the body (default), a run's error, the check's first error. */
  from?: 'body' | 'run' | 'check'
  /** Other fields the body must carry. */
  fields?: Record<string, unknown>
}

const ISSUER = 'https://gateway.example'
const AUDIENCE = 'tenant-enclave'
const SUGGEST_NONE = 'no tool this token may call has a similar name; GET `/api/tools` lists them'
const CHALLENGE_MISSING = 'Bearer realm="tenant-enclave"'

t.test('bad inputs get messages that say what to do', async (t) => {
  const app = await buildApp(t)
  const issuerApp = await buildApp(t, { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, BODY_LIMIT_BYTES: '65536' })
  // data:delete is granted but turned off for the tenant; data:update exists and is not granted.
  const tenant = await createTenant(app, 'messages', { permissions: ['tool:data:query', 'tool:data:insert', 'tool:data:delete'] })
  const off = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:delete`, headers: adminHeaders(), payload: { enabled: false } })
  t.equal(off.statusCode, 200)
  const tenantId = uniqueTenantId('messages-claims')
  const now = Math.floor(Date.now() / 1000)
  const iso = (seconds: number): string => new Date(seconds * 1000).toISOString()
  const mint = (claims: Record<string, unknown>, secret = TEST_SECRET): string =>
    signToken({ tenantId, userId: 'u', permissions: [], exp: now + 600, ...claims } as never, { secret }, null)
  const h = tenant.headers
  const issuerToken = bearer(mint({ iss: ISSUER, aud: AUDIENCE }))
  const usage = (headers: Record<string, string>): InjectOptions => ({ method: 'GET', url: '/api/usage', headers })
  const execute = (payload: unknown, headers: Record<string, string> = h): InjectOptions => ({ method: 'POST', url: '/api/execute', headers, payload: payload as string })
  const check = (code: string): InjectOptions => ({ method: 'POST', url: '/api/execute/check', headers: h, payload: { code } })

  const rows: Row[] = [
    // Authentication
    { name: 'no token', request: usage({}), status: 401, code: 'MISSING_TOKEN', message: 'No bearer token was sent: send the header Authorization: Bearer <token>' },
    { name: 'no Bearer prefix', request: usage({ authorization: mint({}) }), status: 401, code: 'INVALID_TOKEN', reason: 'missing_bearer_prefix', message: 'The Authorization header must be the word Bearer, a space, then the token: send Authorization: Bearer <token>' },
    { name: 'malformed token', request: usage({ authorization: 'Bearer not-a-jwt' }), status: 401, code: 'INVALID_TOKEN', reason: 'malformed', message: 'The bearer token is not a well-formed JWT (three base64url parts: header.payload.signature): send the token exactly as it was issued' },
    { name: 'Bearer and no token', request: usage({ authorization: 'Bearer' }), status: 401, code: 'INVALID_TOKEN', reason: 'malformed', message: 'The Authorization header says Bearer but carries no token: send Authorization: Bearer <token>' },
    { name: 'a token with a space in it', request: usage({ authorization: 'Bearer two words' }), status: 401, code: 'INVALID_TOKEN', reason: 'malformed', message: 'The Authorization header must be Bearer and one token, with no spaces inside the token: send Authorization: Bearer <token>' },
    { name: 'bad signature', request: usage(bearer(mint({}, 'another-secret-that-is-also-32-characters'))), status: 401, code: 'INVALID_TOKEN', reason: 'bad_signature', message: 'The token\'s signature does not verify with this service\'s HS256 key: use a token signed by the issuer this service trusts' },
    { name: 'expired', request: usage(bearer(mint({ exp: now - 10 }))), status: 401, code: 'INVALID_TOKEN', reason: 'expired', message: `The token expired at ${iso(now - 10)}: get a new token from your gateway` },
    { name: 'not yet valid (nbf)', request: usage(bearer(mint({ nbf: now + 300 }))), status: 401, code: 'INVALID_TOKEN', reason: 'not_yet_valid', message: `The token is not valid before ${iso(now + 300)} (its nbf claim): wait until then, or check the issuer's clock` },
    { name: 'no tenantId', request: usage(bearer(mint({ tenantId: undefined }))), status: 401, code: 'INVALID_TOKEN', reason: 'missing_claim', claim: 'tenantId', message: 'The token has no tenantId claim: the issuer must include it; get a new token from your gateway' },
    { name: 'no exp (JWT_REQUIRE_EXP)', request: usage(bearer(mint({ exp: undefined }))), status: 401, code: 'INVALID_TOKEN', reason: 'missing_claim', claim: 'exp', message: 'The token has no exp claim (JWT_REQUIRE_EXP: tokens must expire): the issuer must include it; get a new token from your gateway' },
    { name: 'wrong issuer', issuerApp: true, request: usage(bearer(mint({ iss: 'https://evil.example', aud: AUDIENCE }))), status: 401, code: 'INVALID_TOKEN', reason: 'wrong_issuer', message: `The token's iss claim is not "${ISSUER}", the issuer this service accepts: get a new token from your gateway` },
    { name: 'wrong audience', issuerApp: true, request: usage(bearer(mint({ iss: ISSUER, aud: 'billing' }))), status: 401, code: 'INVALID_TOKEN', reason: 'wrong_audience', message: `The token's aud claim does not include "${AUDIENCE}", the audience this service accepts: get a new token from your gateway` },
    // Bodies
    { name: 'unknown body field, with a suggestion', request: execute({ script: 'return 1' }), status: 400, code: 'BAD_REQUEST', message: 'unknown field \'script\' (did you mean \'code\'?)' },
    { name: 'misspelt body field', request: execute({ code: 'return 1', timeoutMS: 100 }), status: 400, code: 'BAD_REQUEST', message: 'unknown field \'timeoutMS\' (did you mean \'timeoutMs\'?)' },
    { name: 'wrong enum value', request: execute({ code: 'return 1', language: 'python' }), status: 400, code: 'BAD_REQUEST', message: 'language must be one of: javascript, typescript' },
    { name: 'wrong type', request: execute({ code: 5 }), status: 400, code: 'BAD_REQUEST', message: 'code must be a string' },
    { name: 'missing required field', request: execute({}), status: 400, code: 'BAD_REQUEST', message: 'missing required field \'code\'' },
    { name: 'empty code', request: execute({ code: '' }), status: 400, code: 'BAD_REQUEST', message: 'code must not be empty' },
    { name: 'timeoutMs below its minimum', request: execute({ code: 'return 1', timeoutMs: 0 }), status: 400, code: 'BAD_REQUEST', message: 'timeoutMs must be at least 1' },
    { name: 'a body that is not an object', request: execute([1]), status: 400, code: 'BAD_REQUEST', message: 'the body must be a JSON object' },
    { name: 'code over the tier\'s size', request: execute({ code: 'x'.repeat(51 * 1024) }), status: 413, code: 'CODE_TOO_LARGE', message: 'Code size limit exceeded (50 KB)', fields: { limit: 50 } },
    { name: 'body over BODY_LIMIT_BYTES', issuerApp: true, request: execute({ code: 'x'.repeat(70_000) }, issuerToken), status: 413, code: 'BODY_TOO_LARGE', message: 'Request body is too large: at most 65536 bytes (BODY_LIMIT_BYTES)', fields: { limit: 65536 } },
    { name: 'text/plain body', request: { method: 'POST', url: '/api/execute', headers: { ...h, 'content-type': 'text/plain' }, payload: 'return 1' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Unsupported Media Type: send Content-Type: application/json (text/plain was sent)' },
    { name: 'no content type', request: { method: 'POST', url: '/api/execute', headers: h, body: 'return 1' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Unsupported Media Type: send Content-Type: application/json (no Content-Type was sent)' },
    // Query strings and paths
    { name: 'bad status filter', request: { method: 'GET', url: '/api/executions?status=done', headers: h }, status: 400, code: 'BAD_REQUEST', message: 'query parameter \'status\' must be one of: queued, running, awaiting_approval, succeeded, failed, cancelled' },
    { name: 'bad limit', request: { method: 'GET', url: '/api/executions?limit=0', headers: h }, status: 400, code: 'BAD_REQUEST', message: 'query parameter \'limit\' must be at least 1' },
    { name: 'limit not a number', request: { method: 'GET', url: '/api/executions?limit=ten', headers: h }, status: 400, code: 'BAD_REQUEST', message: 'query parameter \'limit\' must be an integer' },
    { name: 'bad before cursor', request: { method: 'GET', url: '/api/executions?before=yesterday', headers: h }, status: 400, code: 'BAD_REQUEST', message: 'query parameter \'before\' must be a UUID (like 0190a6f2-7b4e-7c3a-9d1e-2f3a4b5c6d7e)' },
    { name: 'an execution id that is no UUID names no execution', request: { method: 'GET', url: '/api/executions/not-a-uuid', headers: h }, status: 404, code: 'NOT_FOUND', message: 'Execution not found' },
    // Tools
    { name: 'misspelt tool in a run', request: execute({ code: 'await callTool(\'data:qeury\', {})' }), from: 'run', status: 200, code: 'TOOL_NOT_FOUND', message: 'Tool not found: data:qeury (did you mean data:query?)' },
    { name: 'misspelt tool in the check', request: check('await callTool(\'data:qeury\', {})'), from: 'check', status: 200, code: 'TOOL_NOT_FOUND', message: 'Tool not found: data:qeury (did you mean data:query?) (line 1, column 7)' },
    { name: 'no tool near the name', request: execute({ code: 'await callTool(\'shell:exec\', {})' }), from: 'run', status: 200, code: 'TOOL_NOT_FOUND', message: `Tool not found: shell:exec (${SUGGEST_NONE})` },
    { name: 'a tool that exists but is not granted', request: execute({ code: 'await callTool(\'data:update\', {})' }), from: 'run', status: 200, code: 'PERMISSION_DENIED', message: 'Permission denied: tool:data:update is not among this token\'s permissions; ask for a token that carries it' },
    { name: 'never suggests a tool that is not granted', request: execute({ code: 'await callTool(\'data:updat\', {})' }), from: 'run', status: 200, code: 'TOOL_NOT_FOUND', message: `Tool not found: data:updat (${SUGGEST_NONE})` },
    { name: 'never suggests a disabled tool', request: execute({ code: 'await callTool(\'data:delet\', {})' }), from: 'run', status: 200, code: 'TOOL_NOT_FOUND', message: `Tool not found: data:delet (${SUGGEST_NONE})` },
    { name: 'a granted tool that is off', request: execute({ code: 'await callTool(\'data:delete\', {})' }), from: 'run', status: 200, code: 'TOOL_DISABLED', message: 'Tool disabled: data:delete is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/data:delete`)' }
  ]
  t.ok(rows.length >= 20)

  for (const row of rows) {
    t.test(row.name, async (t) => {
      const res = await (row.issuerApp === true ? issuerApp : app).inject(row.request)
      t.equal(res.statusCode, row.status, 'status')
      const body = res.json()
      const got = row.from === 'run' ? body.error : row.from === 'check' ? body.errors[0] : body
      t.equal(got.code, row.code, 'code')
      // A titled body (400) carries the message as `message`; the others as `error`.
      t.equal(row.code === 'BAD_REQUEST' ? got.message : row.from !== undefined ? got.message : got.error, row.message, 'message')
      if (row.fields !== undefined) t.match(body, row.fields, 'fields')
      if (row.code === 'MISSING_TOKEN') {
        t.same(body, { error: row.message, code: row.code })
        t.equal(res.headers['www-authenticate'], CHALLENGE_MISSING)
      }
      if (row.code === 'INVALID_TOKEN') {
        t.same(body, { error: row.message, code: row.code, reason: row.reason, ...(row.claim !== undefined ? { claim: row.claim } : {}) }, 'the whole 401 body')
        t.equal(res.headers['www-authenticate'], `Bearer realm="tenant-enclave", error="invalid_token", error_description="${row.message.replace(/"/g, '\'')}"`)
      }
    })
  }
})
