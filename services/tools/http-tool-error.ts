/** A failed HTTP tool call; the message names the tool and the cause, never a header. */
export class HttpToolError extends Error {
  override name = 'HttpToolError'
  readonly upstreamStatus: number | null
  readonly resultBytes: number | null
  constructor (message: string, upstreamStatus: number | null = null, resultBytes: number | null = null) {
    super(message)
    this.upstreamStatus = upstreamStatus
    this.resultBytes = resultBytes
  }
}
