/** Following a classifier's build as a client does: over graphql-ws, from its current state to READY. */
import { expect } from 'vitest';
import { subscribe } from './testServer.js';

interface BuildState {
  status: string;
  builtPrompts: number;
  totalPrompts: number;
}

/** Subscribes to `classifierUpdated(id)` until it completes; expects progress that only grows, seen between 0 and the end, then READY. */
export async function expectBuildFollowedToReady(
  wsUrl: string,
  id: string,
  totalPrompts: number,
  timeoutMs: number,
): Promise<void> {
  const followed = await subscribe<{ classifierUpdated: BuildState }>(
    wsUrl,
    'subscription ($id: ID!) { classifierUpdated(id: $id) { status builtPrompts totalPrompts } }',
    { id },
    { timeoutMs },
  );
  expect(followed.error).toBeUndefined();
  expect(followed.completed).toBe(true);
  const states = followed.messages.map((message) => message.data!.classifierUpdated);
  expect(states.at(-1)).toMatchObject({ status: 'READY', builtPrompts: totalPrompts, totalPrompts });
  const progress = states.map((state) => state.builtPrompts);
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
  expect(progress.some((built) => built > 0 && built < totalPrompts)).toBe(true);
}
