import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PGliteThread } from '../../services/db/pglite-thread.ts'
import { pgliteSnapshot } from '../support/pglite-snapshot.ts'

// Both start from the suite's migrated snapshot rather than initdb (seconds of CPU each): what is
// tested is the hop to the thread and the dump, and initdb runs where the snapshot is made.
const snapshot = await pgliteSnapshot('enclave_app')

// Embedded PGlite runs in a worker thread; what crosses the thread must look like PGlite's own
// answers: typed values, PostgreSQL error fields, a clean close.
t.test('PGlite in a worker thread', async (t) => {
  const db = new PGliteThread('memory://', snapshot)
  t.teardown(async () => { await db.close() })
  await db.waitReady

  const { rows } = await db.query<{ n: number, at: Date, doc: unknown, big: bigint | string }>(
    "select $1::int as n, timestamptz '2026-01-02T03:04:05Z' as at, $2::jsonb as doc, 9007199254740993::int8 as big", [41, JSON.stringify({ a: [1] })])
  t.equal(rows[0]?.n, 41)
  t.ok(rows[0]?.at instanceof Date, 'timestamps arrive as Dates')
  t.equal(rows[0]?.at.toISOString(), '2026-01-02T03:04:05.000Z')
  t.same(rows[0]?.doc, { a: [1] }, 'jsonb arrives parsed')

  await db.exec('create table t (id int primary key); insert into t values (1)')
  const inserted = await db.query('insert into t values (2), (3)')
  t.equal(inserted.affectedRows, 2)
  const dup = await db.query('insert into t values (1)').then(() => undefined, (err: unknown) => err)
  t.match(dup, { message: /duplicate key/, code: '23505', table: 't', constraint: 't_pkey' }, 'PostgreSQL error fields survive the hop')
  t.same((await db.exec('select 1 as a; select 2 as b'))[0]?.rows, [{ b: 2 }], 'exec answers with the last statement')

  // Many requests in flight at once are answered each to its own caller.
  const many = await Promise.all(Array.from({ length: 50 }, async (_, i) => (await db.query<{ i: number }>('select $1::int as i', [i])).rows[0]?.i))
  t.same(many, Array.from({ length: 50 }, (_, i) => i))

  await db.close()
  t.equal(db.closed, true)
  await t.rejects(db.query('select 1'), { message: /closed/ }, 'a closed database refuses queries')
})

// The tests' PGlite snapshot (test/support/pglite-snapshot.ts): a dumped data dir starts a new
// database holding what the first one held, and the first keeps working.
t.test('a data dir dumped by one PGliteThread starts another', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pglite-dump-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const first = new PGliteThread('memory://', snapshot)
  t.teardown(async () => { await first.close() })
  await first.exec("create table kept (v text); insert into kept values ('from the first')")
  const dump = join(dir, 'data.tar')
  await first.dumpDataDir(dump)
  t.same((await readdir(dir)), ['data.tar'], 'written whole under its name, no partial file left')
  const second = new PGliteThread('memory://', dump)
  t.teardown(async () => { await second.close() })
  t.same((await second.query('select v from kept')).rows, [{ v: 'from the first' }])
  await second.exec("insert into kept values ('only the second')")
  t.same((await first.query('select count(*)::int as n from kept')).rows, [{ n: 1 }], 'two databases: the first does not see the second\'s row')
})
