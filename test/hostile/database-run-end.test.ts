import t from 'tap'
import pg from 'pg'
import { CompiledQuery, sql } from 'kysely'
import { buildApp, createTenant } from '../helper.ts'
import { statementAsTenant, withTenant } from '../../services/db/with-tenant.ts'
import { RunEndedError } from '../../services/db/run-bounds.ts'

// Issue 28, item 2: a data:update still running when its run timed out went on and committed.
// A caller told TIMEOUT must be able to trust that nothing more happened.

const SLEEP_S = 1.5
// Unique per file run: on CI's one PostgreSQL the trigger is the database's, for a moment.
const fn = `slow_marker_${process.pid}`

/** Runs `text` as the tables' owner: PGlite's one session is the owner; on PostgreSQL, DATABASE_ADMIN_URL. */
async function asOwner (app: Awaited<ReturnType<typeof buildApp>>, text: string): Promise<void> {
  if (process.env.DATABASE_URL === undefined) { await sql.raw(text).execute(app.db.kysely); return }
  const client = new pg.Client({ connectionString: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL })
  await client.connect()
  try { await client.query(text) } finally { await client.end() }
}

t.test('a write still running when its run ends commits nothing', async (t) => {
  const app = await buildApp(t)
  // Makes an update that sets `slowMarker` take SLEEP_S per row: a slow statement on demand.
  await asOwner(app, `create function ${fn}() returns trigger language plpgsql as $$ begin
      if new.body ? 'slowMarker' then perform pg_sleep(${SLEEP_S}); end if; return new; end $$;
    create trigger ${fn} before update on documents for each row execute function ${fn}()`)
  t.teardown(async () => { await asOwner(app, `drop trigger if exists ${fn} on documents; drop function if exists ${fn}()`) })

  const tenant = await createTenant(app, 'slow-writer', { tier: 'free' })
  await withTenant(app.db, tenant.tenantId, async (trx) => {
    await trx.insertInto('documents').values({ tenant_id: tenant.tenantId, collection: 'data', body: JSON.stringify({ k: 'x' }), created_by: 'seed' }).execute()
  })
  const marked = async (): Promise<number> => await withTenant(app.db, tenant.tenantId, async (trx) => {
    const rows = await trx.selectFrom('documents').select('id').where(sql<boolean>`body ? 'slowMarker'`).execute()
    return rows.length
  })

  const started = Date.now()
  const res = await tenant.execute("await callTool('data:update', { filter: { k: 'x' }, set: { slowMarker: 'run-1' } })\nreturn 'done'", { timeoutMs: 500 })
  const body = res.json()
  // The statement's timeout is the run's remaining time as the gateway saw it, so it may fire a
  // moment before the run's own TIMEOUT: then the script sees the update fail (TOOL_ERROR).
  t.match(body.error?.code, /^(TIMEOUT|TOOL_ERROR)$/, 'the run ended without its update')
  t.equal(await marked(), 0, 'no row carries the run\'s marker when its result is out')
  // Long enough for the statement to have finished and committed, had it gone on.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + SLEEP_S * 1000 + 1000 - Date.now())))
  t.equal(await marked(), 0, 'nor once the statement would have finished')

  // A run cancelled long before its deadline: its statement is cancelled now, not at its timeout.
  const controller = new AbortController()
  const cancelledAt = Date.now()
  const work = withTenant(app.db, tenant.tenantId, async (trx) => {
    await trx.updateTable('documents').set({ body: sql`body || '{"slowMarker": "run-2"}'::jsonb` }).execute()
  }, { deadline: Date.now() + 30_000, ceilingMs: 30_000, ended: controller.signal })
  setTimeout(() => { controller.abort() }, 200)
  await t.rejects(work, RunEndedError, 'the work of a cancelled run fails')
  if (process.env.DATABASE_URL !== undefined) {
    t.ok(Date.now() - cancelledAt < SLEEP_S * 1000, 'at once: PostgreSQL cancelled the statement')
  }
  t.equal(await marked(), 0, 'and committed nothing')

  // A read (data:query's one statement) is cancelled too: it would hold its connection otherwise.
  const reader = new AbortController()
  const readAt = Date.now()
  const read = statementAsTenant(app.db, tenant.tenantId, CompiledQuery.raw(`select pg_sleep(${SLEEP_S})`), { deadline: Date.now() + 30_000, ceilingMs: 30_000, ended: reader.signal })
  setTimeout(() => { reader.abort() }, 200)
  if (process.env.DATABASE_URL !== undefined) {
    await t.rejects(read, { code: '57014' }, 'a read of a run that ended is cancelled')
    t.ok(Date.now() - readAt < SLEEP_S * 1000, 'at once')
  } else {
    await read
    t.pass('PGlite cannot cancel a read: it runs to its end')
  }
})
