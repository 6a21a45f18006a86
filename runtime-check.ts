// Imported first by server.ts: on an older Node the native addon would fail with an ABI error
// that names nothing useful, so say what is wrong and how to fix it instead.
const major = Number(process.versions.node.split('.')[0])
if (major < 24) {
  console.error(
    `tenant-enclave needs Node.js 24 LTS or later; this is ${process.version}.\n` +
    'npm scripts run the Node 24 that `npm install` puts in node_modules/.bin (the optional "node" ' +
    'dependency); it is missing if it was installed with --omit=optional. Run `npm install`, or use your own Node 24.'
  )
  process.exit(1)
}
