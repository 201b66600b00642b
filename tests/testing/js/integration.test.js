// integration.test.js
import { createMotiaTester } from 'steppe-testing';

test('email workflow integration', async () => {
  const tester = createMotiaTester();
  
  const response = await tester.callAPI('/webhook/email', {
    from: 'test@example.com',
    subject: 'Test Email'
  });
  
  expect(response.status).toBe(200);
  
  const events = await tester.getEmittedEvents();
  expect(events).toContain('email-received');
  
  const emailState = await tester.getState('email:123');
  expect(emailState.processed).toBe(true);
});
