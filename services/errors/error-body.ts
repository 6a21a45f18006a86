import { Type } from 'typebox'
import { HTTP_ERROR_CODES } from './registry.ts'

/** The body of every error response; some errors add fields (limit, reset). */
export const ErrorBody = Type.Object({
  error: Type.String({ description: 'What went wrong, for people' }),
  code: Type.Enum(HTTP_ERROR_CODES, { description: 'Stable machine-readable code (docs/api.md lists them)' }),
  message: Type.Optional(Type.String())
}, { $id: 'ErrorBody', description: 'The body of every error response; some errors add fields (limit, reset)', additionalProperties: true })
