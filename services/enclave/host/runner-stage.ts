// A copy of what a runner reads (Node, its entry module and imports, their packages), made at
// start when its user cannot reach the checkout: a clone in a directory only root may enter
// (`mktemp -d`, many CI systems and image builds) must not cost the runners their own user.
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'

/** Where a runner starts from. */
export interface RunnerFiles {
  node: string
  entry: string
  /** What Node's permission model lets the runner read. */
  readable: string[]
  /** The staging directory when the files are a copy (removed at exit). */
  stage?: string
}

// Stages are named by pid namespace and pid: a temp dir shared with other namespaces (containers)
// holds stages whose pids mean nothing here, and they are left alone.
const PREFIX = `tenant-enclave-runner-${pidNamespace()}-`

function pidNamespace (): string {
  try { return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0' } catch { return '0' }
}
// Static and dynamic imports and re-exports of a module; a match that names no file is skipped.
const IMPORT = /\b(?:import|export)\s*(?:[^'"`;]*?\sfrom\s*)?['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g

/** The entry module and every module of the app it imports, then the packages they name. */
export function runnerModules (entry: string): { modules: string[], packages: string[] } {
  const modules = [entry]
  const packages = new Set<string>()
  for (let i = 0; i < modules.length; i++) {
    for (const m of readFileSync(modules[i], 'utf8').matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]
      if (spec.startsWith('.')) {
        const file = resolve(dirname(modules[i]), spec)
        if (!modules.includes(file) && existsSync(file) && statSync(file).isFile()) modules.push(file)
      } else if (!spec.startsWith('node:') && !isBuiltin(spec)) {
        const root = packageRoot(spec, dirname(modules[i]))
        if (root !== undefined) addPackage(root, packages)
      }
    }
  }
  return { modules, packages: [...packages] }
}

function packageRoot (spec: string, from: string): string | undefined {
  const name = spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dirname(dir) === dir) return undefined
  }
}

function addPackage (root: string, packages: Set<string>): void {
  if (packages.has(root)) return
  packages.add(root)
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>, optionalDependencies?: Record<string, string> }
  for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
    const dep = packageRoot(name, root)
    if (dep !== undefined) addPackage(dep, packages)
  }
}

function makeDir (path: string): void {
  if (existsSync(path)) return
  makeDir(dirname(path))
  mkdirSync(path)
  chmodSync(path, 0o755) // whatever the umask
}

// A hard link costs nothing (Node is over 100 MB) and shares the inode: only when root owns it
// and no one else may write it is it as good as a root-owned read-only copy.
function place (source: string, target: string, executable: boolean): void {
  makeDir(dirname(target))
  const st = statSync(source)
  const readable = (st.mode & 0o004) !== 0 && (!executable || (st.mode & 0o001) !== 0)
  if (st.uid === 0 && (st.mode & 0o022) === 0 && readable) {
    try { linkSync(source, target); return } catch { /* another file system: copy */ }
  }
  copyFileSync(source, target)
  // libuv's copy keeps the source's owner, who could then change the copy: it becomes ours. (The
  // stage stays 0700 until it is complete, so no one else reaches a file before this.)
  chownSync(target, process.getuid?.() ?? 0, process.getgid?.() ?? 0)
  chmodSync(target, executable ? 0o755 : 0o644)
}

// What Node never loads from a package (type declarations, source maps, docs, archives, C++
// sources) and native prebuilds for other platforms: left out, staging is then about half as long.
const UNLOADED = /\.(d\.[cm]?ts|map|md|markdown|tgz|cc|cpp|c|h|hpp|gyp|gypi)$/i
const PLATFORM = `${process.platform}-${process.arch}`

function placeTree (source: string, target: string): void {
  for (const entry of readdirSync(source, { withFileTypes: true })) {
    const from = join(source, entry.name)
    // Symbolic links (a package's .bin) are skipped: they could point anywhere.
    if (entry.isDirectory()) {
      if (!(source.endsWith(`${sep}prebuilds`) && entry.name !== PLATFORM)) placeTree(from, join(target, entry.name))
    } else if (entry.isFile() && !UNLOADED.test(entry.name)) place(from, join(target, entry.name), (statSync(from).mode & 0o111) !== 0)
  }
}

/**
 * Copies the runner's files into a fresh directory in the OS temp dir, owned by the service's
 * user (root) and read-only to everyone else; it is removed when the process exits.
 */
export function stageRunnerFiles (node: string, entry: string, appRoot: string, base = tmpdir()): RunnerFiles {
  removeStaleStages(base)
  const stage = mkdtempSync(join(base, `${PREFIX}${process.pid}-`))
  process.once('exit', () => removeStage(stage))
  try {
    const app = join(stage, 'app')
    const { modules, packages } = runnerModules(entry)
    for (const file of modules) {
      const rel = relative(appRoot, file)
      if (rel.startsWith('..')) throw new Error(`the runner imports ${file}, outside ${appRoot}`)
      place(file, join(app, rel), false)
    }
    for (const root of packages) placeTree(root, join(app, 'node_modules', root.slice(root.lastIndexOf(`${sep}node_modules${sep}`) + 14)))
    // The sandbox modules' bundles, which the runner reads when a script imports one.
    const bundles = join(appRoot, 'sandbox-modules', 'dist')
    if (existsSync(bundles)) placeTree(bundles, join(app, 'sandbox-modules', 'dist'))
    // The app's modules are ES modules, as the app's package.json says.
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n')
    chmodSync(join(app, 'package.json'), 0o644)
    place(node, join(stage, 'node'), true)
    chmodSync(stage, 0o755)
    return { node: join(stage, 'node'), entry: join(app, relative(appRoot, entry)), readable: [app], stage }
  } catch (err) {
    removeStage(stage)
    throw err
  }
}

export function removeStage (stage: string): void {
  rmSync(stage, { recursive: true, force: true })
}

// Stages of processes that died without their exit handler (SIGKILL, a crash).
function removeStaleStages (base: string): void {
  let names: string[]
  try { names = readdirSync(base) } catch { return }
  for (const name of names) {
    const pid = name.startsWith(PREFIX) ? Number(/^(\d+)-/.exec(name.slice(PREFIX.length))?.[1]) : NaN
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue
    const path = join(base, name)
    const st = lstatSync(path, { throwIfNoEntry: false })
    if (st?.isDirectory() === true && st.uid === process.getuid?.()) removeStage(path)
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}
