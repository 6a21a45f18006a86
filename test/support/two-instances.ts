// The two-instance tests' setup: two server processes on the same PostgreSQL and Redis, and a
// plain HTTP call to either. Without DATABASE_URL and REDIS_URL (the embedded defaults) each
// instance would have its own state, so these tests run only where both are set.
import { startServer, type ServerProcess } from './server-process.ts'

/** Whether the real servers are there (.ci/run starts them). */
export const HAS_SHARED_SERVERS = process.env.DATABASE_URL !== undefined && process.env.REDIS_URL !== undefined

/** Starts two instances with `env`; both stop when the test ends. */
export async function startTwoInstances (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<[ServerProcess, ServerProcess]> {
  const teardown = (fn: () => unknown): void => { t.teardown(fn) }
  return await Promise.all([startServer(env, teardown), startServer(env, teardown)]) as [ServerProcess, ServerProcess]
}

/** One request to `server`; `json` is undefined when the body is empty or no JSON. */
export async function call (
  server: ServerProcess, method: string, path: string, headers: Record<string, string>, body?: unknown, extra: Record<string, string> = {}
): Promise<{ status: number, json: any, text: string }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...headers, ...extra, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, json, text }
}
