// How a runner process is started: its command line, Node flags and environment. Runners hold
// tenants' code, so they start with as little as possible: an allow-listed environment (no
// secrets: JWT_SECRET, DATABASE_URL, ... never reach them) and Node's permission model.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// The project's root: sources or dist/ live below it, and so does node_modules.
const APP_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../..' : '../..', import.meta.url))

/**
 * The only variables a runner inherits. TZ keeps Date's local time the same as the service's;
 * NODE_V8_COVERAGE is a directory name that coverage tools set (it lets a test run measure the
 * runner's code). Anything else, secrets included, is left behind.
 */
export const RUNNER_ENV_ALLOW_LIST = ['TZ', 'NODE_V8_COVERAGE'] as const

// `env -i` starts the runner from an empty environment, whatever a spawn hook in this process
// adds to the child's (a test runner's NODE_OPTIONS loader, say).
const ENV_COMMAND = ['/usr/bin/env', '/bin/env'].find((path) => existsSync(path))

export interface LaunchSpec {
  command: string
  args: string[]
  env: Record<string, string>
}

/** The runner's entry file: TypeScript sources (Node 24 strips the types) or compiled dist/. */
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
    '--no-node-snapshot', '--permission', '--allow-addons', `--allow-fs-read=${APP_ROOT}`,
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

export function launchSpec (config: string): LaunchSpec {
  const env = runnerEnv()
  const node = [process.execPath, ...runnerNodeFlags(), runnerFile(), config]
  if (ENV_COMMAND === undefined) return { command: node[0], args: node.slice(1), env }
  return { command: ENV_COMMAND, args: ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...node], env }
}
