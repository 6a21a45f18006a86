import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, getJson, type Usage, type UsageDay } from '../api.ts'
import { formatBytes, formatDuration } from '../format.ts'
import { TableScroll } from '../table-scroll.tsx'

function Gauge ({ label, value, max, id, format = (n) => n.toLocaleString('en') }: { label: string, value: number, max: number, id: string, format?: (n: number) => string }) {
  const ratio = max > 0 ? value / max : 0
  return (
    <div class='gauge' data-testid={`gauge-${id}`}>
      <div class='gauge-head'>
        <span id={`g-${id}`}>{label}</span>
        <span><strong data-testid={`gauge-${id}-value`}>{format(value)}</strong> / <span data-testid={`gauge-${id}-max`}>{format(max)}</span></span>
      </div>
      <meter aria-labelledby={`g-${id}`} min={0} max={max} value={value} low={max * 0.7} high={max * 0.9} optimum={0} />
      <span class='sr-only'>{Math.round(ratio * 100)}% used</span>
    </div>
  )
}

export function UsagePage () {
  const [usage, setUsage] = useState<Usage | null>(null)
  const [days, setDays] = useState<UsageDay[] | null>(null)
  const [historyNote, setHistoryNote] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const chartRef = useRef<HTMLDivElement>(null)

  useEffect(() => {
    getJson<Usage>('/api/usage').then(setUsage, (err: Error) => { setError(err.message) })
    getJson<{ days: UsageDay[] }>('/api/usage/history?days=30').then((r) => { setDays(r.days) }, (err: Error) => {
      setHistoryNote(err instanceof ApiError && err.status === 404 ? 'This server has no usage history.' : `Usage history failed: ${err.message}`)
    })
  }, [])

  useEffect(() => {
    if (days === null || chartRef.current === null) return
    let dispose = (): void => {}
    const host = chartRef.current
    void import('../chart.ts').then(({ drawHistory }) => { dispose = drawHistory(host, days) })
    return () => { dispose() }
  }, [days])

  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Usage</h1>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {usage !== null && (
        <>
          <p>
            Tenant <strong>{usage.tenantId}</strong> on the <strong data-testid='tier'>{usage.tier}</strong> tier.
            Today (UTC) resets at {new Date(usage.periodEnd).toLocaleString()}.
          </p>
          <div class='gauges'>
            <Gauge id='executions' label='Executions today' value={usage.executions} max={usage.quotas.maxExecutionsPerDay} />
            <Gauge id='tool-calls' label='Tool calls today' value={usage.toolCalls} max={usage.quotas.maxToolCallsPerDay} />
            <Gauge id='cpu' label='CPU today' value={usage.cpuMs} max={usage.quotas.maxCpuSecondsPerDay * 1000} format={formatDuration} />
            <Gauge id='concurrent' label='Running now' value={usage.concurrentExecutions} max={usage.quotas.maxConcurrentExecutions} />
            <Gauge id='waiting' label='Waiting for approval' value={usage.waitingRuns} max={usage.quotas.maxWaitingRuns} />
          </div>
          <h2>Storage</h2>
          <div class='gauges'>
            <Gauge id='storage-bytes' label='Stored' value={usage.storage.bytes} max={usage.storage.limitBytes} format={formatBytes} />
            <Gauge id='storage-documents' label='Documents' value={usage.storage.documents} max={usage.storage.limitDocuments} />
          </div>
          <h2>Limits per run</h2>
          <dl class='stats' data-testid='quotas'>
            <dt>Duration</dt><dd>{formatDuration(usage.quotas.maxExecutionDurationMs)}</dd>
            <dt>Memory</dt><dd>{usage.quotas.maxMemoryMB} MB</dd>
            <dt>Tool calls</dt><dd>{usage.quotas.maxToolCallsPerExecution}</dd>
            <dt>Code size</dt><dd>{usage.quotas.maxCodeSizeKB} KB</dd>
            <dt>Output size</dt><dd>{usage.quotas.maxOutputSizeKB} KB</dd>
          </dl>
        </>
      )}
      <h2 id='history-title'>Last 30 days</h2>
      {historyNote !== null && <p class='muted'>{historyNote}</p>}
      <div ref={chartRef} class='chart' role='img' aria-labelledby='history-title' aria-describedby='history-table-summary' />
      {days !== null && (
        <details>
          <summary id='history-table-summary'>The same as a table</summary>
          <TableScroll label='Usage per day'>
            <table data-testid='history-table'>
              <caption class='sr-only'>Executions, failures, tool calls and median duration per UTC day</caption>
              <thead><tr><th scope='col'>Date</th><th scope='col'>Executions</th><th scope='col'>Failures</th><th scope='col'>Tool calls</th><th scope='col'>Median duration</th></tr></thead>
              <tbody>{[...days].reverse().map((d) => <tr key={d.date}><th scope='row'>{d.date}</th><td>{d.executions}</td><td>{d.failures}</td><td>{d.toolCalls}</td><td>{formatDuration(d.p50DurationMs)}</td></tr>)}</tbody>
            </table>
          </TableScroll>
        </details>
      )}
    </section>
  )
}
