// The first-run experience: `npm start` on a bare machine prints tokens and curl lines that work.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { startServer } from './support/server-process.ts'
import { waitFor } from './support/wait-for.ts'

const run = promisify(execFile)
const listeningLine = (output: string): string => output.split('\n').find((line) => line.includes('Server listening')) ?? ''

t.test('an embedded start without a key prints working demo tokens and curl lines', async (t) => {
  // PGLITE_DIR unset: in memory, initdb and all, as on a bare machine.
  const server = await startServer({ JWT_SECRET: undefined, DATABASE_URL: undefined, DATABASE_ADMIN_URL: undefined, REDIS_URL: undefined, PGLITE_DIR: undefined }, (fn) => t.teardown(fn))
  await waitFor(() => server.output().includes('API docs:'), { timeout: 30_000, interval: 100, message: 'the start banner was printed' })
  const output = server.output()
  // LOG_FORMAT=auto and stdout a pipe (as under any log collector): one JSON object per line.
  t.match(JSON.parse(listeningLine(output)), { level: 30, msg: /^Server listening at / }, 'logs are JSON lines when piped')
  for (const tenant of ['demo-free', 'demo-starter', 'demo-enterprise', 'admin']) {
    t.match(output, new RegExp(`${tenant}\\s+TOKEN=ey`), `a token for ${tenant}`)
  }
  const curls = output.split('\n').map((line) => line.trim()).filter((line) => line.startsWith('curl '))
  t.equal(curls.length, 3)
  // In the printed order: the usage line reports what the execute line did.
  const results: unknown[] = []
  for (const line of curls) results.push(JSON.parse((await run('bash', ['-c', line])).stdout))
  const [execute, usage, admin] = results
  t.match(execute, { success: true, value: [{ hello: 'world', tenantId: 'demo-free' }] }, 'the execute example runs as printed')
  t.match(usage, { tenantId: 'demo-free', tier: 'free', executions: 1, toolCalls: 2 })
  t.match(admin, { tenantId: 'demo-starter', tier: 'starter', registered: true })

  const mint = output.split('\n').map((line) => line.trim()).find((line) => line.startsWith('JWT_SECRET='))
  t.ok(mint, 'the banner says how to mint another token for its generated secret')
  const minted = (await run('bash', ['-c', mint as string])).stdout.trim()
  const usageOfMinted = await fetch(`${server.url}/api/usage`, { headers: { authorization: `Bearer ${minted}` } })
  t.equal(usageOfMinted.status, 200, 'the printed command mints a token the running service accepts')
  t.match(await usageOfMinted.json(), { tenantId: 'my-tenant' })
})

t.test('npm run token mints a token the service accepts', async (t) => {
  const secret = 'a-secret-for-the-token-script-test-0123456789'
  const { stdout } = await run(process.execPath, ['scripts/token.ts', '--tenant', 'acme', '--user', 'alice', '--perm', 'tool:data:query', '--perm', 'admin'], { env: { PATH: process.env.PATH, JWT_SECRET: secret } })
  const [, payload] = stdout.trim().split('.')
  t.match(JSON.parse(Buffer.from(payload as string, 'base64url').toString()), { tenantId: 'acme', userId: 'alice', permissions: ['tool:data:query', 'admin'] })
  const server = await startServer({ JWT_SECRET: secret, DATABASE_URL: undefined, DATABASE_ADMIN_URL: undefined, REDIS_URL: undefined }, (fn) => t.teardown(fn))
  const res = await fetch(`${server.url}/admin/tenants/acme`, { headers: { authorization: `Bearer ${stdout.trim()}` } })
  t.equal(res.status, 200)
  await t.rejects(run(process.execPath, ['scripts/token.ts', '--tenant', 'acme'], { env: { PATH: process.env.PATH } }), 'refuses without JWT_SECRET')
})

t.test('LOG_FORMAT=pretty writes readable lines instead of JSON', async (t) => {
  const pretty = await startServer({ DATABASE_URL: undefined, DATABASE_ADMIN_URL: undefined, REDIS_URL: undefined, LOG_FORMAT: 'pretty' }, (fn) => t.teardown(fn))
  t.match(listeningLine(pretty.output()), /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Server listening at http:/, 'local time, level, message')
  t.notOk(pretty.output().includes('"level":'), 'no JSON line in pretty mode')
})
