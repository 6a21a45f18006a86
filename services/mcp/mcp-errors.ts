import createError from '@fastify/error'

// The MCP feature's error codes, kept apart so they can be folded into the errors registry
// (services/errors/) in one move: each is a stable `code` in a 4xx body.
export const OriginNotAllowedError = createError('ORIGIN_NOT_ALLOWED', 'Forbidden: origin %s is not allowed (MCP_ALLOWED_ORIGINS)', 403)
export const McpMethodNotAllowedError = createError('METHOD_NOT_ALLOWED', 'This MCP endpoint is stateless: it offers no server stream and no session to end (use POST)', 405)
export const McpServerNotFoundError = createError('MCP_SERVER_NOT_FOUND', 'No MCP server named %s', 404)
export const McpServerConflictError = createError('MCP_SERVER_CONFLICT', '%s', 409)
export const McpServerUnreachableError = createError('MCP_SERVER_UNREACHABLE', 'The MCP server could not be reached or did not answer as MCP: %s', 502)
export const McpServerRefusedError = createError('MCP_SERVER_REFUSED', 'The MCP server\'s URL is refused: %s', 400)

/** The codes above, for the lead's registry. */
export const MCP_ERROR_CODES = ['ORIGIN_NOT_ALLOWED', 'METHOD_NOT_ALLOWED', 'MCP_SERVER_NOT_FOUND', 'MCP_SERVER_CONFLICT', 'MCP_SERVER_UNREACHABLE', 'MCP_SERVER_REFUSED'] as const
