import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

// Debian's chromium (CI installs the `chromium` package); playwright-core downloads no browser.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** Where the browser tests put their screenshots: tap's own output folder, not committed. */
export const OUTPUT_DIR = join(process.cwd(), '.tap', 'console')

/** A fresh browser profile each time, removed at teardown. */
export async function openBrowser (teardown: (fn: () => unknown) => void): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'console-chromium-'))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 } })
  teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  await mkdir(OUTPUT_DIR, { recursive: true })
  return context
}

export interface PageWatch {
  /** Every URL the page requested, in order. */
  requests: string[]
  /** CSP violations the page reported (securitypolicyviolation events). */
  cspViolations: () => Promise<string[]>
  /** Uncaught errors in the page. */
  errors: string[]
}

export async function watchPage (page: Page): Promise<PageWatch> {
  const requests: string[] = []
  const errors: string[] = []
  page.on('request', (r) => { requests.push(r.url()) })
  page.on('pageerror', (e) => { errors.push(e.message) })
  // Runs in the page (the test's tsconfig has no DOM types, hence the casts).
  await page.addInitScript(() => {
    const seen: string[] = []
    const page = globalThis as unknown as { cspViolations: string[], document: { addEventListener: (type: string, fn: (e: { violatedDirective: string, blockedURI: string }) => void) => void } }
    page.cspViolations = seen
    page.document.addEventListener('securitypolicyviolation', (e) => { seen.push(`${e.violatedDirective} ${e.blockedURI}`) })
  })
  return {
    requests,
    errors,
    cspViolations: async () => await page.evaluate(() => (globalThis as unknown as { cspViolations?: string[] }).cspViolations ?? [])
  }
}

const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8')

/**
 * axe-core over the page as it is now: the serious and critical violations, as readable lines.
 * axe is evaluated through the DevTools protocol, which the page's CSP does not govern.
 */
export async function axeViolations (page: Page): Promise<string[]> {
  await page.evaluate(await axeSource)
  const violations = await page.evaluate(async () => {
    const page = globalThis as unknown as { document: unknown, axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: Array<{ id: string, impact: string | null, help: string, nodes: Array<{ target: unknown }> }> }> } }
    const result = await page.axe.run(page.document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3) }))
  })
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.impact ?? ''} ${v.id}: ${v.help} at ${v.targets.join(', ')}`)
}
