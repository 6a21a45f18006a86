// The service these tests run against: the repo's server.ts started on a free port, embedded
// defaults, one runner, with a JWT secret of its own so the tests can mint tenant tokens.
import { spawn } from 'node:child_process'
import { createHmac, randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url')

export interface StartedService {
  baseUrl: string
  /** The identity key's thumbprint, as the start log prints it for pinning. */
  pinnedThumbprint: string
  /** An HS256 tenant token, valid for an hour, with the permissions given (none by default). */
  token: (tenantId: string, userId?: string, permissions?: string[]) => string
  stop: () => void
}

export async function startService (): Promise<StartedService> {
  const secret = randomBytes(32).toString('hex')
  const server = spawn(process.execPath, ['--no-node-snapshot', 'server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: secret, ENCLAVE_RUNNERS: '1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const [baseUrl, pinnedThumbprint] = await new Promise<[string, string]>((resolve, reject) => {
    let out = ''
    server.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      const pin = /identity key thumbprint \(pin it in clients\) ([A-Za-z0-9_-]{43})/.exec(out)
      if (listening?.[1] !== undefined && pin?.[1] !== undefined) resolve([listening[1], pin[1]])
    })
    server.once('exit', (code) => { reject(new Error(`server exited (${String(code)})`)) })
  })
  const token = (tenantId: string, userId = 'client-test', permissions: string[] = []): string => {
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
    const payload = b64url(JSON.stringify({ tenantId, userId, permissions, exp: Math.floor(Date.now() / 1000) + 3600 }))
    return `${header}.${payload}.${createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')}`
  }
  return { baseUrl, pinnedThumbprint, token, stop: () => { server.kill('SIGKILL') } }
}
