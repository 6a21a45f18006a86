// One call of an HTTP (or remote MCP) platform tool, as the tool gateway makes it and a runner answers it.

export interface HttpCall {
  tenantId: string
  userId: string
  executionId: string
  callIndex: number
  args: unknown
  /** Aborts the request when the run is over. */
  runEnded?: AbortSignal | undefined
}

export interface HttpCallResult {
  value: unknown
  upstreamStatus: number
  resultBytes: number
}
