// The console's Pending approvals page in a real Chromium against a started service: a queued run
// waits on a gated tool, a person with approvals:decide sees the call's arguments and the run's
// logs so far, approves one run and rejects another; both runs end as the decisions say.
import t from 'tap'
import { signToken } from '../../services/tokens.ts'
import { TEST_SECRET } from '../helper.ts'
import { startServer } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'
import { axeViolations, openBrowser, watchPage } from './browser.ts'

const TENANT = 'approvals-console'

t.test('pending approvals: see the call, approve one run, reject another, the page follows live', async (t) => {
  const server = await startServer({ DATABASE_URL: undefined, DATABASE_ADMIN_URL: undefined, REDIS_URL: undefined }, (fn) => t.teardown(fn))
  const token = (userId: string, permissions: string[]): string => signToken({ tenantId: TENANT, userId, permissions }, { secret: TEST_SECRET }, 900)
  const alice = token('alice', ['tool:data:insert', 'tool:data:delete', 'tool:data:query'])
  const bob = token('bob', ['approvals:decide'])
  const admin = signToken({ tenantId: 'platform', userId: 'ops', permissions: ['admin'] }, { secret: TEST_SECRET }, 900)
  const call = async (method: string, path: string, bearer: string, body?: unknown): Promise<{ status: number, json: any }> => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${bearer}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    const text = await res.text()
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
  }

  t.equal((await call('PUT', `/admin/tenants/${TENANT}`, admin, { tier: 'starter' })).status, 200, 'the tenant exists')
  t.equal((await call('PUT', `/admin/tenants/${TENANT}/tools/data:delete`, admin, { approval: 'always' })).status, 200, 'data:delete needs approval for the tenant')
  const script = (marker: string): string => [
    `console.log('cleaning ${marker}')`,
    `await callTool('data:insert', { collection: 'approvals-page', document: { marker: '${marker}' } })`,
    'try {',
    `  const done = await callTool('data:delete', { collection: 'approvals-page', filter: { marker: '${marker}' } })`,
    '  return { deleted: done.deleted }',
    '} catch (err) {',
    '  return { refused: err.code }',
    '}'
  ].join('\n')
  const submit = async (marker: string): Promise<string> => {
    const submitted = await call('POST', '/api/executions', alice, { code: script(marker) })
    t.equal(submitted.status, 202, `the ${marker} run is accepted`)
    return submitted.json.executionId as string
  }
  const statusOf = async (id: string): Promise<string> => (await call('GET', `/api/executions/${id}`, alice)).json.status as string
  const approved = await submit('keep-going')
  const rejected = await submit('stop-here')
  await waitFor(async () => await statusOf(approved) === 'awaiting_approval' && await statusOf(rejected) === 'awaiting_approval', { timeout: 30_000, interval: 100, message: 'both runs wait for a decision' })

  const context = await openBrowser((fn) => t.teardown(fn))
  const page = await context.newPage()
  const watch = await watchPage(page)
  await page.goto(`${server.url}/console/`)
  // A token without approvals:decide is not offered the page.
  await page.getByLabel('Token').fill(alice)
  await page.getByRole('button', { name: 'Sign in' }).click()
  const nav = page.getByRole('navigation', { name: 'Console pages' })
  await nav.waitFor()
  t.equal(await nav.getByRole('link', { name: 'Approvals' }).count(), 0, 'no Approvals link without approvals:decide')
  await page.getByRole('button', { name: 'Sign out' }).click()

  await page.getByLabel('Token').fill(bob)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await nav.getByRole('link', { name: 'Approvals' }).click()
  await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor()
  const card = (id: string) => page.locator('[data-testid="waiting-run"]', { hasText: id })
  await card(approved).getByTestId('pending-call').waitFor()
  await card(rejected).getByTestId('pending-call').waitFor()
  t.same(JSON.parse(await card(approved).getByTestId('pending-args').textContent() ?? ''), { collection: 'approvals-page', filter: { marker: 'keep-going' } }, 'the pending call shows its arguments')
  t.match(await card(approved).getByTestId('pending-call').textContent(), /data:delete/, 'and its tool')
  t.match(await card(approved).getByTestId('waiting-logs').textContent(), /cleaning keep-going/, 'the run\'s logs so far')
  const expiresAt = (await call('GET', `/api/executions/${approved}`, alice)).json.expiresAt as string
  t.equal(await card(approved).getByTestId('expires-at').getAttribute('datetime'), expiresAt, 'when the run expires undecided')
  t.same(await axeViolations(page), [], 'the page has no serious or critical axe violations')

  await card(approved).getByRole('button', { name: /^Approve data:delete/ }).click()
  await card(rejected).getByRole('textbox', { name: /Reason/ }).fill('not today')
  await card(rejected).getByRole('button', { name: /^Reject data:delete/ }).click()
  await waitFor(async () => await statusOf(approved) === 'succeeded' && await statusOf(rejected) === 'succeeded', { timeout: 30_000, interval: 100, message: 'both runs end after the decisions' })
  t.same((await call('GET', `/api/executions/${approved}`, alice)).json.result.value, { deleted: 1 }, 'the approved call ran once: one document deleted')
  t.same((await call('GET', `/api/executions/${rejected}`, alice)).json.result.value, { refused: 'APPROVAL_REJECTED' }, 'the rejected call threw APPROVAL_REJECTED into the script\'s catch')
  // The page follows the runs' streams: both end, and the list empties on its next read.
  await page.getByTestId('no-approvals').waitFor({ timeout: 15_000 })
  t.same(watch.errors, [], 'no uncaught errors in the page')
  t.same(await watch.cspViolations(), [], 'no CSP violations')
})
