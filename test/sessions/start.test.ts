// The thumbprint is printed at start, and the README's client example works against a real
// server process as printed.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { startServer } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'
import { tokenFor, uniqueTenantId } from '../helper.ts'
import { IDENTITY_PEM, KAT } from './fixtures.ts'

const run = promisify(execFile)

t.test('the start log names the thumbprint; the example runs a script through a session', async (t) => {
  const server = await startServer({ SESSION_IDENTITY_KEY: IDENTITY_PEM }, (fn) => t.teardown(fn))
  const line = `encrypted sessions: identity key thumbprint (pin it in clients) ${KAT.thumbprint}`
  await waitFor(() => server.output().includes(line), { timeout: 10_000, interval: 50, message: 'the thumbprint line was logged' })
  const env = { PATH: process.env.PATH, ENCLAVE_URL: server.url, ENCLAVE_TOKEN: tokenFor({ tenantId: uniqueTenantId('sess-example') }) }
  const { stdout } = await run(process.execPath, ['examples/encrypted-session.ts', 'console.log("hello"); return 6 * 7'], { env: { ...env, ENCLAVE_PIN: KAT.thumbprint } })
  t.match(JSON.parse(stdout), { success: true, value: 42, logs: [{ level: 'log', message: 'hello' }] })
  const wrong = await run(process.execPath, ['examples/encrypted-session.ts'], { env: { ...env, ENCLAVE_PIN: 'not-the-pin' } }).catch((err: { code: number, stderr: string }) => err)
  t.not((wrong as { code: number }).code, 0)
  t.match((wrong as { stderr: string }).stderr, /EnclaveSessionError: The service's identity key does not match the pinned thumbprint/)
})
