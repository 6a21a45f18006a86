// A run's events as NDJSON (POST /api/execute with Accept: application/x-ndjson, or
// GET /api/executions/:id/events): one event per line, read as they arrive.

export interface ExecEvent { seq?: number, type: string, data?: Record<string, unknown> }

export async function readEvents (body: ReadableStream<BufferSource>, onEvent: (e: ExecEvent) => void): Promise<void> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffered = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += value
    let nl: number
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim()
      buffered = buffered.slice(nl + 1)
      if (line !== '') onEvent(JSON.parse(line) as ExecEvent)
    }
  }
  if (buffered.trim() !== '') onEvent(JSON.parse(buffered) as ExecEvent)
}
