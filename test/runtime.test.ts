// The runtime: npm scripts (and so this test) run the pinned Node 24; the service refuses an
// older Node with a message that says what to do, instead of an addon ABI error.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const check = readFileSync(new URL('../runtime-check.ts', import.meta.url), 'utf8')

t.test('tests run on Node 24 with V8 13.6', async (t) => {
  t.equal(Number(process.versions.node.split('.')[0]), 24)
  t.match(process.versions.v8, /^13\.6\./)
})

t.test('the runtime check passes on this Node and refuses an older one', async (t) => {
  const here = spawnSync(process.execPath, ['--input-type=module', '-e', check], { encoding: 'utf8' })
  t.equal(here.status, 0)
  t.equal(here.stderr, '')
  // The machine's own Node (20 on our machines and CI) stands in for a user's older Node.
  const system = spawnSync('/usr/bin/env', ['-i', 'PATH=/usr/local/bin:/usr/bin:/bin', 'node', '--version'], { encoding: 'utf8' })
  const major = Number(system.stdout.trim().replace(/^v/, '').split('.')[0])
  const older = spawnSync('/usr/bin/env', ['-i', 'PATH=/usr/local/bin:/usr/bin:/bin', 'node', '--input-type=module', '-e', check], { encoding: 'utf8' })
  if (major < 24) {
    t.equal(older.status, 1, `Node ${system.stdout.trim()} is refused`)
    t.match(older.stderr, /needs Node\.js 24 LTS or later; this is v\d+/)
    t.match(older.stderr, /Run `npm install`, or use your own Node 24/)
  } else {
    t.equal(older.status, 0, `Node ${system.stdout.trim()} is accepted`)
  }
})

t.test('the pinned node is an optional dependency, so --omit=optional skips it', async (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, Record<string, string>>
  t.match(pkg.optionalDependencies.node, /^\^24\./)
  t.equal(pkg.dependencies.node, undefined)
  // What npm would install with --omit=optional: no `node` package, nothing else left out.
  const tree = JSON.parse(execFileSync('npm', ['ls', '--omit=optional', '--json', '--depth=0'], { encoding: 'utf8' })) as { dependencies: Record<string, unknown> }
  t.notOk('node' in tree.dependencies, 'node is not installed with --omit=optional')
  t.ok('isolated-vm' in tree.dependencies && 'fastify' in tree.dependencies)
})
