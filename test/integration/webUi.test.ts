/** The page in the composed server: at `/` by default, gone with WEB_UI=false, GraphiQL unaffected at /graphql. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startTestServer } from '../utils/testServer.js';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('WEB_UI', () => {
  it('should default to on and parse like the other switches', () => {
    expect(loadConfig([], {}).webUi).toBe(true);
    expect(loadConfig([], { WEB_UI: 'false' }).webUi).toBe(false);
    expect(loadConfig(['--web-ui', 'off'], {}).webUi).toBe(false);
  });

  it('should serve the page at / (open, also when API keys are on) next to GraphiQL at /graphql', async () => {
    const server = await startTestServer({ apiKeys: ['k'] });
    const page = await fetch(`${server.url}/`, { headers: { accept: BROWSER_ACCEPT } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('id="classify-form"');
    const graphiql = await fetch(`${server.url}/graphql`, { headers: { accept: BROWSER_ACCEPT } });
    expect(await graphiql.text()).toContain('GraphiQL');
    await server.stop();
  });

  it('should answer 404 at / with WEB_UI=false', async () => {
    const server = await startTestServer({ webUi: false });
    const page = await fetch(`${server.url}/`, { headers: { accept: BROWSER_ACCEPT } });
    expect(page.status).toBe(404);
    expect(((await page.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    await server.stop();
  });
});
