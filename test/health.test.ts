import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import configPlugin, { loadConfig } from '../plugins/config.ts'
import enclavePlugin from '../plugins/enclave.ts'
import metricsPlugin from '../plugins/metrics.ts'
import { detectSandbox, SandboxError } from '../services/enclave/host/runner-launch.ts'
import { buildApp, TEST_SECRET } from './helper.ts'

t.test('health and readiness', async (t) => {
  const app = await buildApp(t)
  const health = await app.inject({ method: 'GET', url: '/health' })
  t.equal(health.statusCode, 200)
  t.same(health.json(), { status: 'ok' })

  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), {
    status: 'ready',
    checks: { database: 'ok', redis: process.env.REDIS_URL === undefined ? 'in-process' : 'ok' },
    sandbox: app.enclave.protections
  })
  // The runners are always confined by the allow-listed environment and Node's permission model;
  // bubblewrap depends on the machine, and /ready says whether it applied. As root, the runners
  // run as nobody wherever the checkout is (their files are staged when nobody cannot reach them).
  t.match(ready.json().sandbox, { permissionModel: true, environment: 'allow-list' })
  if (process.getuid?.() === 0) t.equal(ready.json().sandbox.user, 'nobody', 'as root, runners run as nobody')

  const missing = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'NOT_FOUND')
})

// RUNNER_SANDBOX: whichever layers this machine lacks, the start log and the start itself follow
// the policy. Bubblewrap hidden, the refusal's text is checked in test/enclave/runner-files.test.ts.
const { missing } = detectSandbox()

// The enclave plugin alone (with what it depends on): no database, so a start costs a runner.
async function startEnclave (t: Test, sandbox: string, lines: LogLine[] = []): Promise<FastifyInstance> {
  const fastify = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } } } })
  t.teardown(async () => await fastify.close())
  await fastify.register(configPlugin, { config: loadConfig({ JWT_SECRET: TEST_SECRET, ENCLAVE_RUNNERS: '1', RUNNER_SANDBOX: sandbox }) })
  await fastify.register(metricsPlugin)
  await fastify.register(enclavePlugin)
  await fastify.ready()
  return fastify
}
interface LogLine { level: number, msg: string, missing?: Array<{ layer: string }> }

t.test('best-effort: the start log says "confined" only with every layer, and warns naming each missing one', async (t) => {
  const lines: LogLine[] = []
  await startEnclave(t, 'best-effort', lines)
  const confined = lines.filter((l) => l.msg === 'enclave runners confined')
  const warned = lines.filter((l) => l.msg.startsWith('enclave runners NOT fully confined'))
  if (missing.length === 0) {
    t.equal(confined.length, 1, 'every layer in place: confined')
    t.equal(warned.length, 0)
  } else {
    t.equal(confined.length, 0, 'a layer missing: never "confined"')
    t.equal(warned.length, 1)
    t.equal(warned[0].level, 40, 'a warning')
    for (const m of missing) t.match(warned[0].msg, m.layer, `names ${m.layer}`)
    t.same(warned[0].missing?.map((m) => m.layer), missing.map((m) => m.layer))
  }
})

t.test('required: the service refuses to start without every layer, naming each', async (t) => {
  if (missing.length === 0) {
    const app = await startEnclave(t, 'required')
    t.equal(app.enclave.protections.network, 'none', 'starts: bubblewrap in place')
    return
  }
  const started = startEnclave(t, 'required')
  await t.rejects(started, SandboxError)
  await started.catch((err: Error) => { for (const m of missing) t.match(err.message, `${m.layer}: ${m.problem}; ${m.remedy}`) })
})
