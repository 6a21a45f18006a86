// The example API's own OpenAPI 3.0 document, served at GET /openapi.json. It uses $refs, a
// nullable field, path + query + body parameters, and one operation without an operationId
// (the health check), which an import skips with its reason.
export function openApiDocument (serverUrl: string): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: { title: 'Example platform API (CRM)', version: '1.0.0' },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { tenantAssertion: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      parameters: {
        ContactId: { name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1 } }
      },
      schemas: {
        NewContact: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200 },
            email: { type: 'string', format: 'email', nullable: true }
          }
        },
        Contact: {
          allOf: [
            { $ref: '#/components/schemas/NewContact' },
            { type: 'object', required: ['id', 'createdBy'], properties: { id: { type: 'string' }, createdBy: { type: 'string' } } }
          ]
        },
        Caller: {
          type: 'object',
          required: ['tenantId', 'userId', 'tool', 'executionId'],
          properties: { tenantId: { type: 'string' }, userId: { type: 'string' }, tool: { type: 'string' }, executionId: { type: 'string' } }
        }
      }
    },
    security: [{ tenantAssertion: [] }],
    paths: {
      '/crm/whoami': {
        get: {
          operationId: 'whoAmI',
          summary: 'Who the platform says is calling: tenant, user, tool and execution',
          responses: { 200: { description: 'the caller', content: { 'application/json': { schema: { $ref: '#/components/schemas/Caller' } } } } }
        }
      },
      '/crm/contacts': {
        get: {
          operationId: 'listContacts',
          summary: 'The calling tenant\'s contacts',
          parameters: [{ name: 'q', in: 'query', required: false, schema: { type: 'string' }, description: 'Part of the name' }],
          responses: { 200: { description: 'contacts', content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Contact' } } } } } }
        },
        post: {
          operationId: 'createContact',
          summary: 'Store a contact for the calling tenant (idempotent per idempotency-key)',
          parameters: [{ name: 'source', in: 'query', required: false, schema: { type: 'string', enum: ['script', 'import'] } }],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/NewContact' } } } },
          responses: { 201: { description: 'stored', content: { 'application/json': { schema: { $ref: '#/components/schemas/Contact' } } } } }
        }
      },
      '/crm/contacts/{id}': {
        parameters: [{ $ref: '#/components/parameters/ContactId' }],
        get: {
          operationId: 'getContact',
          summary: 'One contact of the calling tenant',
          responses: {
            200: { description: 'the contact', content: { 'application/json': { schema: { $ref: '#/components/schemas/Contact' } } } },
            404: { description: 'no such contact' }
          }
        }
      },
      '/health': {
        get: { summary: 'Liveness (no operationId: not a tool)', security: [], responses: { 200: { description: 'up' } } }
      }
    }
  }
}
