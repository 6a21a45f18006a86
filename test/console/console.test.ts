// The console in a real Chromium against a real started service (embedded demo start).
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { Page } from 'playwright-core'
import { signToken } from '../../services/tokens.ts'
import { startServer } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'
import { axeViolations, OUTPUT_DIR, openBrowser, watchPage } from './browser.ts'

t.test('sign in with a printed demo token, run a script, see it in Runs and Usage; an admin changes the tier', async (t) => {
  const server = await startServer({ JWT_SECRET: undefined, DATABASE_URL: undefined, DATABASE_ADMIN_URL: undefined, REDIS_URL: undefined }, (fn) => t.teardown(fn))
  await waitFor(() => server.output().includes('Console:'), { timeout: 60_000, interval: 100, message: 'the start banner was printed' })
  const output = server.output()
  const consoleUrl = /Console: (http:\/\/\S+\/console\/)/.exec(output)?.[1] as string
  t.equal(consoleUrl, `${server.url}/console/`, 'the banner prints the console URL')
  const tokenOf = (name: string): string => new RegExp(`${name}\\s+TOKEN=(\\S+)`).exec(output)?.[1] as string
  const freeToken = tokenOf('demo-free')
  const adminToken = tokenOf('admin')
  const printed = (token: string): number => server.output().split(token).length - 1
  const printedInBanner = { free: printed(freeToken), admin: printed(adminToken) }

  const context = await openBrowser((fn) => t.teardown(fn))
  const page = await context.newPage()
  const watch = await watchPage(page)
  const shot = async (name: string): Promise<void> => { await page.screenshot({ path: join(OUTPUT_DIR, `${name}.png`), fullPage: true }) }
  const accessible = async (name: string): Promise<void> => { t.same(await axeViolations(page), [], `${name}: no serious or critical axe violations`) }
  const goTo = async (label: string): Promise<void> => {
    await page.getByRole('navigation', { name: 'Console pages' }).getByRole('link', { name: label }).click()
    await page.getByRole('heading', { level: 1, name: label }).waitFor()
  }
  const signIn = async (token: string): Promise<void> => {
    await page.getByLabel('Token').fill(token)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('navigation', { name: 'Console pages' }).waitFor()
  }
  const signOut = async (): Promise<void> => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('heading', { name: /Sign in/ }).waitFor()
  }
  const executionsToday = async (): Promise<number> => Number(await page.getByTestId('gauge-executions-value').textContent())
  // In each row of a run's timeline, the name, the outcome badge, the bar and the duration do not
  // overlap (boxes as drawn), and the bar is drawn.
  const timelineKeepsApart = async (name: string): Promise<void> => {
    type Box = { left: number, right: number, top: number, bottom: number, width: number }
    const rows = await page.locator('[data-testid="timeline"] li').evaluateAll((items) => items.map((li) => {
      const box = (selector: string): Box => {
        const r = (li as unknown as { querySelector: (s: string) => { getBoundingClientRect: () => Box } }).querySelector(selector).getBoundingClientRect()
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width }
      }
      return { name: box('.call-name'), badge: box('.badge'), bar: box('.bar'), duration: box('.duration') }
    }))
    const overlap = (a: Box, b: Box): boolean => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom
    t.ok(rows.length >= 3, `${name}: a row per tool call`)
    const problems = rows.flatMap((r, i) => [
      ...(overlap(r.bar, r.badge) ? [`row ${i}: the bar overlaps the badge`] : []),
      ...(overlap(r.bar, r.duration) ? [`row ${i}: the bar overlaps the duration`] : []),
      ...(overlap(r.badge, r.name) ? [`row ${i}: the badge overlaps the name`] : []),
      ...(r.bar.width <= 0 ? [`row ${i}: no bar`] : [])
    ])
    t.same(problems, [], `${name}: the bar never overlaps a badge`)
  }
  // Usable on a phone: nothing is wider than the viewport (a wide table scrolls in its own box).
  const fitsWidth = async (name: string, width: number): Promise<void> => {
    const scrollWidth = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth)
    t.ok(scrollWidth <= width, `${name}: no horizontal overflow at ${width} px (scrollWidth ${scrollWidth})`)
  }

  // Sign-in page
  await page.goto(consoleUrl)
  await page.getByRole('heading', { name: 'Sign in to the tenant-enclave console' }).waitFor()
  await accessible('sign-in')
  await shot('sign-in')

  // A token the service refuses brings the user back to sign-in with a clear message.
  const forged = signToken({ tenantId: 'demo-free', userId: 'x', permissions: [] }, { secret: 'a-secret-that-is-not-the-servers-000000000' }, 600)
  // The first page's first API call (the Playground loads the tool list) meets the 401.
  await page.getByLabel('Token').fill(forged)
  await page.getByRole('button', { name: 'Sign in' }).click()
  const notice = page.getByTestId('sign-in-notice')
  await notice.waitFor()
  t.match(await notice.textContent(), /refused your token/, '401 → sign-in with a message that says why')

  // Usage before running anything
  await signIn(freeToken)
  t.equal(await page.getByTestId('tenant-id').textContent(), 'demo-free')
  await goTo('Usage')
  await page.getByTestId('gauge-executions-value').waitFor()
  const before = await executionsToday()
  t.equal(await page.getByTestId('gauge-executions-max').textContent(), '100', 'free tier: 100 executions a day')

  // Playground: run a script, see its value and its logs
  await goTo('Playground')
  await page.locator('.editor[data-ready="true"] .cm-content').waitFor()
  // The last call is refused (bad arguments), so the timeline has a wide error badge too.
  await setScript(page, "console.log('hello from the console')\nawait callTool('data:insert', { document: { n: 1 } })\nconst docs = await callTool('data:query', {})\ntry { await callTool('data:query', { limit: 'lots' }) } catch {}\nreturn { count: docs.length }")
  const executeResponse = page.waitForResponse((r) => r.url().endsWith('/api/execute'))
  await page.getByRole('button', { name: 'Run' }).click()
  await page.getByTestId('result-value').waitFor()
  t.same(JSON.parse(await page.getByTestId('result-value').textContent() ?? ''), { count: 1 }, 'the value, pretty-printed')
  t.match(await page.getByTestId('logs').textContent(), /log\s+hello from the console/, 'the logs')
  t.match(await page.getByTestId('stat-duration').textContent(), /^(\d+(\.\d)? (ms|s)|< 0\.1 ms)$/, 'the duration is rounded (4.1 ms, not 4.091842999972869 ms)')
  if (((await executeResponse).headers()['content-type'] ?? '').includes('ndjson')) {
    // Where POST /api/execute streams its events, the tool calls are listed as they happen.
    t.match(await page.getByTestId('live-calls').textContent(), /data:insert OK[\s\S]*data:query OK/, 'live tool calls from the event stream')
  } else {
    t.equal(await page.getByTestId('live-calls').count(), 0, 'a plain run (no event stream on this server) shows no live panel')
  }
  await accessible('playground')
  await shot('playground')
  t.match(await page.locator('[data-testid="result"] dd code').textContent(), /^[0-9a-f-]{36}$/, 'the run\'s id is shown')

  // Tool names complete inside callTool('…, as one types (key by key, as a person does: CodeMirror
  // redraws on every keystroke, and the completion list opens by itself).
  await setScript(page, '')
  await page.keyboard.type("return await callTool('data:q", { delay: 15 })
  // The list may first open on a word typed earlier (`return`) and then follow the typing.
  const completion = page.locator('.cm-tooltip-autocomplete')
  await completion.filter({ hasText: 'data:query' }).waitFor()
  t.match(await completion.textContent(), /data:query/, 'tool names are completed')
  await page.keyboard.press('Escape')
  await page.keyboard.press('Control+Space')
  await completion.waitFor()
  await page.keyboard.press('ArrowDown')
  await page.keyboard.press('Escape')

  // Module names complete after `from '` (the sandbox modules of GET /api/modules).
  await setScript(page, '')
  await page.keyboard.type("import { z } from 'zo", { delay: 15 })
  await completion.filter({ hasText: 'zod' }).waitFor()
  t.match(await completion.textContent(), /zod/, 'module names are completed')
  await page.keyboard.press('Escape')

  // A syntax error is marked where it is
  await setScript(page, 'const a = 1\nreturn a + * 2')
  await page.keyboard.press('Control+Enter')
  await page.getByTestId('result-error').waitFor()
  t.match(await page.getByTestId('result-error').textContent(), /VALIDATION_ERROR/)
  await page.locator('.cm-lintRange-error').waitFor()
  t.equal(await page.locator('.cm-lintRange-error').textContent(), '*', 'the error is highlighted in the editor where it is')
  // Its message shows on hover, in a tooltip CodeMirror positions itself.
  await page.locator('.cm-lintRange-error').hover()
  await page.locator('.cm-tooltip-lint').waitFor()
  t.match(await page.locator('.cm-tooltip-lint').textContent(), /Unexpected token|SyntaxError|line 2/, 'the error mark shows the message on hover')
  await page.mouse.move(0, 0)

  // Runs: queued runs (GET /api/executions), filtered and paged on the server; a run's tool calls
  // when the server has them (GET /api/audit/:id). Two runs are queued: one with tool calls, then
  // one that fails; the page reads them once their rows are written.
  const api = async (path: string, init: RequestInit = {}): Promise<any> => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${freeToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) } })
    return await res.json()
  }
  const queue = async (code: string): Promise<string> => (await api('/api/executions', { method: 'POST', body: JSON.stringify({ code }) })).executionId
  const queuedId = await queue("await callTool('data:insert', { document: { n: 2 } })\nconst docs = await callTool('data:query', {})\ntry { await callTool('data:query', { limit: 'lots' }) } catch {}\nreturn docs.length")
  const failedId = await queue('return a + * 2')
  await waitFor(async () => (await api('/api/executions?code=VALIDATION_ERROR')).executions?.some((e: { executionId: string }) => e.executionId === failedId) === true &&
    (await api('/api/executions?code=OK')).executions?.some((e: { executionId: string }) => e.executionId === queuedId) === true, { timeout: 20_000, interval: 100, message: 'both queued runs ended' })
  await goTo('Runs')
  await page.getByTestId('runs-table').waitFor()
  const rows = page.locator('[data-testid="runs-table"] tbody tr')
  t.ok(await rows.count() >= 2, 'both runs are listed')
  t.match(await rows.first().textContent(), /VALIDATION_ERROR/, 'newest first')
  const detailsResponse = page.waitForResponse((r) => r.url().endsWith(`/api/audit/${queuedId}`))
  await page.getByRole('button', { name: `Details of run ${queuedId}` }).click()
  const details = page.getByTestId('run-details')
  await details.waitFor()
  const hasTimeline = (await detailsResponse).status() === 200
  if (hasTimeline) {
    await page.getByTestId('timeline').waitFor()
    t.match(await page.getByTestId('timeline').textContent(), /data:insert[\s\S]*OK[\s\S]*data:query[\s\S]*OK/, 'the run\'s tool calls as a timeline')
    await timelineKeepsApart('timeline')
    t.notMatch(await page.getByTestId('run-details').textContent(), /\d\.\d{2,}/, 'the details\' durations are rounded')
  } else {
    await details.getByText('Tool-call details are not available').waitFor()
    t.pass('without GET /api/audit/:executionId the details say so')
  }
  t.notMatch(await page.locator('section').first().textContent(), /applies to this page/, 'the filter is no longer this page\'s alone')
  const runsListed = async (query: string): Promise<void> => {
    await page.waitForResponse((r) => r.url().includes('/api/executions?') && r.url().includes(query))
    await page.getByTestId('runs-table').waitFor()
  }
  let filtered = runsListed('status=failed')
  await page.getByLabel('Status').selectOption('failed')
  await filtered
  t.equal(await rows.count(), 1, 'filtered by status on the server')
  t.match(await rows.first().textContent(), /VALIDATION_ERROR/)
  filtered = runsListed('code=OK')
  await page.getByLabel('Status').selectOption('')
  await page.getByLabel('Outcome').selectOption('OK')
  await filtered
  t.match(await rows.first().textContent(), /succeeded/, 'filtered by outcome code on the server')
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)
  filtered = runsListed(`from=${tomorrow}`)
  await page.getByLabel('From').fill(tomorrow)
  await filtered
  t.match(await rows.first().textContent(), /No runs here/, 'filtered by date on the server')
  filtered = runsListed('limit=')
  await page.getByLabel('From').fill('')
  await page.getByLabel('Outcome').selectOption('')
  await filtered
  await accessible('runs')
  await shot('runs')

  // Usage: today's counter moved
  await goTo('Usage')
  await page.getByTestId('gauge-executions-value').waitFor()
  await waitFor(async () => (await executionsToday()) > before, { timeout: 10_000, interval: 200, message: 'the counter moved' })
  t.ok(await executionsToday() >= before + 2, 'today\'s executions counter moved by the two runs')
  // Storage: what the tenant keeps against its tier's bound (the run above stored a document).
  t.equal(await page.getByTestId('gauge-storage-bytes-max').textContent(), '10 MB', 'free tier: 10 MB stored')
  t.equal(await page.getByTestId('gauge-storage-documents-max').textContent(), '10,000', 'free tier: 10,000 documents')
  t.ok(Number((await page.getByTestId('gauge-storage-documents-value').textContent())?.replace(/,/g, '')) >= 1, 'the stored document counts')
  t.equal(await page.getByTestId('gauge-cpu-max').textContent(), '2 min', 'free tier: 120 CPU seconds a day')
  await page.locator('.chart .uplot').waitFor()
  t.equal(await page.locator('[data-testid="history-table"] tbody tr').count(), 30, '30 days of history')
  // The chart's cursor and legend follow the pointer (uPlot moves them as one hovers).
  await page.locator('.chart .u-over').hover()
  await accessible('usage')
  await shot('usage')

  // Tools
  await goTo('Tools')
  await page.getByTestId('tools-table').waitFor()
  t.match(await page.getByTestId('tools-table').textContent(), /data:query/)
  await page.getByTestId('modules-table').waitFor()
  t.match(await page.getByTestId('modules-table').textContent(), /lodash-es[\s\S]*zod\s*4\./, 'the Tools page lists the importable modules')
  await accessible('tools')
  await shot('tools')
  t.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0, 'no Admin page for a tenant token')

  // Admin: the tenants are listed and searched; demo-free, opened from the list, moves to the starter tier
  await signOut()
  await signIn(adminToken)
  await goTo('Admin')
  const tenantRows = page.locator('[data-testid="tenant-table"] tbody tr')
  await page.getByRole('button', { name: 'Open tenant demo-starter' }).waitFor()
  t.ok(await tenantRows.count() >= 3, 'the demo tenants are listed')
  const listed = page.waitForResponse((r) => r.url().includes('/admin/tenants?') && r.url().includes('search=FREE+TENANT'))
  await page.getByLabel('Search tenants').fill('FREE TENANT')
  await listed
  await waitFor(async () => (await tenantRows.count()) === 1, { timeout: 5_000, interval: 50, message: 'the search narrowed the list' })
  t.match(await tenantRows.first().textContent(), /demo-free\s*Demo free tenant\s*free/, 'searched by name on the server, case-insensitively')
  await page.getByRole('button', { name: 'Open tenant demo-free' }).click()
  await page.getByTestId('tenant-editor').waitFor()
  await page.getByLabel('Tier').selectOption('starter')
  await page.getByRole('button', { name: 'Save tenant' }).click()
  await page.getByTestId('admin-message').waitFor()
  t.match(await page.getByTestId('admin-message').textContent(), /Saved demo-free: starter tier/)
  await waitFor(async () => /starter/.test(await tenantRows.first().textContent() ?? ''), { timeout: 5_000, interval: 50, message: 'the list shows the new tier' })
  // The form for a tenant id that is not listed (no row yet) still opens it.
  await page.getByLabel('Tenant id').fill('demo-nobody')
  await page.getByRole('button', { name: 'Open', exact: true }).click()
  await page.getByRole('heading', { name: /^demo-nobody \(no row yet/ }).waitFor()
  await accessible('admin')
  await shot('admin')

  // The tenant sees its new quotas
  await signOut()
  await signIn(freeToken)
  await goTo('Usage')
  await page.getByTestId('gauge-executions-max').waitFor()
  t.equal(await page.getByTestId('tier').textContent(), 'starter')
  t.equal(await page.getByTestId('gauge-executions-max').textContent(), '1,000', 'starter tier: 1000 executions a day')
  await shot('usage-starter')

  // A phone, 390 px wide: every page fits the width (tables scroll in their own box).
  const PHONE_WIDTH = 390
  await page.setViewportSize({ width: PHONE_WIDTH, height: 844 })
  /** The page fits the phone's width; `shotName` keeps a screenshot of it. */
  const fitsPhone = async (label: string, shotName?: string): Promise<void> => {
    await fitsWidth(label, PHONE_WIDTH)
    if (shotName !== undefined) await shot(shotName)
  }
  await goTo('Playground')
  await page.locator('.editor[data-ready="true"] .cm-content').waitFor()
  await page.getByRole('button', { name: 'Run' }).click()
  await page.getByTestId('result').waitFor()
  await fitsPhone('playground with a result', 'phone-playground')
  await goTo('Runs')
  await page.getByTestId('runs-table').waitFor()
  await fitsPhone('runs')
  await page.getByRole('button', { name: `Details of run ${queuedId}` }).click()
  await page.getByTestId('run-details').waitFor()
  if (hasTimeline) {
    await page.getByTestId('timeline').waitFor()
    await timelineKeepsApart('timeline at 390 px')
  }
  await fitsPhone('runs with a run\'s details', 'phone-runs')
  await goTo('Usage')
  await page.locator('.chart .uplot').waitFor()
  await page.getByText('The same as a table').click()
  await fitsPhone('usage with its table open', 'phone-usage')
  await goTo('Tools')
  await page.getByTestId('tools-table').waitFor()
  await fitsPhone('tools')
  await signOut()
  await fitsPhone('sign-in')
  await signIn(adminToken)
  await goTo('Admin')
  await page.getByRole('button', { name: 'Open tenant demo-free' }).click()
  await page.getByTestId('tenant-editor').waitFor()
  await fitsPhone('admin with a tenant open')
  await accessible('admin at 390 px')
  await shot('phone-admin')

  // Swagger UI at /docs keeps its CSP too: the page renders, an operation is tried out and its
  // answer shown (highlighted), and the Authorize dialog opens.
  const docs = await context.newPage()
  const docsWatch = await watchPage(docs)
  await docs.goto(`${server.url}/docs/`)
  await docs.locator('.swagger-ui .info .title').waitFor()
  const health = docs.locator('#operations-health-getHealth')
  await health.locator('.opblock-summary').click()
  await health.getByRole('button', { name: 'Try it out' }).click()
  await health.getByRole('button', { name: 'Execute' }).click()
  await health.locator('.live-responses-table').waitFor()
  await docs.getByRole('button', { name: /Authorize/ }).first().click()
  await docs.locator('.dialog-ux').waitFor()
  t.same(await docsWatch.cspViolations(), [], '/docs: no CSP violations')
  t.same(docsWatch.errors, [], '/docs: no uncaught errors')
  await docs.close()

  // What the page did on the network: nothing but its own origin, and the token never in a URL.
  t.same(watch.requests.filter((url) => !url.startsWith(server.url) && !url.startsWith('data:')), [], 'no third-party requests')
  t.same(watch.requests.filter((url) => url.includes(freeToken) || url.includes(adminToken) || url.includes(freeToken.split('.')[2] as string)), [], 'no token in any URL')
  t.same(await watch.cspViolations(), [], 'no CSP violations on any console page (typing, completion, the error mark, a run\'s details)')
  t.same(watch.errors, [], 'no uncaught errors in the page')
  t.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage')
  t.same({ free: printed(freeToken), admin: printed(adminToken) }, printedInBanner, 'the service never logged a token: they appear only in the banner')

  // The screenshot the README shows: UPDATE_README_SCREENSHOT=1 refreshes docs/console.png.
  if (process.env.UPDATE_README_SCREENSHOT === '1') await copyFile(join(OUTPUT_DIR, 'playground.png'), join(process.cwd(), 'docs', 'console.png'))
})

async function setScript (page: Page, code: string): Promise<void> {
  await page.locator('.cm-content').click()
  await page.keyboard.press('Control+A')
  await page.keyboard.press('Delete')
  // insertText types no keys, so auto-closed brackets do not double up.
  await page.keyboard.insertText(code)
}
