// How a runner process is started: its command line, Node flags, environment and OS sandbox.
// Runners hold tenants' code, so they start with as little as possible, and what they got is
// reported (start log, /ready) instead of assumed.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { removeStage, stageRunnerFiles, type RunnerFiles } from './runner-stage.ts'

// The project's root: sources or dist/ live below it, and so does node_modules.
const APP_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../..' : '../../..', import.meta.url))
// The node_modules the runner's packages load from (below APP_ROOT, unless the code was compiled
// elsewhere, as the enclave benchmark does).
const PACKAGES = resolve(dirname(createRequire(import.meta.url).resolve('isolated-vm')), '..')
const READABLE = PACKAGES.startsWith(APP_ROOT.endsWith(sep) ? APP_ROOT : APP_ROOT + sep) ? [APP_ROOT] : [APP_ROOT, PACKAGES]
const NOBODY = 65534
const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap'].find((path) => existsSync(path))
const ENV_COMMAND = ['/usr/bin/env', '/bin/env'].find((path) => existsSync(path))
const TEST = ['/usr/bin/test', '/bin/test'].find((path) => existsSync(path))

/**
 * The only variables a runner inherits (an allow-list: secrets such as JWT_SECRET or DATABASE_URL
 * never reach it). TZ keeps Date's local time the same as the service's; NODE_V8_COVERAGE names
 * a directory that coverage tools set.
 */
export const RUNNER_ENV_ALLOW_LIST = ['TZ', 'NODE_V8_COVERAGE'] as const

/** What confines the runners, as detected once on this machine. */
export interface RunnerProtections {
  /** Node's permission model: reads of the app's files and the isolated-vm addon only. */
  permissionModel: true
  /** The environment is the allow-list above. */
  environment: 'allow-list'
  /** 'nobody' when the service runs as root; otherwise the service's own user. */
  user: 'nobody' | 'service user'
  /** bubblewrap: no network, read-only file system, new session. */
  network: 'none' | 'host'
  filesystem: 'read-only' | 'host'
}

export interface LaunchSpec { command: string, args: string[], env: Record<string, string>, uid?: number, gid?: number }

/** What `RUNNER_SANDBOX` asks for: refuse to start without every layer, or warn and go on. */
export type SandboxPolicy = 'required' | 'best-effort'

/** A layer of the runner sandbox this machine did not give, why, and how to provide it. */
export interface MissingLayer { layer: 'user' | 'bubblewrap', problem: string, remedy: string }

export interface SandboxDetection {
  protections: RunnerProtections
  missing: MissingLayer[]
  files: RunnerFiles
  bubblewrap: string | undefined
}

function inPlace (): RunnerFiles {
  return { node: process.execPath, entry: fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../runner/runner-main.ts' : '../runner/runner-main.js', import.meta.url)), readable: READABLE }
}

/**
 * Node flags: isolated-vm still needs --no-node-snapshot; the permission model lets the runner
 * read the app's files and load the isolated-vm addon, and nothing else: no file writes, no child
 * processes, no worker threads, no inspector, no WASI. No inherited --inspect or loader.
 */
export function runnerNodeFlags (readable: string[] = current().files.readable): string[] {
  return [
    '--no-node-snapshot', '--permission', '--allow-addons', ...readable.map((path) => `--allow-fs-read=${path}`),
    // isolated-vm's loader (node-gyp-build) asks whether this is Alpine before picking a binary.
    '--allow-fs-read=/etc/alpine-release',
    // The addon is isolated-vm, which we pin; Node's warning about addons says nothing new.
    '--disable-warning=SecurityWarning'
  ]
}

export function runnerEnv (source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of RUNNER_ENV_ALLOW_LIST) {
    const value = source[name]
    if (value !== undefined) env[name] = value
  }
  return env
}

const BWRAP_ARGS = [
  '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc',
  '--unshare-net', '--unshare-ipc', '--unshare-uts', '--die-with-parent', '--new-session', '--'
]

function build (node: string[], env: Record<string, string>, protections: RunnerProtections, bwrap: string | undefined): LaunchSpec {
  const user = protections.user === 'nobody' ? { uid: NOBODY, gid: NOBODY } : {}
  // `env -i` starts the runner from an empty environment, whatever a spawn hook in this process
  // adds to the child's (a test runner's NODE_OPTIONS loader, say) or bubblewrap sets (PWD).
  const clean = ENV_COMMAND === undefined ? node : [ENV_COMMAND, '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...node]
  if (protections.network === 'none' && bwrap !== undefined) return { command: bwrap, args: [...BWRAP_ARGS, ...clean], env, ...user }
  return { command: clean[0], args: clean.slice(1), env, ...user }
}

export function launchSpec (config: string, protections: RunnerProtections): LaunchSpec {
  const { files, bubblewrap } = current()
  return build([files.node, ...runnerNodeFlags(files.readable), files.entry, config], runnerEnv(), protections, bubblewrap)
}

let detected: SandboxDetection | undefined
function current (): SandboxDetection { return detected ?? detectSandbox() }

/** The protections runners start with on this machine (see detectSandbox). */
export function detectProtections (): RunnerProtections {
  return current().protections
}

// Cheap probes (no Node start): the sandbox comes up, and that user can read the runner's entry
// and run Node.
function probe (candidate: RunnerProtections, files: RunnerFiles, bwrap: string | undefined): { ok: boolean, error: string } {
  const check = TEST === undefined ? [files.node, '-e', '0'] : [TEST, '-r', files.entry, '-a', '-x', files.node]
  const spec = build(check, {}, candidate, bwrap)
  const result = spawnSync(spec.command, spec.args, { uid: spec.uid, gid: spec.gid, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 10_000 })
  const error = result.error?.message ?? (result.stderr ?? '').trim().split('\n')[0]
  return { ok: result.status === 0, error }
}

/**
 * Tries, once, the strongest confinement this machine allows: bubblewrap (no network, read-only
 * file system) and the unprivileged user `nobody` (as root, or with CAP_SETUID); each only if a
 * runner really starts that way. When `nobody` cannot reach the runner's files in place (a
 * checkout only root may enter), they are staged where it can. `bubblewrap: null` hides it (tests).
 */
export function detectSandbox (options: { bubblewrap?: string | null } = {}): SandboxDetection {
  if (options.bubblewrap === undefined && detected !== undefined) return detected
  const bwrap = options.bubblewrap === undefined ? BWRAP : options.bubblewrap ?? undefined
  const uid = process.getuid?.()
  const base = { permissionModel: true, environment: 'allow-list' } as const
  const plain = (user: RunnerProtections['user']): RunnerProtections => ({ ...base, user, network: 'host', filesystem: 'host' })
  let files = inPlace()
  let userProblem = uid === 0 ? '' : `the service runs as uid ${uid ?? '?'} without CAP_SETUID, so runners run as that same user`
  if (!probe(plain('nobody'), files, undefined).ok && uid === 0) {
    try {
      const staged = stageRunnerFiles(files.node, files.entry, APP_ROOT)
      const check = probe(plain('nobody'), staged, undefined)
      if (check.ok) files = staged
      else {
        removeStage(staged.stage!)
        userProblem = `user nobody cannot reach the runner's files, even copied to ${dirname(staged.stage!)} (${check.error || 'not readable'})`
      }
    } catch (err) {
      userProblem = `user nobody cannot reach the runner's files, and copying them failed: ${(err as Error).message}`
    }
  }
  let bwrapProblem = bwrap === undefined ? 'bubblewrap is not installed' : ''
  let chosen: RunnerProtections | undefined
  for (const user of ['nobody', 'service user'] as const) {
    if (bwrap !== undefined) {
      const candidate: RunnerProtections = { ...base, user, network: 'none', filesystem: 'read-only' }
      const result = probe(candidate, files, bwrap)
      if (result.ok) { chosen = candidate; break }
      bwrapProblem ||= `${bwrap} could not start a sandbox: ${result.error || 'it failed'}`
    }
    if (probe(plain(user), files, bwrap).ok) { chosen = plain(user); break }
  }
  chosen ??= plain('service user')
  if (chosen.user !== 'nobody' && files.stage !== undefined) { removeStage(files.stage); files = inPlace() }
  const missing: MissingLayer[] = []
  if (chosen.user !== 'nobody') {
    missing.push({
      layer: 'user',
      problem: userProblem || 'runners cannot start as user nobody',
      remedy: uid === 0 ? 'make the OS temp dir (TMPDIR) one that user nobody may enter' : 'run the service as root (it starts the runners as user nobody), or grant it CAP_SETUID and CAP_SETGID'
    })
  }
  if (chosen.network !== 'none') {
    missing.push({
      layer: 'bubblewrap',
      problem: bwrapProblem || 'bubblewrap could not start a sandbox',
      remedy: bwrap === undefined
        ? 'install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; the image installs it)'
        : 'let bubblewrap create namespaces (as root, or with unprivileged user namespaces; in a container: seccomp and AppArmor profiles that allow them, and an unmasked /proc; see compose.yaml)'
    })
  }
  const detection = { protections: chosen, missing, files, bubblewrap: bwrap }
  if (options.bubblewrap === undefined) detected = detection
  return detection
}

export class SandboxError extends Error {
  override name = 'SandboxError'
}

/**
 * Applies RUNNER_SANDBOX to what was detected: under `required` a missing layer throws (naming it
 * and how to provide it); under `best-effort` it is returned for the start log to warn about.
 */
export function checkSandbox (policy: SandboxPolicy, detection: SandboxDetection = current()): { confined: boolean, missing: MissingLayer[] } {
  const { missing } = detection
  if (missing.length > 0 && policy === 'required') {
    const lines = missing.map((m) => `${m.layer}: ${m.problem}; ${m.remedy}`)
    throw new SandboxError(`RUNNER_SANDBOX=required, but the runner sandbox lacks ${missing.map((m) => m.layer).join(' and ')}:\n- ${lines.join('\n- ')}\n(RUNNER_SANDBOX=best-effort starts anyway, with a warning)`)
  }
  return { confined: missing.length === 0, missing }
}
