/**
 * @file What the page remembers. Classes, prompt template and model persist between visits (localStorage); the
 * API key lives only as long as the tab (sessionStorage), so it is not left behind on a shared machine.
 * Storage may be disabled (private modes, policies): then nothing is remembered and nothing breaks.
 */

const PREFIX = 'clip-ui:';

export type RememberedField = 'classes' | 'promptTemplate' | 'model' | 'classifier';

function read(storage: () => Storage, key: string): string | null {
  try {
    return storage().getItem(PREFIX + key);
  } catch {
    return null;
  }
}

function write(storage: () => Storage, key: string, value: string): void {
  try {
    if (value === '') storage().removeItem(PREFIX + key);
    else storage().setItem(PREFIX + key, value);
  } catch {
    // Storage disabled or full: the page works, it just forgets.
  }
}

export const remembered = {
  get: (field: RememberedField): string | null => read(() => window.localStorage, field),
  set: (field: RememberedField, value: string): void => write(() => window.localStorage, field, value),
};

export const sessionKey = {
  get: (): string => read(() => window.sessionStorage, 'apiKey') ?? '',
  set: (value: string): void => write(() => window.sessionStorage, 'apiKey', value),
};
