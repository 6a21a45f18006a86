// Layering checked by `npm run lint` (dependency-cruiser). Paths are relative to the repo root.
// tsPreCompilationDeps: type-only imports count too (Node's type stripping erases them, but a
// cycle or a layer breach through types is still a design one). Imports name real `.ts` files,
// so resolution needs nothing beyond the tsconfig.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles anywhere in our own code (type-only imports included).',
      from: {},
      to: { circular: true }
    },
    {
      name: 'services-below-http',
      severity: 'error',
      comment: 'services/ is plain functions and classes: it never reaches up into the Fastify layer.',
      from: { path: '^services/' },
      to: { path: '^(plugins|routes)/' }
    },
    {
      name: 'enclave-through-its-index',
      severity: 'error',
      comment:
        'Outside services/enclave/, only services/enclave/index.ts may be imported. test/ and bench/ ' +
        'are exempt: white-box tests and benchmarks reach internals they exercise on purpose ' +
        '(cpu-fairness, runner-messages, runner-launch); so does the sandbox-modules build, which loads ' +
        'each module under the runner\'s own bootstrap; everything else goes through the index.',
      from: { pathNot: '^(services/enclave/|test/|bench/|scripts/build-sandbox-modules[.]ts$)' },
      to: { path: '^services/enclave/', pathNot: '^services/enclave/index[.]ts$' }
    },
    {
      name: 'enclave-runner-not-host',
      severity: 'error',
      comment: 'Code of the runner child never loads the supervisor: they meet in protocol/ and common/.',
      from: { path: '^services/enclave/runner/' },
      to: { path: '^services/enclave/(host/|index[.]ts$)' }
    },
    {
      name: 'enclave-host-not-runner',
      severity: 'error',
      comment: 'The supervisor never loads runner-side code (isolated-vm, isolates) into the API process.',
      from: { path: '^services/enclave/(host/|index[.]ts$)' },
      to: { path: '^services/enclave/runner/' }
    },
    {
      name: 'enclave-protocol-and-common-stand-alone',
      severity: 'error',
      comment: 'protocol/ and common/ are what both sides use: they import neither side.',
      from: { path: '^services/enclave/(protocol|common)/' },
      to: { path: '^services/enclave/(host/|runner/|index[.]ts$)' }
    },
    {
      name: 'isolate-code-imports-only-types',
      severity: 'error',
      comment:
        'runner/isolate/ is source for the isolate, turned into text with Function.prototype.toString: ' +
        'a runtime import would be a free variable there. Types only.',
      from: { path: '^services/enclave/runner/isolate/' },
      to: { dependencyTypesNot: ['type-only'] }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Generated SDK code (clients/*/src/generated) is the generator's: its own import cycles are not ours.
    exclude: { path: '(^|/)(node_modules|dist|coverage|[.]tap)/|^clients/[^/]+/src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    skipAnalysisNotInRules: true,
    cache: false
  }
}
