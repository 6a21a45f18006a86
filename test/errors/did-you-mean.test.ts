import t from 'tap'
import { closestNames, didYouMean, editDistance } from '../../services/errors/did-you-mean.ts'
import { validationMessage } from '../../services/errors/validation-message.ts'
import { toolNotFoundMessage } from '../../services/tools/tool-not-found.ts'

t.test('edit distance', async (t) => {
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('data:serach', 'data:search'), 2)
  t.equal(editDistance('same', 'same'), 0)
})

t.test('closest names: near ones first, far ones never, the input itself never', async (t) => {
  const tools = ['data:query', 'data:insert', 'data:update', 'data:delete']
  t.same(closestNames('data:qeury', tools), ['data:query'])
  t.same(closestNames('DATA:QUERY', tools), ['data:query'], 'case is ignored')
  t.same(closestNames('data:query', tools), [], 'an exact name is not a suggestion')
  t.same(closestNames('shell:exec', tools), [])
  t.same(closestNames('x', ['y', 'z']), ['y', 'z'], 'one edit is always allowed')
  t.equal(didYouMean('timeout_ms', ['code', 'timeoutMs']), ' (did you mean \'timeoutMs\'?)')
  t.equal(didYouMean('zzz', ['code']), '')
})

t.test('TOOL_NOT_FOUND names only the callable tools it was given', async (t) => {
  t.equal(toolNotFoundMessage('data:serach', ['data:search', 'data:query']), 'Tool not found: data:serach (did you mean data:search?)')
  t.equal(toolNotFoundMessage('data:serach', []), 'Tool not found: data:serach (no tool this token may call has a similar name; GET `/api/tools` lists them)')
})

t.test('validation messages', async (t) => {
  const schema = { type: 'object', properties: { code: { type: 'string' }, language: { enum: ['javascript', 'typescript'] }, timeoutMs: { type: 'integer' } } }
  t.equal(validationMessage('body', [
    { keyword: 'required', instancePath: '', params: { requiredProperties: ['code'] } },
    { keyword: 'boolean', instancePath: '/script', params: {} },
    { keyword: 'additionalProperties', instancePath: '', params: { additionalProperties: ['script'] } }
  ], schema), 'unknown field \'script\' (did you mean \'code\'?)', 'the suggested field is not also reported missing')
  t.equal(validationMessage('body', [{ keyword: 'additionalProperties', instancePath: '', params: { additionalProperties: ['zzz'] } }], schema),
    'unknown field \'zzz\' (allowed: code, language, timeoutMs)')
  t.equal(validationMessage('body', [
    { keyword: 'const', instancePath: '/mode', params: { allowedValue: 'a' } },
    { keyword: 'const', instancePath: '/mode', params: { allowedValue: 'b' } },
    { keyword: 'anyOf', instancePath: '/mode', params: {} }
  ]), 'mode must be one of: a, b', 'a union of literals is one list')
  t.equal(validationMessage('querystring', [{ keyword: 'maximum', instancePath: '/limit', params: { limit: 200 } }]), 'query parameter \'limit\' must be at most 200')
  t.equal(validationMessage('params', [{ keyword: 'format', instancePath: '/id', params: { format: 'uuid' } }]), 'path parameter \'id\' must be a UUID (like 0190a6f2-7b4e-7c3a-9d1e-2f3a4b5c6d7e)')
  t.equal(validationMessage('body', [{ keyword: 'maxLength', instancePath: '/a/b', params: { limit: 3 } }]), 'a.b must be at most 3 characters long')
  t.equal(validationMessage('body', [{ keyword: 'weird', instancePath: '/x', message: 'is odd' }]), 'x is odd', 'an unknown keyword keeps the validator\'s words')
})
