// Loaded on demand by the Usage page.
import UPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import type { UsageDay } from './api.ts'
import { formatDuration } from './format.ts'

/** Draws the history into `host`; returns a function that removes it. */
export function drawHistory (host: HTMLElement, days: UsageDay[]): () => void {
  const xs = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000)
  const width = (): number => Math.max(240, host.clientWidth)
  const plot = new UPlot({
    width: width(),
    height: 280,
    tzDate: (ts) => UPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true }, ms: { auto: true } },
    axes: [
      {},
      { label: 'count' },
      { scale: 'ms', side: 1, label: 'median duration', grid: { show: false }, values: (_u, splits) => splits.map((ms) => formatDuration(ms)) }
    ],
    series: [
      { label: 'Day' },
      { label: 'Executions', stroke: '#1f5fbf', width: 2, fill: 'rgba(31,95,191,0.08)' },
      { label: 'Failures', stroke: '#b3261e', width: 2 },
      { label: 'Tool calls', stroke: '#2e7d32', width: 2, dash: [6, 4] },
      { label: 'Median duration', stroke: '#6a4c93', width: 2, scale: 'ms', value: (_u, ms) => formatDuration(ms) }
    ]
  }, [xs, days.map((d) => d.executions), days.map((d) => d.failures), days.map((d) => d.toolCalls), days.map((d) => d.p50DurationMs)], host)
  const onResize = (): void => { plot.setSize({ width: width(), height: 280 }) }
  addEventListener('resize', onResize)
  return () => { removeEventListener('resize', onResize); plot.destroy() }
}
