import { z } from 'zod'

// A step of a project pinned to zod 3 (Motia 0.4-0.10's `motia create`): this folder's node_modules holds
// zod 3 (the test links it), and its schema must type as precisely as zod 4's.
export const config = {
  type: 'event',
  name: 'LegacyAudit',
  subscribes: ['audit.requested'],
  emits: [],
  input: z.object({
    legacyId: z.string(),
    legacyKind: z.enum(['draft', 'final']),
    legacyNote: z.string().nullable().optional(),
    legacyCounts: z.record(z.number()),
  }),
}

export const handler = async () => {}
