import { EventConfig, Handlers } from 'motia' // type-only: nothing to install

// A TypeScript event step: works through the job's items, streaming progress after each one, then
// hands over to the Ruby step. The whole job takes about two seconds, so the bar visibly moves.
export const config: EventConfig = {
  type: 'event',
  name: 'RunJob',
  description: 'Processes the items of a job, streaming its progress',
  subscribes: ['job.started'],
  emits: ['job.finished'],
  input: {
    type: 'object',
    properties: { jobId: { type: 'string' }, total: { type: 'integer' } },
    required: ['jobId', 'total'],
  },
  flows: ['live-progress'],
}

const JOB_MS = 2000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const handler: Handlers['RunJob'] = async (input, { streams, emit, logger }) => {
  const { jobId, total } = input as { jobId: string; total: number }
  const started = Date.now()
  let checksum = 0
  for (let done = 1; done <= total; done++) {
    await sleep(JOB_MS / total) // the "work" on one item
    checksum += done * done
    const percent = Math.floor((done * 100) / total)
    await streams.progress.set(jobId, 'progress', { done, total, percent })
  }
  const ms = Date.now() - started
  logger.info('job processed', { jobId, total, ms })
  await emit({ topic: 'job.finished', data: { jobId, total, checksum, ms, runtime: `node ${process.version}` } })
}
