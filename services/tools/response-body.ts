import type { Dispatcher } from 'undici'

// Reading an upstream's answer through undici's pool (HTTP tools and remote MCP servers alike).

export type ResponseBody = Dispatcher.ResponseData['body']

/**
 * A body whose content-length was declared (and found within the limit): HTTP/1.1 framing ends
 * it at that length (undici fails a response that sends less), so it is read in one go, without
 * the per-chunk stream iteration.
 */
export async function readWhole (body: ResponseBody): Promise<Buffer> {
  const bytes = await body.bytes()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A body of unknown length, read chunk by chunk and cut off (socket closed) past `limit`. */
export async function readUpTo (body: ResponseBody, limit: number, overLimit: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length
    if (bytes > limit) {
      // Destroying the body aborts the request and closes its socket: nothing more is read.
      body.destroy()
      throw overLimit()
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks, bytes)
}

/**
 * Closes an answer's connection without reading its body. The body then fails with an abort,
 * which nobody waits for: it is caught here, or it would be an uncaught stream error.
 */
export function dropBody (body: ResponseBody): void {
  body.on('error', () => {})
  body.destroy()
}
