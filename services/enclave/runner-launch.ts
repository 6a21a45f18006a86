// How a runner process is started: its command line, Node flags, environment and OS sandbox.
// Runners hold tenants' code, so they start with as little as possible, and what they got is
// reported (start log, /ready) instead of assumed.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

// The project's root: sources or dist/ live below it, and so does node_modules.
const APP_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../..' : '../..', import.meta.url))
// The node_modules the runner's packages load from (below APP_ROOT, unless the code was compiled
// elsewhere, as the enclave benchmark does).
const PACKAGES = resolve(dirname(createRequire(import.meta.url).resolve('isolated-vm')), '..')
const READABLE = PACKAGES.startsWith(APP_ROOT.endsWith(sep) ? APP_ROOT : APP_ROOT + sep) ? [APP_ROOT] : [APP_ROOT, PACKAGES]
const NOBODY = 65534
const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap'].find((path) => existsSync(path))
const ENV_COMMAND = ['/usr/bin/env', '/bin/env'].find((path) => existsSync(path))

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

function runnerFile (): string {
  return fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './runner.ts' : './runner.js', import.meta.url))
}

/**
 * Node flags: isolated-vm still needs --no-node-snapshot; the permission model lets the runner
 * read the app's files and load the isolated-vm addon, and nothing else: no file writes, no child
 * processes, no worker threads, no inspector, no WASI. No inherited --inspect or loader.
 */
export function runnerNodeFlags (): string[] {
  return [
    '--no-node-snapshot', '--permission', '--allow-addons', ...READABLE.map((path) => `--allow-fs-read=${path}`),
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

function build (node: string[], env: Record<string, string>, protections: RunnerProtections): LaunchSpec {
  const user = protections.user === 'nobody' ? { uid: NOBODY, gid: NOBODY } : {}
  // `env -i` starts the runner from an empty environment, whatever a spawn hook in this process
  // adds to the child's (a test runner's NODE_OPTIONS loader, say) or bubblewrap sets (PWD).
  const clean = ENV_COMMAND === undefined ? node : [ENV_COMMAND, '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...node]
  if (protections.network === 'none' && BWRAP !== undefined) return { command: BWRAP, args: [...BWRAP_ARGS, ...clean], env, ...user }
  return { command: clean[0], args: clean.slice(1), env, ...user }
}

export function launchSpec (config: string, protections: RunnerProtections): LaunchSpec {
  return build([process.execPath, ...runnerNodeFlags(), runnerFile(), config], runnerEnv(), protections)
}

let detected: RunnerProtections | undefined

/**
 * Tries, once, the strongest confinement this machine allows: bubblewrap (no network, read-only
 * file system) and, as root, the unprivileged user `nobody`; each only if a runner really starts
 * that way (the app's files must be readable by that user).
 */
export function detectProtections (): RunnerProtections {
  if (detected !== undefined) return detected
  const isRoot = process.getuid?.() === 0
  const candidates: RunnerProtections[] = []
  for (const user of isRoot ? ['nobody', 'service user'] as const : ['service user'] as const) {
    if (BWRAP !== undefined) candidates.push({ permissionModel: true, environment: 'allow-list', user, network: 'none', filesystem: 'read-only' })
    candidates.push({ permissionModel: true, environment: 'allow-list', user, network: 'host', filesystem: 'host' })
  }
  // Cheap probes (no Node start): the sandbox comes up, and that user can read the runner's file.
  const TEST = ['/usr/bin/test', '/bin/test'].find((path) => existsSync(path))
  const probe = TEST === undefined ? [process.execPath, '-e', '0'] : [TEST, '-r', runnerFile(), '-a', '-x', process.execPath]
  for (const candidate of candidates) {
    const spec = build(probe, {}, candidate)
    const result = spawnSync(spec.command, spec.args, { uid: spec.uid, gid: spec.gid, stdio: 'ignore', timeout: 10_000 })
    if (result.status === 0) { detected = candidate; return candidate }
  }
  detected = candidates[candidates.length - 1]
  return detected
}
