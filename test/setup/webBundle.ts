/**
 * vitest globalSetup of the tiers that serve the page (integration, browser): builds the web UI bundle into
 * dist/web, what `npm run build` builds (esbuild, under a second), so a fresh clone's tests serve the page.
 */
import { buildWebUi } from '../../scripts/build-web.js';

export default async function setup(): Promise<void> {
  await buildWebUi();
}
