// Usage by end user (issue 30, item 3): per-user usage, history and the billing export, seen by
// whom they may be: a token without usage:read-all sees its own user only, another tenant's users
// never, the platform admin every tenant.
import t from 'tap'
import { adminHeaders, bearer, createTenant, sharedApp, tokenFor } from '../helper.ts'
import type { AuditEntry } from '../../services/audit/audit-writer.ts'

const DAY_MS = 86_400_000
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
const COLUMNS = 'date,userId,executions,failures,toolCalls,cpuMs,wallMs,bytesIn,bytesOut'

/** RFC 4180: quoted fields may hold commas, doubled quotes and line breaks; lines end in CRLF. */
function parseCsv (text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++ } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') { row.push(field); field = '' } else if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++ } else field += c
  }
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row) }
  return rows
}

t.test('usage by end user', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'usage-users')
  const other = await createTenant(app, 'usage-users-other')
  const as = (tenantId: string, userId: string, permissions: string[] = []) => bearer(tokenFor({ tenantId, userId, permissions }))
  const reader = as(tenant.tenantId, 'ann', ['usage:read-all'])
  const bob = as(tenant.tenantId, 'bob')
  const get = async (url: string, headers: Record<string, string>) => await app.inject({ method: 'GET', url, headers })

  // Real runs today: ann twice (one fails), bob once with a tool call; the other tenant's ann and mallory.
  const run = async (headers: Record<string, string>, code: string) => await app.inject({ method: 'POST', url: '/api/execute', headers, payload: { code } })
  const annRun = as(tenant.tenantId, 'ann', ['tool:data:insert'])
  await run(annRun, 'return 1')
  await run(annRun, 'throw new Error("no")')
  await run(as(tenant.tenantId, 'bob', ['tool:data:insert']), "await callTool('data:insert', { document: { a: 1 } }); return 2")
  await run(as(other.tenantId, 'ann'), 'return 3')
  await run(as(other.tenantId, 'mallory'), 'return 4')
  // Earlier days, written as audit rows: a user whose id needs CSV quoting.
  const row = (tenantId: string, id: string, userId: string, daysAgo: number, fields: Partial<AuditEntry> = {}): AuditEntry => ({
    tenantId,
    executionId: id,
    userId,
    action: 'code_execution',
    codeSha256: null,
    success: true,
    errorCode: null,
    durationMs: 40,
    toolCalls: 2,
    meter: { cpuMs: 7, peakHeapBytes: 1000, toolTimeMs: 5, bytesIn: 100, bytesOut: 30 },
    createdAt: new Date(today - daysAgo * DAY_MS + 3_600_000),
    ...fields
  })
  app.audit.enqueue(row(tenant.tenantId, 'e1', 'ann', 2))
  app.audit.enqueue(row(tenant.tenantId, 'e2', 'dé,"x"', 2, { success: false, errorCode: 'TIMEOUT' }))
  app.audit.enqueue(row(tenant.tenantId, 'e3', 'dé,"x"', 5))
  app.audit.enqueue(row(other.tenantId, 'o1', 'mallory', 2))
  await app.audit.flush()

  t.test('GET /api/usage?groupBy=user: every user with usage:read-all, only its own without', async (t) => {
    const all = (await get('/api/usage?groupBy=user', reader)).json()
    t.same(all.users.map((u: { userId: string }) => u.userId), ['ann', 'bob'], 'most executions first; the other tenant\'s users never')
    t.match(all.users[0], { userId: 'ann', executions: 2, toolCalls: 0, cpuMs: Number })
    t.match(all.users[1], { userId: 'bob', executions: 1, toolCalls: 1 })
    const own = (await get('/api/usage?groupBy=user', bob)).json()
    t.same(own.users.map((u: { userId: string }) => u.userId), ['bob'])
    t.notOk('users' in (await get('/api/usage', reader)).json(), 'no users without groupBy')
    t.equal((await get('/api/usage?groupBy=tenant', reader)).json().code, 'BAD_REQUEST')
  })

  t.test('GET /api/usage/history?userId=: another user needs usage:read-all', async (t) => {
    const bobs = (await get('/api/usage/history?days=3&userId=bob', reader)).json().days
    t.match(bobs.at(-1), { date: iso(today), executions: 1, failures: 0, toolCalls: 1 })
    t.same(bobs.slice(0, 2).map((d: { executions: number }) => d.executions), [0, 0])
    const own = await get('/api/usage/history?days=3&userId=bob', bob)
    t.equal(own.statusCode, 200)
    const refused = await get('/api/usage/history?days=3&userId=ann', bob)
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'FORBIDDEN')
    t.match(refused.json().error, /usage:read-all/)
    const quoted = (await get(`/api/usage/history?days=3&userId=${encodeURIComponent('dé,"x"')}`, reader)).json().days
    t.match(quoted[0], { date: iso(today - 2 * DAY_MS), executions: 1, failures: 1, toolCalls: 2, cpuMs: 7, wallMs: 40, bytesIn: 100, bytesOut: 30 })
  })

  t.test('GET /api/usage/export: CSV that parses, sums equal the history\'s, no other tenant', async (t) => {
    const url = `/api/usage/export?from=${iso(today - 6 * DAY_MS)}&to=${iso(today)}&format=csv`
    const res = await get(url, reader)
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/csv/)
    const [header, ...rows] = parseCsv(res.body)
    t.equal(header?.join(','), COLUMNS)
    t.ok(rows.every((r) => r.length === 9), 'every line has the nine columns')
    t.same(rows.map((r) => [r[0], r[1]]), [[iso(today - 5 * DAY_MS), 'dé,"x"'], [iso(today - 2 * DAY_MS), 'ann'], [iso(today - 2 * DAY_MS), 'dé,"x"'], [iso(today), 'ann'], [iso(today), 'bob']], 'by date, then user; quoted ids read back')
    t.notOk(res.body.includes('mallory'), 'another tenant\'s users never appear')
    // Per day, the export's sums are the history's.
    const history = (await get('/api/usage/history?days=7', reader)).json().days as Array<Record<string, number | string>>
    const fields = ['executions', 'failures', 'toolCalls', 'cpuMs', 'wallMs', 'bytesIn', 'bytesOut']
    for (const day of history) {
      const sums = fields.map((_f, i) => rows.filter((r) => r[0] === day.date).reduce((a, r) => a + Number(r[i + 2]), 0))
      t.same(sums, fields.map((f) => day[f]), `${day.date as string}`)
    }
    const ndjson = await get(url.replace('format=csv', 'format=ndjson'), reader)
    t.match(ndjson.headers['content-type'], /^application\/x-ndjson/)
    const lines = ndjson.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    t.same(lines.map((l) => Object.keys(l).join(',')), lines.map(() => COLUMNS))
    t.same(lines.map((l) => fields.map((f) => l[f])), rows.map((r) => r.slice(2).map(Number)))
  })

  t.test('the export without usage:read-all: the caller\'s own rows', async (t) => {
    const url = `/api/usage/export?from=${iso(today - 6 * DAY_MS)}&to=${iso(today)}`
    const [, ...rows] = parseCsv((await get(url, bob)).body)
    t.same(rows.map((r) => r[1]), ['bob'])
    t.equal((await get(`${url}&userId=ann`, bob)).statusCode, 403)
    const [, ...annRows] = parseCsv((await get(`${url}&userId=ann`, reader)).body)
    t.same(annRows.map((r) => r[1]), ['ann', 'ann'])
  })

  t.test('bad ranges and formats: 400 saying what to send', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['from=2026-03-10&to=2026-03-01', /on or before/],
      ['from=2025-01-01&to=2026-03-01', /at most 366/],
      ['from=2026-02-30&to=2026-03-01', /calendar date/],
      ['from=2026-3-1&to=2026-03-01', /from/],
      ['to=2026-03-01', /from/],
      ['from=2026-03-01&to=2026-03-02&format=xml', /format/]
    ]
    for (const [query, message] of cases) {
      const res = await get(`/api/usage/export?${query}`, reader)
      t.equal(res.statusCode, 400, query)
      t.equal(res.json().code, 'BAD_REQUEST', query)
      t.match(res.json().message, message, query)
    }
    t.equal((await get('/api/usage/export?from=2025-03-01&to=2026-03-01', reader)).statusCode, 200, '366 days are allowed')
  })

  t.test('GET /admin/usage: every tenant for the platform admin, no one else', async (t) => {
    const url = `/admin/usage?from=${iso(today - 6 * DAY_MS)}&to=${iso(today)}`
    const res = await get(url, adminHeaders())
    t.equal(res.statusCode, 200)
    const [header, ...rows] = parseCsv(res.body)
    t.equal(header?.join(','), 'date,tenantId,userId,executions,failures,toolCalls,cpuMs,wallMs,bytesIn,bytesOut')
    const mine = rows.filter((r) => r[1] === tenant.tenantId || r[1] === other.tenantId).map((r) => `${r[1] === tenant.tenantId ? 'A' : 'B'} ${r[0]} ${r[2]} ${r[3]}`)
    t.same(mine.sort(), [
      `A ${iso(today - 5 * DAY_MS)} dé,"x" 1`, `A ${iso(today - 2 * DAY_MS)} ann 1`, `A ${iso(today - 2 * DAY_MS)} dé,"x" 1`, `A ${iso(today)} ann 2`, `A ${iso(today)} bob 1`,
      `B ${iso(today - 2 * DAY_MS)} mallory 1`, `B ${iso(today)} ann 1`, `B ${iso(today)} mallory 1`
    ].sort())
    const one = parseCsv((await get(`${url}&tenantId=${other.tenantId}&format=csv`, adminHeaders())).body).slice(1)
    t.same([...new Set(one.map((r) => r[1]))], [other.tenantId])
    t.equal((await get(url, reader)).statusCode, 403, 'a tenant token, even with usage:read-all')
  })
})
