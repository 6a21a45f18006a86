import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { LoggingMessageNotificationSchema, type LoggingMessageNotification } from '@modelcontextprotocol/sdk/types.js'

export interface ConnectedClient {
  client: Client
  /** notifications/message received so far. */
  logs: Array<LoggingMessageNotification['params']>
  close: () => Promise<void>
}

/** The SDK's own Client on `url` with a bearer token, as an agent host would connect. */
export async function connectClient (url: string, token: string): Promise<ConnectedClient> {
  const client = new Client({ name: 'tenant-enclave-test', version: '1.0.0' })
  const logs: ConnectedClient['logs'] = []
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => { logs.push(notification.params) })
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  await client.connect(transport)
  return { client, logs, close: async () => { await client.close() } }
}

/** A tool result's structuredContent, typed loosely for assertions. */
export function structured (result: unknown): any {
  return (result as { structuredContent?: unknown }).structuredContent
}

export function textOf (result: unknown): string {
  const content = (result as { content?: Array<{ type: string, text?: string }> }).content ?? []
  return content.filter((item) => item.type === 'text').map((item) => item.text).join('\n')
}
