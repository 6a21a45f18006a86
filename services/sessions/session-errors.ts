import createError from '@fastify/error'

// The session route's refusals, in the clear: the error handler answers with status and code.
export const InvalidPublicKeyError = createError('INVALID_PUBLIC_KEY', '%s', 400)
export const DecryptionFailedError = createError('DECRYPTION_FAILED', 'The frame does not decrypt with this session\'s key', 400)
export const SessionNotFoundError = createError('SESSION_NOT_FOUND', 'No such session', 404)
export const SessionForbiddenError = createError('FORBIDDEN', 'Forbidden: this session belongs to another tenant or user', 403)
export const ReplayedFrameError = createError('REPLAYED_FRAME', 'The frame\'s counter is not above the last one this session accepted', 409)
export const SessionExpiredError = createError('SESSION_EXPIRED', 'The session has expired; open a new one', 410)
