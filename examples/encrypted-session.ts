// Runs a script through an encrypted session: the code and the result travel encrypted between
// this process and the enclave, whatever sits between them.
//
//   ENCLAVE_URL=http://127.0.0.1:3000 ENCLAVE_TOKEN=<a tenant token> ENCLAVE_PIN=<thumbprint> \
//     node examples/encrypted-session.ts 'return 6 * 7'
//
// ENCLAVE_STREAM=1 streams the run's events (session.stream) instead of waiting for the result.
//
// ENCLAVE_PIN is the identity key's thumbprint from the service's start log ("encrypted
// sessions: identity key thumbprint ..."), obtained out of band: not from the network path you
// want to distrust. Node 24 runs this file as is; on Node 20, import the compiled client.
import { openSession } from '../clients/typescript/src/session.ts'

const { ENCLAVE_URL = 'http://127.0.0.1:3000', ENCLAVE_TOKEN, ENCLAVE_PIN } = process.env
if (ENCLAVE_TOKEN === undefined || ENCLAVE_PIN === undefined) {
  console.error('set ENCLAVE_TOKEN (a tenant token) and ENCLAVE_PIN (the identity key thumbprint printed at start)')
  process.exit(2)
}
const session = await openSession({ baseUrl: ENCLAVE_URL, token: ENCLAVE_TOKEN, pinnedThumbprint: ENCLAVE_PIN })
const code = process.argv[2] ?? 'console.log("hello from the enclave"); return 6 * 7'
if (process.env.ENCLAVE_STREAM === '1') {
  // Each event of the run as it happens, every one decrypted from its own frame.
  for await (const event of session.stream(code)) console.log(JSON.stringify(event))
} else {
  const result = await session.execute(code)
  console.log(JSON.stringify(result, null, 2))
}
