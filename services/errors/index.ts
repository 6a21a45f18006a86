export {
  registry, ALL_ERROR_CODES, HTTP_ERROR_CODES, EXECUTION_ERROR_CODES, formatMessage, paramsOf, isRegistryCode, isHttpErrorCode,
  type ErrorCode, type HttpErrorCode, type ExecutionErrorCode, type MessageParams, type StatusOf
} from './registry.ts'
export { ServiceError, type ServiceErrorOptions, type ErrorResponseBody } from './service-error.ts'
export { ErrorBody } from './error-body.ts'
export { isDependencyFailure } from './dependency.ts'
