// The client against a real started service (the repository's server.ts on its embedded defaults).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createEnclaveClient, EnclaveError, type StreamEvent } from '../src/index.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const secret = randomBytes(32).toString('hex')
let server: ChildProcess
let baseUrl = ''

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')
function token (tenantId: string): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const payload = b64url(JSON.stringify({ tenantId, userId: 'client-test', permissions: [], exp: Math.floor(Date.now() / 1000) + 3600 }))
  return `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`
}

before(async () => {
  server = spawn(process.execPath, ['--no-node-snapshot', 'server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: secret, ENCLAVE_RUNNERS: '1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  baseUrl = await new Promise<string>((resolve, reject) => {
    let out = ''
    server.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match?.[1] !== undefined) resolve(match[1])
    })
    server.once('exit', (code) => { reject(new Error(`server exited (${String(code)})`)) })
  })
})
after(() => { server.kill('SIGKILL') })

test('execute, submit and wait, get', async () => {
  const client = createEnclaveClient({ baseUrl, token: token('client-a') })
  const result = await client.execute('console.log("hi"); return 1 + 1')
  assert.equal(result.success, true)
  assert.equal(result.value, 2)
  assert.deepEqual(result.logs, [{ level: 'log', message: 'hi' }])
  const { executionId, status } = await client.submit('return "queued"', { idempotencyKey: 'once' })
  assert.equal(status, 'queued')
  assert.equal((await client.wait(executionId)).value, 'queued')
  assert.equal((await client.get(executionId)).status, 'succeeded')
  assert.equal((await client.submit('return 2', { idempotencyKey: 'once' })).executionId, executionId)
})

test('events() resumes after a dropped connection: every event once, in order', async () => {
  let eventRequests = 0
  // The first events response is cut after its first line, as a dropped connection would be.
  const dropping: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!String(input).endsWith('/events') || eventRequests++ > 0 || res.body === null) return res
    const reader = res.body.getReader()
    const cut = new ReadableStream<Uint8Array>({
      async pull (controller) {
        const { value, done } = await reader.read()
        if (done || value === undefined) { controller.close(); return }
        const text = new TextDecoder().decode(value)
        const newline = text.indexOf('\n')
        if (newline >= 0) {
          controller.enqueue(new TextEncoder().encode(text.slice(0, newline + 1)))
          controller.close()
          await reader.cancel()
          return
        }
        controller.enqueue(value)
      }
    })
    return new Response(cut, { status: res.status, headers: res.headers })
  }
  const client = createEnclaveClient({ baseUrl, token: token('client-b'), fetch: dropping })
  const { executionId } = await client.submit('for (let i = 0; i < 5; i++) console.log("line " + i)\nreturn "done"')
  const seen: StreamEvent[] = []
  for await (const event of client.events(executionId)) seen.push(event)
  assert.ok(eventRequests >= 2, 'it reconnected')
  assert.deepEqual(seen.map((e) => e.seq), seen.map((_e, i) => i + 1))
  assert.deepEqual(seen.map((e) => e.type), ['queued', 'started', 'log', 'log', 'log', 'log', 'log', 'final'])
  assert.equal((seen.at(-1)!.data.result as { value: unknown }).value, 'done')
})

test('cancel a running execution; a finished one cannot be cancelled; refusals throw EnclaveError', async () => {
  const client = createEnclaveClient({ baseUrl, token: token('client-c') })
  const { executionId } = await client.submit('while (true) {}')
  for (let i = 0; i < 200 && (await client.get(executionId)).status !== 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  assert.equal(await client.cancel(executionId), true)
  const result = await client.wait(executionId)
  assert.equal(result.error?.code, 'CANCELLED')
  assert.equal(await client.cancel(executionId), false)
  await assert.rejects(client.get('00000000-0000-4000-8000-000000000000'), (err: unknown) => err instanceof EnclaveError && err.status === 404)
})
