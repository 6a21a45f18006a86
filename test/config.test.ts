import { spawnSync } from 'node:child_process'
import t from 'tap'
import { corsOrigins, loadConfig, redisUrl } from '../plugins/config.ts'
import { parseClusterUrl } from '../services/store/redis-connection.ts'

const SECRET = 'x'.repeat(32)

t.test('defaults', async (t) => {
  const config = loadConfig({ JWT_SECRET: SECRET })
  t.match(config, { PORT: 3000, HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_APP_ROLE: 'enclave_app', RATE_LIMIT_PER_MINUTE: 600 })
  t.equal(config.DATABASE_URL, undefined)
  t.match(config, { JWT_REQUIRE_EXP: true, DOCS_ENABLED: true, CORS_ORIGINS: '', HTTP_HEADERS_TIMEOUT_MS: 10_000, HTTP_REQUEST_TIMEOUT_MS: 30_000 })
  t.equal(config.METRICS_TOKEN, undefined)
  t.equal(config.EXECUTION_QUEUE_NAME, 'executions')
  t.equal(config.RUNNER_SANDBOX, 'best-effort', 'development default; the image sets required')
  t.equal(loadConfig({ JWT_SECRET: SECRET, RUNNER_SANDBOX: 'required' }).RUNNER_SANDBOX, 'required')
  t.same(corsOrigins(loadConfig({ JWT_SECRET: SECRET, CORS_ORIGINS: ' https://a.example , http://[::1]:8080,' })), ['https://a.example', 'http://[::1]:8080'])
})

t.test('a bad value names its variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ JWT_SECRET: SECRET, PORT: 'eighty' }, /PORT/],
    [{ JWT_SECRET: SECRET, PORT: '70000' }, /PORT/],
    [{ JWT_SECRET: SECRET, LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ JWT_SECRET: SECRET, DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ JWT_SECRET: SECRET, REDIS_URL: 'http://x' }, /REDIS_URL/],
    [{ JWT_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0' }, /RATE_LIMIT_PER_MINUTE/],
    [{ JWT_SECRET: SECRET, DATABASE_APP_ROLE: 'app; drop table x' }, /DATABASE_APP_ROLE/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET/],
    [{}, /JWT_SECRET/],
    [{ JWT_SECRET: SECRET, JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----x' }, /JWT_SECRET and JWT_PUBLIC_KEY/],
    [{ JWT_SECRET: SECRET, DATABASE_ADMIN_URL: 'postgres://x' }, /DATABASE_URL/],
    [{ JWT_SECRET: SECRET, JWT_REQUIRE_EXP: 'maybe' }, /JWT_REQUIRE_EXP/],
    [{ JWT_SECRET: SECRET, METRICS_TOKEN: 'short' }, /METRICS_TOKEN/],
    [{ JWT_SECRET: SECRET, CORS_ORIGINS: 'https://ok.example,*' }, /CORS_ORIGINS lists "\*"/],
    [{ JWT_SECRET: SECRET, CORS_ORIGINS: 'https://app.example.com/path' }, /CORS_ORIGINS/],
    [{ JWT_SECRET: SECRET, HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }, /HTTP_HEADERS_TIMEOUT_MS/],
    [{ JWT_SECRET: SECRET, EXECUTION_QUEUE_NAME: 'Runs:all' }, /EXECUTION_QUEUE_NAME/],
    [{ JWT_SECRET: SECRET, RUNNER_SANDBOX: 'off' }, /RUNNER_SANDBOX/],
    [{ JWT_SECRET: SECRET, REDIS_URL: 'redis+cluster://a:1', REDIS_CLUSTER_NODES: 'b:2' }, /only one of REDIS_URL and REDIS_CLUSTER_NODES/],
    [{ JWT_SECRET: SECRET, REDIS_URL: 'redis+cluster://a:1,b' }, /REDIS_URL: "b" is not a cluster node like host:port/],
    [{ JWT_SECRET: SECRET, REDIS_URL: 'redis+cluster://a:1/3' }, /REDIS_URL: a Redis Cluster has only database 0/],
    [{ JWT_SECRET: SECRET, REDIS_CLUSTER_NODES: 'a:1,b:99999' }, /REDIS_CLUSTER_NODES: "b:99999"/]
  ]
  for (const [env, pattern] of cases) {
    t.throws(() => loadConfig(env), pattern, JSON.stringify(env))
  }
})

t.test('Redis: one server, or a cluster by URL or by its nodes', async (t) => {
  t.equal(redisUrl(loadConfig({ JWT_SECRET: SECRET })), undefined, 'unset: in process')
  t.equal(redisUrl(loadConfig({ JWT_SECRET: SECRET, REDIS_URL: 'redis://r:6379/2' })), 'redis://r:6379/2')
  t.equal(redisUrl(loadConfig({ JWT_SECRET: SECRET, REDIS_CLUSTER_NODES: ' r1:7000, r2:7001 ' })), 'redis+cluster://r1:7000,r2:7001')
  const url = 'rediss+cluster://app:p%40ss@r1:7000,[::1]:7001/'
  t.equal(redisUrl(loadConfig({ JWT_SECRET: SECRET, REDIS_URL: url })), url)
  t.same(parseClusterUrl(url), { tls: true, username: 'app', password: 'p@ss', nodes: [{ host: 'r1', port: 7000 }, { host: '::1', port: 7001 }] })
  t.same(parseClusterUrl('redis+cluster://:secret@r1:7000'), { tls: false, password: 'secret', nodes: [{ host: 'r1', port: 7000 }] })
})

t.test('the server refuses to start on a bad value and says which', async (t) => {
  const result = spawnSync(process.execPath, ['--no-node-snapshot', 'server.ts'], {
    env: { PATH: process.env.PATH, JWT_SECRET: SECRET, PORT: 'eighty' },
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(result.status, 1)
  t.match(result.stderr, /PORT/)
})
