// Issue 35: where a runner's files come from must not decide its user. A checkout that only root
// may enter (what `mktemp -d` makes) used to start the runners as root, silently.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { checkSandbox, detectSandbox, runnerNodeFlags, SandboxError } from '../../services/enclave/host/runner-launch.ts'
import { removeStage, runnerModules, stageRunnerFiles } from '../../services/enclave/host/runner-stage.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ENTRY = join(ROOT, 'services/enclave/runner/runner-main.ts')
const isRoot = process.getuid?.() === 0

t.test('the runner\'s modules and packages are found from its entry', async (t) => {
  const { modules, packages } = runnerModules(ENTRY)
  for (const file of ['runner/runner-main.ts', 'runner/isolate-run.ts', 'runner/isolate-pool.ts', 'protocol/line-channel.ts', 'common/ast-check.ts']) {
    t.ok(modules.includes(join(ROOT, 'services/enclave', file)), file)
  }
  t.ok(modules.includes(join(ROOT, 'schemas/execution-result.ts')), 'a module outside services/enclave')
  const names = packages.map((p) => p.slice(p.lastIndexOf('node_modules/') + 13))
  for (const name of ['isolated-vm', 'node-gyp-build', 'acorn']) t.ok(names.includes(name), `package ${name}`)
})

t.test('staged files are root-owned, read-only to others, load as the runner user, and are removed', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'enclave-stage-test-'))
  chmodSync(base, 0o755) // as the OS temp dir is: user nobody may enter
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const files = stageRunnerFiles(process.execPath, ENTRY, ROOT, base)
  const stage = files.stage!
  t.equal(statSync(stage).mode & 0o777, 0o755, 'the stage directory is 0755')
  for (const path of [files.node, files.entry, join(stage, 'app/package.json'), join(stage, 'app/node_modules/isolated-vm/package.json')]) {
    const st = statSync(path)
    t.equal(st.uid, process.getuid!(), `${path.slice(stage.length)} is the service user's`)
    t.equal(st.mode & 0o022, 0, `${path.slice(stage.length)} is not writable by others`)
  }
  // The runner's own loading path: its pool module and the isolated-vm addon, under the
  // permission model that allows reads of the stage only, as the user a runner runs as.
  const pool = pathToFileURL(join(stage, 'app/services/enclave/runner/isolate-pool.ts')).href
  // `env -i`, as runners start: tap's spawn hook would add its loader to any other environment.
  const run = spawnSync('env', ['-i', files.node, ...runnerNodeFlags(files.readable), '--input-type=module', '-e', `const m = await import(${JSON.stringify(pool)}); console.log(typeof m.IsolatePool)`], {
    cwd: '/', env: {}, encoding: 'utf8', timeout: 30_000, ...(isRoot ? { uid: 65534, gid: 65534 } : {})
  })
  t.equal(String(run.stdout).trim(), 'function', `loads from the stage${isRoot ? ' as nobody' : ''}: ${run.stderr}`)
  removeStage(stage)
  t.notOk(existsSync(stage), 'removed')
})

t.test('files not root\'s alone are copied root-owned and read-only; what Node never loads is left out; stale stages go', async (t) => {
  const src = mkdtempSync(join(tmpdir(), 'enclave-stage-src-'))
  const base = mkdtempSync(join(tmpdir(), 'enclave-stage-base-'))
  t.teardown(() => { rmSync(src, { recursive: true, force: true }); rmSync(base, { recursive: true, force: true }) })
  const write = (path: string, text: string, mode = 0o664): void => {
    mkdirSync(join(src, path, '..'), { recursive: true })
    writeFileSync(join(src, path), text)
    chmodSync(join(src, path), mode)
  }
  write('app/main.js', "import './lib/b.js'\nimport pkg from 'pkg'\nexport { x } from './missing.js'\n")
  write('app/lib/b.js', 'export const b = 1\n')
  write('app/node_modules/pkg/package.json', '{ "name": "pkg", "dependencies": { "dep": "1" } }')
  write('app/node_modules/pkg/index.js', 'module.exports = 1\n')
  write('app/node_modules/pkg/index.d.ts', 'export {}\n')
  write(`app/node_modules/pkg/prebuilds/${process.platform}-${process.arch}/pkg.node`, 'addon')
  write('app/node_modules/pkg/prebuilds/other-os/pkg.node', 'addon')
  write('app/node_modules/dep/package.json', '{ "name": "dep" }')
  write('bin/node', '#!/bin/sh\n', 0o775)
  // Group-writable (and, as root, someone else's): a hard link would let others change them.
  if (isRoot) spawnSync('chown', ['-R', '1000:1000', src])
  // A stage left by a process that is gone, and one of a live process.
  const gone = spawnSync(process.execPath, ['-e', '0']).pid
  const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]
  mkdirSync(join(base, `tenant-enclave-runner-${ns}-${gone}-old`))
  mkdirSync(join(base, `tenant-enclave-runner-${ns}-${process.ppid}-live`))
  mkdirSync(join(base, `tenant-enclave-runner-1-${gone}-other-namespace`))
  const files = stageRunnerFiles(join(src, 'bin/node'), join(src, 'app/main.js'), join(src, 'app'), base)
  const stage = files.stage!
  t.teardown(() => removeStage(stage))
  t.notOk(existsSync(join(base, `tenant-enclave-runner-${ns}-${gone}-old`)), 'a dead process\'s stage is removed')
  t.ok(existsSync(join(base, `tenant-enclave-runner-${ns}-${process.ppid}-live`)), 'a live one\'s is kept')
  t.ok(existsSync(join(base, `tenant-enclave-runner-1-${gone}-other-namespace`)), 'and one of another pid namespace')
  for (const [path, mode] of [['node', 0o755], ['app/main.js', 0o644], ['app/lib/b.js', 0o644], ['app/node_modules/pkg/index.js', 0o644], ['app/node_modules/dep/package.json', 0o644]] as const) {
    const st = statSync(join(stage, path))
    t.equal(st.mode & 0o777, mode, `${path} ${mode.toString(8)}`)
    t.equal(st.uid, process.getuid!(), `${path} is the service user's`)
  }
  t.ok(existsSync(join(stage, `app/node_modules/pkg/prebuilds/${process.platform}-${process.arch}/pkg.node`)), 'this platform\'s addon')
  t.notOk(existsSync(join(stage, 'app/node_modules/pkg/prebuilds/other-os')), 'not another platform\'s')
  t.notOk(existsSync(join(stage, 'app/node_modules/pkg/index.d.ts')), 'no type declarations')
  t.equal(statSync(join(stage, 'app/lib')).mode & 0o777, 0o755)
  t.throws(() => stageRunnerFiles(join(src, 'bin/node'), join(src, 'app/main.js'), join(src, 'app/lib'), base), /outside/, 'a module outside the app root is refused')
})

t.test('with bubblewrap hidden: required refuses, naming it and how to provide it; best-effort lists it', async (t) => {
  const detection = detectSandbox({ bubblewrap: null })
  t.equal(detection.protections.network, 'host')
  const layer = detection.missing.find((m) => m.layer === 'bubblewrap')
  t.match(layer, { problem: 'bubblewrap is not installed', remedy: /install bubblewrap/ })
  t.throws(() => checkSandbox('required', detection), SandboxError)
  t.throws(() => checkSandbox('required', detection), { message: /RUNNER_SANDBOX=required, but the runner sandbox lacks .*bubblewrap.*\n- bubblewrap: bubblewrap is not installed; install bubblewrap/s })
  const soft = checkSandbox('best-effort', detection)
  t.equal(soft.confined, false)
  t.ok(soft.missing.some((m) => m.layer === 'bubblewrap'), 'the warning lists bubblewrap')
  // The user layer does not depend on bubblewrap or on where the checkout is.
  if (isRoot) t.equal(detection.protections.user, 'nobody', 'as root, runners run as nobody')
  else t.match(detection.missing.find((m) => m.layer === 'user'), { remedy: /run the service as root/ })
})

t.test('a checkout only root may enter: the runner still runs as nobody', { skip: isRoot ? false : 'needs root (user nobody)' }, async (t) => {
  // A clone made in `mktemp -d` (0700), node_modules in it as `npm ci` puts it; hard links keep
  // this fast without making any file more readable than in the source tree.
  const dir = mkdtempSync(join(tmpdir(), 'enclave-0700-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.equal(statSync(dir).mode & 0o777, 0o700)
  const repo = join(dir, 'repo')
  mkdirSync(join(repo, 'node_modules'), { recursive: true })
  const copy = (from: string, to: string): void => {
    // Hard links unless the temp dir is another file system.
    if (spawnSync('cp', ['-al', from, to]).status === 0) return
    rmSync(to, { recursive: true, force: true })
    const r = spawnSync('cp', ['-a', from, to])
    if (r.status !== 0) throw new Error(`cp ${from}: ${String(r.stderr)}`)
  }
  for (const entry of ['services', 'schemas', 'package.json']) copy(join(ROOT, entry), join(repo, entry))
  for (const name of ['node', 'isolated-vm', 'node-gyp-build', 'acorn', 'typebox']) copy(realpathSync(join(ROOT, 'node_modules', name)), join(repo, 'node_modules', name))
  const node = join(repo, 'node_modules/node/bin/node')
  const script = `
    import { statSync } from 'node:fs'
    const { Enclave } = await import('./services/enclave/index.ts')
    const { detectSandbox } = await import('./services/enclave/host/runner-launch.ts')
    const enclave = new Enclave({ runners: 1 })
    await enclave.ready()
    const [pid] = enclave.runnerPids()
    const uid = Number(/^Uid:\\s+(\\d+)/m.exec((await import('node:fs')).readFileSync('/proc/' + pid + '/status', 'utf8'))[1])
    const result = await enclave.run('return 1 + 1')
    const { files } = detectSandbox()
    const st = files.stage === undefined ? undefined : statSync(files.stage)
    console.log(JSON.stringify({ uid, value: result.value, user: enclave.protections.user, stage: files.stage, stageUid: st?.uid, stageMode: st && (st.mode & 0o777) }))
    await enclave.dispose()
  `
  const run = spawnSync(node, ['--no-node-snapshot', '--input-type=module', '-e', script], { cwd: repo, env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 60_000 })
  t.equal(run.status, 0, run.stderr)
  const out = JSON.parse(run.stdout) as { uid: number, value: number, user: string, stage?: string, stageUid?: number, stageMode?: number }
  t.equal(out.uid, 65534, 'the runner\'s real uid is nobody\'s')
  t.equal(out.user, 'nobody')
  t.equal(out.value, 2, 'and it runs code')
  t.ok(out.stage !== undefined && !out.stage.startsWith(dir), 'its files were staged outside the checkout')
  t.equal(out.stageUid, 0, 'owned by root')
  t.equal(out.stageMode, 0o755, 'read-only to others')
  t.notOk(existsSync(out.stage!), 'and removed when the service exited')
})
