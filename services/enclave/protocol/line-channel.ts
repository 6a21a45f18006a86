import type { Duplex } from 'node:stream'

/**
 * Newline-delimited JSON over a pipe. A raw pipe beats Node's IPC channel on latency, and
 * messages produced in one turn of the event loop are written with one syscall. JSON.stringify
 * never emits a raw newline, so '\n' is a safe frame delimiter.
 *
 * The flush waits for setImmediate, not a microtask: isolated-vm hands each message of an isolate
 * (20 parallel tool calls, say) to this thread as a callback of its own, with a microtask
 * checkpoint after each, so a microtask flush wrote every call with a syscall of its own and woke
 * the other side for each; the check phase comes right after the poll phase that delivered them all.
 */
export class LineChannel<In, Out> {
  private pending: string[] = []
  private scheduled = false
  private partial = ''
  private closed = false

  private readonly stream: Duplex

  /**
   * `maxLine` bounds what one message may take in this process while it is still arriving (a
   * peer that never ends a line cannot fill the heap); over it, `onOverflow` runs and reading stops.
   */
  constructor (stream: Duplex, onMessage: (msg: In) => void, onBadLine?: (line: string) => void, maxLine?: () => number, onOverflow?: () => void) {
    this.stream = stream
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      if (this.closed) return
      let start = 0
      let nl = chunk.indexOf('\n')
      if (nl === -1) {
        this.partial += chunk
        if (maxLine !== undefined && this.partial.length > maxLine()) this.overflow(onOverflow)
        return
      }
      let line = this.partial + chunk.slice(0, nl)
      this.partial = ''
      for (;;) {
        if (line.length > 0) {
          let msg: In
          try { msg = JSON.parse(line) as In } catch { onBadLine?.(line); msg = undefined as In }
          if (msg !== undefined) onMessage(msg)
        }
        start = nl + 1
        nl = chunk.indexOf('\n', start)
        if (nl === -1) break
        line = chunk.slice(start, nl)
      }
      if (start < chunk.length) this.partial = chunk.slice(start)
      if (maxLine !== undefined && this.partial.length > maxLine()) this.overflow(onOverflow)
    })
    stream.on('close', () => { this.closed = true })
    stream.on('error', () => { this.closed = true })
  }

  private overflow (onOverflow: (() => void) | undefined): void {
    this.partial = ''
    this.closed = true
    onOverflow?.()
  }

  send (msg: Out): void {
    if (this.closed) return
    this.pending.push(JSON.stringify(msg))
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flush)
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false
    if (this.closed || this.pending.length === 0) { this.pending = []; return }
    const data = this.pending.length === 1 ? this.pending[0] + '\n' : this.pending.join('\n') + '\n'
    this.pending = []
    this.stream.write(data)
  }
}
