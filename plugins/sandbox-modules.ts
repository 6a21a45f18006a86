import fp from 'fastify-plugin'
import { loadModuleCatalog, type ModuleCatalog } from '../services/sandbox-modules/catalog.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** The npm libraries scripts may import (fixed by the build; a tenant may narrow it). */
    sandboxModules: ModuleCatalog
  }
}

export default fp(async (fastify) => {
  const catalog = loadModuleCatalog()
  if (catalog.modules.length === 0) fastify.log.warn('no sandbox modules built (npm run build:modules): scripts can import none')
  fastify.decorate('sandboxModules', catalog)
}, { name: 'sandbox-modules', dependencies: [] })
