import { formatMessage, registry, type HttpErrorCode, type MessageParams, type StatusOf } from './registry.ts'

export interface ServiceErrorOptions {
  /** Extra body fields a client acts on (limit, reset...); never error, code or message. */
  fields?: Record<string, unknown>
  /** Response headers the client acts on (WWW-Authenticate...). */
  headers?: Record<string, string>
  /** Sent as Retry-After. */
  retryAfterSeconds?: number
  /** Why, for code inside the service (never sent): lets a caller tell rejections apart without reading messages. */
  reason?: string
  cause?: unknown
}

type Args<C extends HttpErrorCode> = keyof MessageParams<C> extends never
  ? [params?: MessageParams<C>, options?: ServiceErrorOptions]
  : [params: MessageParams<C>, options?: ServiceErrorOptions]

/** The body of an error response. */
export interface ErrorResponseBody { error: string, code: HttpErrorCode, message?: string, [field: string]: unknown }

/**
 * The one error the service throws for a client to see: its status and message come from the
 * registry entry of its code. The error handler answers it; a 5xx shows only the registry's words.
 */
export class ServiceError<C extends HttpErrorCode = HttpErrorCode> extends Error {
  override name = 'ServiceError'
  readonly code: C
  readonly statusCode: StatusOf<C>
  readonly retryable: boolean
  readonly fields: Readonly<Record<string, unknown>>
  readonly retryAfterSeconds: number | undefined
  readonly headers: Readonly<Record<string, string>>
  readonly reason: string | undefined

  constructor (code: C, ...[params, options = {}]: Args<C>) {
    super(formatMessage(code, (params ?? {}) as MessageParams<C>), options.cause === undefined ? undefined : { cause: options.cause })
    const spec = registry[code]
    this.code = code
    this.statusCode = spec.status as StatusOf<C>
    this.retryable = spec.retryable
    this.fields = options.fields ?? {}
    this.retryAfterSeconds = options.retryAfterSeconds
    this.headers = options.headers ?? {}
    this.reason = options.reason
  }

  /** What the client receives. */
  body (): ErrorResponseBody {
    const spec = registry[this.code]
    const head = 'title' in spec ? { error: spec.title, code: this.code, message: this.message } : { error: this.message, code: this.code }
    return { ...head, ...this.fields }
  }
}
