import t from 'tap'
import { formatBytes, formatDuration } from '../../console/src/format.ts'

t.test('durations are rounded to what a person reads', async (t) => {
  const cases: Array<[number | null | undefined, string]> = [
    [4.091842999972869, '4.1 ms'],
    [0.4, '0.4 ms'],
    [0.01, '< 0.1 ms'],
    [0, '0 ms'],
    [9.96, '10 ms'],
    [87.49, '87 ms'],
    [999.4, '999 ms'],
    [999.6, '1 s'],
    [1234.5, '1.2 s'],
    [30_000, '30 s'],
    [3, '3 ms'],
    [2000.2, '2 s'],
    [59_960, '1 min'],
    [125_000, '2 min 5 s'],
    [null, '–'],
    [undefined, '–'],
    [Number.NaN, '–']
  ]
  for (const [ms, expected] of cases) t.equal(formatDuration(ms), expected, String(ms))
})

t.test('sizes are in units of 1024, one decimal below 10', async (t) => {
  const cases: Array<[number, string]> = [[0, '0 B'], [512, '512 B'], [1536, '1.5 KB'], [10 * 1024 * 1024, '10 MB'], [1024 ** 3, '1 GB'], [100 * 1024 ** 3, '100 GB']]
  for (const [bytes, expected] of cases) t.equal(formatBytes(bytes), expected, String(bytes))
})
