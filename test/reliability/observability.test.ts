import t from 'tap'
import { buildApp, createTenant, TEST_SECRET } from '../helper.ts'

t.test('metrics and logs', async (t) => {
  const lines: string[] = []
  const app = await buildApp(t, { LOG_LEVEL: 'info' }, undefined, { write: (line) => { lines.push(line) } })
  const tenant = await createTenant(app, 'observed', { quotaOverrides: { maxExecutionsPerDay: 2 } })
  const ok = await tenant.execute(`
    await callTool('data:query', {})
    try { await callTool('data:nope', {}) } catch {}
    // Names a script makes up share one label: each would otherwise be a new series kept forever.
    for (let i = 0; i < 5; i++) { try { await callTool('made-up:' + i, {}) } catch {} }
    return 1`)
  await tenant.execute("throw new Error('x')")
  t.equal((await tenant.execute('return 1')).statusCode, 429)

  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /text\/plain/)
  const body = metrics.body
  t.match(body, /tenant_enclave_executions_total\{code="OK"\} 1/)
  t.match(body, /tenant_enclave_executions_total\{code="EXECUTION_ERROR"\} 1/)
  t.match(body, /tenant_enclave_execution_duration_seconds_count 2/)
  t.match(body, /tenant_enclave_tool_calls_total\{tool="data:query",outcome="OK"\} 1/)
  t.match(body, /tenant_enclave_tool_calls_total\{tool="\(unknown\)",outcome="TOOL_NOT_FOUND"\} 6/)
  t.notMatch(body, /data:nope|made-up/, 'no series for a name the service does not know')
  t.match(body, /tenant_enclave_quota_refusals_total\{kind="daily-executions"\} 1/)
  t.match(body, /tenant_enclave_executions_in_flight 0/)
  t.match(body, /tenant_enclave_runner_restarts_total 0/)
  t.match(body, /tenant_enclave_audit_write_failures_total 0/)

  const logs = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const finished = logs.find((l) => l.msg === 'execution finished' && l.executionId === ok.json().executionId)
  t.match(finished, { tenantId: tenant.tenantId, success: true, toolCalls: 7 }, 'logs carry tenantId and executionId')

  const token = tenant.headers.authorization.slice('Bearer '.length)
  const all = lines.join('\n')
  t.notOk(all.includes(token), 'the token never reaches the log')
  t.notOk(all.includes(TEST_SECRET), 'the secret never reaches the log')

  // A log line that carries request headers shows the Authorization header redacted.
  lines.length = 0
  app.log.info({ headers: { authorization: 'Bearer abc.def.ghi' } }, 'headers')
  t.match(lines.join(''), /"authorization":"\[redacted\]"/)
  t.notOk(lines.join('').includes('abc.def.ghi'))
})
