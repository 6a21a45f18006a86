import fp from 'fastify-plugin'

/**
 * Graceful shutdown: once closing starts, every response still being served tells its client to
 * close the connection, so keep-alive sockets of in-flight requests end with their response
 * and the server can finish closing (Fastify closes only the connections idle at that moment).
 */
export default fp(async (fastify) => {
  let draining = false
  fastify.addHook('preClose', async () => { draining = true })
  // A callback hook: an async one costs every response a promise and a turn of the microtask queue.
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'drain' })
