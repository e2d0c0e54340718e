/**
 * vitest globalSetup of the browser tier: its pages talk to a server on the tiny model only, so the other
 * generated models are not needed there.
 */
import { setupTinyModel } from './models.js';

export default async function setup(): Promise<void> {
  await setupTinyModel();
}
