// Types of steppe-testing (docs/testing.md in the Steppe repository).

export interface EmitEvent { topic: string; data?: unknown; id?: string; messageGroupId?: string }
export interface RecordedCall { name: string; args: unknown[] }
export interface LogRecord { level: 'debug' | 'info' | 'warn' | 'error'; msg: unknown; fields: Record<string, unknown> }

export interface MockState {
  data: Map<string, Map<string, unknown>>
  get<T = unknown>(group: string, key: string): Promise<T | null>
  set<T>(group: string, key: string, value: T, ttlSeconds?: number): Promise<T>
  /** Not mocked: rejects saying so (assign your own, or test it against a host with createTester). */
  update<T = unknown>(group: string, key: string, ops: Record<string, unknown>[], ttl?: number): Promise<T>
  delete<T = unknown>(group: string, key: string): Promise<T | null>
  getGroup<T = unknown>(group: string): Promise<T[]>
  clear(group: string): Promise<void>
  toJSON(): Record<string, Record<string, unknown>>
}

export interface MockStream {
  items: Map<string, Map<string, unknown>>
  sent: { channel: { groupId: string; id?: string }; event: { type: string; data?: unknown } }[]
  get<T = unknown>(groupId: string, id: string): Promise<T | null>
  set<T>(groupId: string, id: string, data: T): Promise<T & { id: string }>
  delete<T = unknown>(groupId: string, id: string): Promise<T | null>
  getGroup<T = unknown>(groupId: string): Promise<T[]>
  send(channel: { groupId: string; id?: string }, event: { type: string; data?: unknown }): Promise<void>
}

export interface MockContext {
  calls: RecordedCall[]
  emitted: EmitEvent[]
  topic?: string
  traceId: string
  flows: string[]
  state: MockState
  streams: Record<string, MockStream>
  logger: { records: LogRecord[] } & Record<'debug' | 'info' | 'warn' | 'error', (msg: unknown, fields?: Record<string, unknown>) => void>
  emit(event: EmitEvent): Promise<void>
  topics(): string[]
}

export interface MockContextOptions {
  topic?: string
  traceId?: string
  flows?: string[]
  state?: Record<string, Record<string, unknown>>
  /** The step's config: emits of a topic not in its `emits` reject with an `UndeclaredTopic` error. */
  config?: { name?: string; emits?: (string | { topic: string })[] }
}

export interface MockEvent extends Omit<MockContext, 'emit'> {
  data?: unknown
  body?: unknown
  emit(topic: string | EmitEvent, data?: unknown): Promise<void>
}

export function createMockContext(options?: MockContextOptions): MockContext
export function createMockEvent(options?: MockContextOptions & { data?: unknown; body?: unknown }): MockEvent

export interface ApiResponse<B = any> { status: number; headers: Record<string, string>; body: B }
export interface EmittedEvent { id: string; topic: string; data: unknown; traceId: string; emittedBy: string | null; deliveries: number; time: number }
export interface HostLogRecord { time: number; level: string; msg: string; source: string; step?: string; traceId?: string; fields?: Record<string, unknown> }

export interface TesterOptions { root?: string; env?: Record<string, string>; port?: number; startTimeout?: number }

export class SteppeTester {
  constructor(options?: TesterOptions)
  readonly root: string
  url: string | null
  port?: number
  start(): Promise<SteppeTester>
  close(): Promise<void>
  output(): string
  callApi<B = any>(route: string, body?: unknown, options?: { method?: string; headers?: Record<string, string>; query?: Record<string, string> }): Promise<ApiResponse<B>>
  emit(topic: string, data?: unknown, options?: { id?: string }): Promise<{ id: string; traceId: string; deliveries: number; duplicate: boolean }>
  waitIdle(timeoutMs?: number): Promise<void>
  emittedEvents(filter?: { topic?: string; traceId?: string }): Promise<EmittedEvent[]>
  getEmittedEvents(): Promise<string[]>
  getState<T = any>(group: string, key?: string): Promise<T | null>
  getStream<T = any>(stream: string, group: string): Promise<T[]>
  getStream<T = any>(stream: string, group: string, id: string): Promise<T | null>
  logs(filter?: { step?: string; traceId?: string }): Promise<HostLogRecord[]>
}

export interface MotiaTester extends SteppeTester {
  callAPI: SteppeTester['callApi']
}

export function createTester(options?: TesterOptions): SteppeTester
export function createMotiaTester(options?: TesterOptions): MotiaTester
