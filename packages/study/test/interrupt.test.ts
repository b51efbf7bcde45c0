import { EventEmitter } from 'node:events';
import { expect, it } from 'vitest';
import { handleSigint } from '../src/interrupt';

it('forwards each SIGINT to the runner, counts them, and removes itself', () => {
  const source = new EventEmitter();
  const calls: number[] = [];
  let interrupts = 0;
  const dispose = handleSigint(
    { interrupt: () => (interrupts += 1) },
    { source, onInterrupt: (n) => calls.push(n) },
  );
  source.emit('SIGINT');
  source.emit('SIGINT');
  expect(interrupts).toBe(2);
  expect(calls).toEqual([1, 2]);
  dispose();
  expect(source.listenerCount('SIGINT')).toBe(0);
  source.emit('SIGINT');
  expect(interrupts).toBe(2);
});
