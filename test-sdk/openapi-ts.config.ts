// `npm run test:sdk` generates an SDK from the service's own document with @hey-api/openapi-ts,
// as an SDK user would, into dist/sdk (ignored). `.ts` imports: Node runs it as it is (type stripping).
export default {
  input: './dist/openapi.json',
  output: { path: './dist/sdk', importFileExtension: '.ts' },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk']
}
