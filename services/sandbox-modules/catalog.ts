// The sandbox modules this build offers (npm run build:modules writes them, see
// scripts/build-sandbox-modules.ts): their names, versions and descriptions for GET /api/modules,
// and their bundled type declarations for GET /api/modules.d.ts. Read once at start: the list is
// fixed at build time, never downloaded.
import { existsSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'

export interface SandboxModule { name: string, version: string, description: string }

export interface ModuleCatalog {
  modules: SandboxModule[]
  names: string[]
  /** `declare module 'name' { ... }` for every module. */
  declarations: string
  /** Names the declarations (an ETag). */
  etag: string
}

/** sandbox-modules/dist below the project's root, from the sources or from dist/. */
export const BUILT_MODULES_DIR = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../sandbox-modules/dist/' : '../../sandbox-modules/dist/', import.meta.url))

/** The catalog; empty (with no error) when the modules were never built. */
export function loadModuleCatalog (dir = BUILT_MODULES_DIR): ModuleCatalog {
  const manifestPath = dir + 'manifest.json'
  if (!existsSync(manifestPath)) return { modules: [], names: [], declarations: '', etag: '"empty"' }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { modules: SandboxModule[] }
  const modules = manifest.modules.map(({ name, version, description }) => ({ name, version, description }))
  const declarations = existsSync(dir + 'modules.d.ts') ? readFileSync(dir + 'modules.d.ts', 'utf8') : ''
  const etag = `"${createHash('sha256').update(declarations).digest('base64url').slice(0, 27)}"`
  return { modules, names: modules.map((m) => m.name), declarations, etag }
}

/**
 * What one tenant may import: the catalog, narrowed by the tenant's own list when it has one (a
 * name the catalog lacks is ignored: a tenant's setting never widens the build's list).
 */
export function modulesFor (catalog: ModuleCatalog, narrowed: readonly string[] | null | undefined): string[] {
  if (narrowed === undefined || narrowed === null) return catalog.names
  return catalog.names.filter((name) => narrowed.includes(name))
}

/** The declarations of some modules only, and an ETag naming them. */
export function declarationsOf (catalog: ModuleCatalog, names: readonly string[]): { text: string, etag: string } {
  if (names.length === catalog.names.length) return { text: catalog.declarations, etag: catalog.etag }
  const blocks = catalog.declarations.split(/\n(?=declare module ')/)
  const text = blocks.filter((block) => names.some((name) => block.startsWith(`declare module '${name}' {`))).join('\n')
  return { text, etag: `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"` }
}
