// Generates src/generated/ (the API's types, and the fetch client and one function per operation)
// with @hey-api/openapi-ts from the document the service serves at /docs/json, built in process
// from the repository root's app. The output is committed: the repository's root lint type-checks
// src/session.ts (test/sessions/ imports it) before anything is generated on a fresh clone.
// test/generated-fresh.test.ts regenerates it and fails when the committed copy differs.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from '@hey-api/openapi-ts'
import { openapiDocument } from '../../../scripts/openapi-document.ts'

const here = dirname(fileURLToPath(import.meta.url))
export const GENERATED_DIR = join(here, '..', 'src', 'generated')

export async function generate (outDir: string): Promise<void> {
  const document = await openapiDocument()
  await createClient({
    input: document as never,
    // `.ts` imports: the package's tests run the sources as they are (type stripping); tsc
    // rewrites them to `.js` in dist/.
    output: { path: outDir, importFileExtension: '.ts' },
    plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
    logs: { level: 'silent' }
  } as never)
}

/** Every file under `dir`, by its path relative to it, with its text. */
export async function filesOf (dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    out.set(relative(dir, path), await readFile(path, 'utf8'))
  }
  return out
}

/** Generates into a temp dir and names the files that differ from the committed ones. */
export async function staleFiles (): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'enclave-client-gen-'))
  try {
    await generate(dir)
    const [fresh, committed] = await Promise.all([filesOf(dir), filesOf(GENERATED_DIR).catch(() => new Map<string, string>())])
    const names = new Set([...fresh.keys(), ...committed.keys()])
    return [...names].filter((name) => fresh.get(name) !== committed.get(name)).sort()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  await rm(GENERATED_DIR, { recursive: true, force: true })
  await generate(GENERATED_DIR)
  console.log(`generated ${relative(process.cwd(), GENERATED_DIR)} from the service's OpenAPI document`)
}
