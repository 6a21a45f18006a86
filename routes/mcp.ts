import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { listSetting } from '../plugins/config.ts'
import { checkScript } from '../services/code-mode/check-script.ts'
import { checkLimitsOf } from '../services/code-mode/check-limits.ts'
import { ToolDeclarationCache } from '../services/code-mode/tool-declarations.ts'
import { LEVELS } from '../services/enclave/index.ts'
import { createCodeModeServer, type CodeModeCaller } from '../services/mcp/code-mode-server.ts'
import { OneRequestTransport, oneRequestOf } from '../services/mcp/one-request-transport.ts'
import { executeScript } from '../services/executions/execute-script.ts'
import { codeSizeRefusalOf, newExecutionId, refusalAnswer } from '../services/executions/execution-request.ts'
import { ServiceError } from '../services/errors/index.ts'
import { declarationsOf, modulesFor } from '../services/sandbox-modules/catalog.ts'
import { Type } from 'typebox'
import { empty, errors, operation } from '../schemas/responses.ts'
import { publicBase } from './oauth-protected-resource.ts'

/**
 * /mcp: the Model Context Protocol over Streamable HTTP (2025-11-25), stateless. Every POST gets
 * a fresh SDK server and transport, so any instance answers any request and nothing is kept in a
 * session store; the answer is JSON, or an SSE stream (log and progress notifications, then the
 * result) once the handler has something to send before its result. GET and DELETE are 405:
 * there is no server-initiated stream and no session state to end.
 */
const JsonRpcMessage = Type.Object({ jsonrpc: Type.Literal('2.0') }, { additionalProperties: true, $id: 'JsonRpcMessage', description: 'A JSON-RPC 2.0 message (MCP)' })

// Visible ASCII, as the spec requires of a session id.
const SESSION_ID = /^[\x21-\x7e]{1,128}$/

const mcpRoutes: FastifyPluginAsync = async (fastify) => {
  const allowedOrigins = new Set(listSetting(fastify.config.MCP_ALLOWED_ORIGINS))
  const declarations = new ToolDeclarationCache()

  // DNS rebinding: a browser page on another origin (even one resolving to this host) sends its
  // Origin; agents send none. Checked before anything else, the token included.
  const checkOrigin = async (request: FastifyRequest): Promise<void> => {
    const origin = request.headers.origin
    if (origin !== undefined && !allowedOrigins.has(origin)) throw new ServiceError('ORIGIN_NOT_ALLOWED', { origin })
  }
  // The REST API's authentication, plus the challenge that points an MCP client at the metadata.
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    // RFC 9728: the 401's challenge names the metadata document first, then the REST API's own
    // parameters (realm, and error/error_description for a token that was sent and refused).
    await fastify.authenticateWithChallenge(request, `resource_metadata="${publicBase(fastify.config, request)}/.well-known/oauth-protected-resource"`)
  }

  fastify.post('/mcp', {
    onRequest: [checkOrigin, authenticate],
    schema: operation('mcp', 'mcpRequest', 'Send one MCP message', 'MCP Streamable HTTP (revision 2025-11-25), stateless: one JSON-RPC message per POST, answered with an SSE stream (notifications, then the result) or JSON; a notification gets 202. Tools: search_tools, describe_tools, check_script, execute_script. A 401 names the protected resource metadata in WWW-Authenticate.', {
      response: {
        200: {
          description: 'The answer: an SSE stream of JSON-RPC messages (log and progress notifications, then the response), or one JSON-RPC response',
          content: {
            'text/event-stream': { schema: Type.String({ description: 'SSE events whose data is one JSON-RPC message each' }) },
            'application/json': { schema: JsonRpcMessage }
          }
        },
        202: empty('A notification was accepted'),
        ...errors([401], { 401: 'No bearer token, or one that does not verify: WWW-Authenticate names resource_metadata' }),
        ...errors([403], { 403: 'The Origin header is not in MCP_ALLOWED_ORIGINS (ORIGIN_NOT_ALLOWED)' }),
        ...errors([429, 503])
      }
    })
  }, async (request, reply) => {
    const { tenant } = request
    const { tenantId, permissions, quotas } = tenant
    const callableTools: CodeModeCaller['callableTools'] = async () => (await fastify.tools.list(tenantId))
      .filter((tool) => tool.enabled && permissions.includes(`tool:${tool.definition.name}`))
      .map(({ definition: { name, description, argsSchema, resultSchema } }) => ({ name, description, argsSchema, resultSchema }))
    // A session id, given at initialize, is only a scope: the client's log level and its
    // cancellable calls are kept per (tenant, user, session), so two clients of one user (whose
    // JSON-RPC ids may clash) stay apart. It names no state a request needs, so any instance
    // answers any request, and a client that sends none shares the user's unnamed scope.
    const isInitialize = (request.body as { method?: unknown } | null)?.method === 'initialize'
    const sent = request.headers['mcp-session-id']
    const sessionId = isInitialize ? randomUUID() : typeof sent === 'string' && SESSION_ID.test(sent) ? sent : ''
    if (isInitialize) reply.raw.setHeader('mcp-session-id', sessionId)
    const callerKey = `${tenantId}\u0000${tenant.userId}\u0000${sessionId}`
    const caller: CodeModeCaller = {
      key: callerKey,
      callableTools,
      declarations: async (tools) => (await declarations.get(tools)).text,
      modules: async () => {
        const names = modulesFor(fastify.sandboxModules, (await fastify.tenants.get(tenantId)).sandboxModules)
        return fastify.sandboxModules.modules.filter((m) => names.includes(m.name))
      },
      moduleDeclarations: (names) => declarationsOf(fastify.sandboxModules, names).text,
      check: async (body) => {
        // The size a run would refuse, refused the same way (neither counted nor audited).
        const tooLarge = codeSizeRefusalOf(body.code, quotas)
        if (tooLarge !== undefined) return { refusal: refusalAnswer(tooLarge) }
        // The REST check's bounds, shared with it: checks in flight, TypeScript size, parse time.
        const limits = checkLimitsOf(quotas, tenant.tier)
        let release: (cpuMs?: number) => void
        let cpuMs: number | undefined
        try {
          release = await fastify.checkSlots.admit(tenantId, limits, body)
        } catch (err) {
          if (err instanceof ServiceError) return { refusal: { status: err.statusCode, body: err.body() } }
          throw err
        }
        try {
          return { report: await checkScript({ tools: fastify.tools, scripts: fastify.checkScripts }, { tenantId, permissions }, body, { strict: LEVELS[fastify.enclave.securityLevel].astCheck, timeoutMs: limits.timeoutMs, onCpu: (ms) => { cpuMs = ms }, modules: modulesFor(fastify.sandboxModules, (await fastify.tenants.get(tenantId)).sandboxModules) }) }
        } catch (err) {
          if (err instanceof ServiceError) return { refusal: { status: err.statusCode, body: err.body() } }
          throw err
        } finally {
          release(cpuMs)
        }
      },
      execute: async (body, live) => {
        const executionId = newExecutionId()
        const log = request.log.child({ tenantId, executionId, via: 'mcp' })
        // When the cancel (or the client's leaving) reached the run: its end is logged too.
        live.signal.addEventListener('abort', () => { log.info('execution cancelled by the mcp client') }, { once: true })
        // The one execution path, as REST runs take it: quotas, metrics, tools; the audit row says mcp.execute.
        const outcome = await executeScript(fastify.executionDeps, tenant, {
          executionId,
          log,
          auditAction: 'mcp.execute',
          code: body.code,
          language: body.language,
          timeoutMs: body.timeoutMs,
          onEvent: live.onEvent,
          signal: live.signal
        })
        return outcome.ran ? { result: outcome.result } : { refusal: refusalAnswer(outcome.refusal) }
      },
      logLevels: fastify.mcp.logLevels,
      running: fastify.mcp.running,
      cancel: (requestId) => { void fastify.mcp.cancel(callerKey, requestId) }
    }
    const server = createCodeModeServer(caller)
    // A single request (the usual case: tools/call, tools/list, ping) is answered by the
    // transport that picks JSON or SSE as late as it can; everything else by the SDK's own.
    const single = oneRequestOf(request.headers, request.body)
    const transport = single !== undefined ? new OneRequestTransport(reply.raw, single.id) : new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    // From here the transport writes the response. A client that leaves closes the transport,
    // which aborts its calls: a run in flight ends CANCELLED and frees its slot.
    // Headers earlier hooks put on the reply (CORS, rate limit) go out with the response.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value)
    reply.hijack()
    reply.raw.on('close', () => {
      transport.close().catch(() => {})
      server.close().catch(() => {})
    })
    try {
      await server.connect(transport)
      if (transport instanceof OneRequestTransport) transport.deliver(single!, request.headers)
      else await transport.handleRequest(request.raw, reply.raw, request.body)
    } catch (err) {
      request.log.error({ err, tenantId }, 'mcp request failed')
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { 'content-type': 'application/json' })
        reply.raw.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }))
      }
    }
  })

  const notAllowed = async (_request: FastifyRequest, reply: FastifyReply): Promise<never> => {
    void reply.header('allow', 'POST')
    throw new ServiceError('METHOD_NOT_ALLOWED')
  }
  for (const method of ['GET', 'DELETE'] as const) {
    fastify.route({
      method,
      url: '/mcp',
      onRequest: [checkOrigin],
      // Not an operation an SDK calls: the 405 that tells an MCP client this endpoint is stateless.
      schema: { hide: true },
      handler: notAllowed
    })
  }
}

export default mcpRoutes
