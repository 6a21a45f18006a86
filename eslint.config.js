import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'sandbox-modules/dist/**', 'sandbox-modules/.types-entry/**', 'coverage/**', 'clients/*/dist/**', 'clients/*/src/generated/**'] }),
  {
    rules: {
      // `void promise` marks a promise left floating on purpose (timers, fire-and-forget retries).
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
