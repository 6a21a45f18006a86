import t from 'tap'
import { utcDayWindow } from '../../services/store/index.ts'

const at = (iso: string): number => Date.parse(iso)

const boundaries = [
  { name: 'the last millisecond of a UTC day belongs to that day', at: '2024-03-09T23:59:59.999Z', day: '2024-03-09', next: '2024-03-10', ttlMs: 1 },
  { name: 'midnight starts the next day with a full day to run', at: '2024-03-10T00:00:00.000Z', day: '2024-03-10', next: '2024-03-11', ttlMs: 86_400_000 }
]
for (const b of boundaries) {
  t.test(b.name, async (t) => {
    t.same(utcDayWindow(at(b.at)), { periodStart: `${b.day}T00:00:00.000Z`, periodEnd: `${b.next}T00:00:00.000Z`, ttlMs: b.ttlMs, dayKey: b.day })
  })
}

t.test('month, year and leap-day boundaries', async (t) => {
  t.equal(utcDayWindow(at('2024-02-28T12:00:00Z')).periodEnd, '2024-02-29T00:00:00.000Z', 'leap day exists in 2024')
  t.equal(utcDayWindow(at('2024-02-29T23:00:00Z')).periodEnd, '2024-03-01T00:00:00.000Z')
  t.equal(utcDayWindow(at('2023-12-31T23:59:59.999Z')).dayKey, '2023-12-31')
  t.equal(utcDayWindow(at('2024-01-01T00:00:00.000Z')).dayKey, '2024-01-01')
})

t.test('UTC, not local time, decides the day', async (t) => {
  // 23:30 in New York on 9 March is already 10 March in UTC.
  t.equal(utcDayWindow(at('2024-03-09T23:30:00-05:00')).dayKey, '2024-03-10')
})

t.test('ttlMs counts down to periodEnd, and defaults to now', async (t) => {
  const now = Date.now()
  const w = utcDayWindow()
  t.ok(w.ttlMs > 0 && w.ttlMs <= 86_400_000)
  t.ok(Math.abs(Date.parse(w.periodEnd) - (now + w.ttlMs)) < 1000, 'periodEnd ≈ now + ttlMs')
  t.ok(Date.parse(w.periodStart) <= now && now < Date.parse(w.periodEnd), 'now lies in the window')
  t.throws(() => utcDayWindow(Number.NaN), RangeError)
})
