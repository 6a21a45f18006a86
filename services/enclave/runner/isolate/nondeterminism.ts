// Recording and replaying what makes a run differ between two starts of the same code: Math.random,
// Date.now, `new Date()` / `Date()` and performance.now. Each value drawn live is kept (as JSON
// text, sent to the host with the next tool call or the result); values given as `replay` in the
// run's config are returned first, in order, so a run started again from the beginning with what an
// earlier start drew takes the same branches up to where that start stopped.
import type { Intrinsics } from './intrinsics.ts'

export type Nondeterminism = ReturnType<typeof installNondeterminism>

export function installNondeterminism (k: Intrinsics) {
  const { G, hide, expose, apply, construct, defineProperty, stringify } = k
  const MathObject = G.Math as { random: () => number }
  const random = MathObject.random
  const DateCtor = G.Date as DateConstructor
  const dateNow = DateCtor.now
  const dateToString = DateCtor.prototype.toString
  const perf = G.performance as { now: () => number } | undefined
  const perfNow = perf === undefined ? undefined : perf.now
  let replay: number[] = []
  let at = 0
  let drawn = ''
  // Recording is on for runs that may be started again (queued runs) only; past `cap` characters
  // the record is dropped and 'lost' is reported instead (such a run cannot be replayed).
  let recording = false
  let cap = 0
  let lost = false

  function draw (live: () => number, self: unknown): number {
    if (at < replay.length) return replay[at++] as number
    const value = apply(live, self, []) as number
    if (recording && !lost) {
      drawn += (drawn === '' ? '' : ',') + (stringify(value) as string)
      if (drawn.length > cap) { lost = true; drawn = '' }
    }
    return value
  }
  const now = (): number => draw(dateNow, DateCtor)

  hide(MathObject, 'random', expose(() => draw(random, MathObject), 'random'))
  // A Date that reads the clock only through `now`: with arguments it is the real constructor.
  function Date (this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) return apply(dateToString, construct(DateCtor, [now()]), [])
    return construct(DateCtor, args.length === 0 ? [now()] : args, new.target)
  }
  defineProperty(Date, 'prototype', { value: DateCtor.prototype, writable: false, enumerable: false, configurable: false })
  hide(Date, 'now', expose(now, 'now'))
  hide(Date, 'parse', DateCtor.parse)
  hide(Date, 'UTC', DateCtor.UTC)
  defineProperty(Date, 'length', { value: 7, configurable: true })
  hide(DateCtor.prototype, 'constructor', Date)
  hide(G, 'Date', Date)
  if (perf !== undefined && perfNow !== undefined) hide(perf, 'now', expose(() => draw(perfNow, perf), 'now'))

  return {
    /** Set by init, before the tenant's code runs: what to return first, and whether to record. */
    start (values: number[], record: boolean, maxChars: number): void { replay = values; at = 0; recording = record; cap = maxChars },
    /** The values drawn live since the last take, as a JSON array ('' for none). */
    take (): string {
      if (lost) return 'lost'
      if (drawn === '') return ''
      const out = '[' + drawn + ']'
      drawn = ''
      return out
    }
  }
}
