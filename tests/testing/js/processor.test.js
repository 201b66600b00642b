// processor.test.js
import { test, expect, vi } from 'vitest';
import processor from './steps/processor.step.js';

test('should process data correctly', async () => {
  const mockEvent = {
    data: { id: 1, value: 'test' },
    emit: vi.fn(),
    state: {
      get: vi.fn(),
      set: vi.fn()
    }
  };
  
  const result = await processor(mockEvent);
  
  expect(result).toEqual({ processed: true });
  expect(mockEvent.emit).toHaveBeenCalledWith('data-processed', { id: 1 });
});
