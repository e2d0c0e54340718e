/**
 * One real-browser check of GraphiQL: headless Debian Chromium (playwright-core) opens GET /graphql on the
 * real server, runs a `classify` mutation, then follows the job with a `jobUpdated` subscription over
 * graphql-ws until it is COMPLETE. Every request the page makes must go to the server's own origin (the
 * assets are served from npm packages, no CDN), and the page must log no error (a CSP violation would).
 * With API keys on, the key typed into the headers editor must carry both the HTTP mutation and the
 * websocket subscription (GraphiQL sends the headers as `connectionParams`).
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`); skipped with a message when it is absent.
 * Leaves a screenshot at /tmp/graphiql.png.
 */
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from '../utils/browser.js';
import { startTestServer, tinyImages, type TestServer } from '../utils/testServer.js';

const SCREENSHOT = '/tmp/graphiql.png';
const hasChromium = chromiumAvailable('the GraphiQL browser test');

const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
const RESPONSE_EDITOR = '.graphiql-response .CodeMirror';
const CLASSES = ['a red square', 'a blue circle', 'a dog'];

// The page's code runs in the browser and this project's TypeScript has no DOM types, so browser-side
// snippets are passed as strings. CodeMirror 5 keeps its editor object on the wrapper element.
function setQuery(page: Page, query: string): Promise<unknown> {
  return page.evaluate(
    `document.querySelector(${JSON.stringify(QUERY_EDITOR)}).CodeMirror.setValue(${JSON.stringify(query)})`,
  );
}

function responseText(page: Page): Promise<string> {
  return page.evaluate<string>(`document.querySelector(${JSON.stringify(RESPONSE_EDITOR)}).CodeMirror.getValue()`);
}

/**
 * Sets the query editor and waits until GraphiQL has taken in the new operation's name. GraphiQL reads it
 * from the editor after a debounce; running before then would send the previous operation's name. Its
 * saved tab state (written after the in-memory state) tells when that has happened.
 */
async function enterOperation(page: Page, name: string, query: string): Promise<void> {
  await setQuery(page, query);
  const activeOperationName = `(() => {
    const state = JSON.parse(window.localStorage.getItem('graphiql:tabState') || 'null');
    const tab = state && state.tabs[state.activeTabIndex];
    return tab ? tab.operationName : null;
  })()`;
  await expect.poll(() => page.evaluate(activeOperationName), { timeout: 10_000 }).toBe(name);
}

/** Waits until the response pane shows JSON that `accept` takes, and returns what it returned. */
async function waitForResponse<T>(
  page: Page,
  accept: (body: unknown) => T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (;;) {
    last = await responseText(page);
    try {
      const value = accept(JSON.parse(last));
      if (value !== undefined) return value;
    } catch {
      // Empty or partial text while GraphiQL is still rendering.
    }
    if (Date.now() > deadline) throw new Error(`the response pane never showed the expected result; last:\n${last}`);
    await page.waitForTimeout(50);
  }
}

interface ClassifyAnswer {
  id: string;
  status: string;
  model: string;
}

/** Enters and runs (with the run button) a classify mutation; resolves with the job the pane shows. */
async function runClassify(page: Page, image: string): Promise<ClassifyAnswer> {
  await enterOperation(
    page,
    'ClassifyFromBrowser',
    `mutation ClassifyFromBrowser {
  classify(input: { image: ${JSON.stringify(image)}, classes: ${JSON.stringify(CLASSES)} }) {
    id
    status
    model
  }
}`,
  );
  await page.click('.graphiql-execute-button');
  return waitForResponse(page, (body) => (body as { data?: { classify?: ClassifyAnswer } }).data?.classify);
}

interface JobUpdate {
  id: string;
  status: string;
  result: { images: { probabilities: number[] }[] } | null;
}

/** Enters and runs (with Ctrl-Enter) a jobUpdated subscription; resolves with the COMPLETE state. */
async function followToCompletion(page: Page, jobId: string): Promise<JobUpdate> {
  await enterOperation(
    page,
    'FollowJob',
    `subscription FollowJob {
  jobUpdated(id: ${JSON.stringify(jobId)}) {
    id
    status
    result {
      images {
        probabilities
        top(k: 3) { label probability }
      }
    }
  }
}`,
  );
  await page.click(QUERY_EDITOR);
  await page.keyboard.press('Control+Enter');
  return waitForResponse(page, (body) => {
    const update = (body as { data?: { jobUpdated?: JobUpdate } }).data?.jobUpdated;
    return update?.status === 'COMPLETE' ? update : undefined;
  });
}

function expectDistribution(update: JobUpdate): void {
  const probabilities = update.result?.images[0]?.probabilities ?? [];
  expect(probabilities).toHaveLength(CLASSES.length);
  expect(probabilities.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 5);
}

describe.skipIf(!hasChromium)('GraphiQL in headless Chromium', () => {
  let browser: Browser;
  let image: string;

  beforeAll(async () => {
    browser = await launchChromium();
    [image = ''] = await tinyImages();
  });

  afterAll(async () => {
    await browser?.close();
  });

  describe('without API keys', () => {
    let server: TestServer;
    let context: BrowserContext;
    let page: Page;
    const requests: string[] = [];
    const websockets: string[] = [];
    const problems: string[] = [];
    let jobId = '';

    beforeAll(async () => {
      server = await startTestServer();
      context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      page = await context.newPage();
      page.on('request', (request) => requests.push(request.url()));
      page.on('websocket', (socket) => websockets.push(socket.url()));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning')
          problems.push(`console ${message.type()}: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    });

    afterAll(async () => {
      await context?.close();
    });

    it('should render GraphiQL with the schema loaded', async () => {
      // GraphiQL introspects the schema as soon as it starts; without it there is no completion or docs.
      const introspection = page.waitForResponse(
        (answer) =>
          answer.url() === server.graphqlUrl && (answer.request().postData() ?? '').includes('IntrospectionQuery'),
        { timeout: 30_000 },
      );
      const response = await page.goto(`${server.url}/graphql`);
      expect(response?.status()).toBe(200);
      expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
      const schema = (await (await introspection).json()) as {
        data?: { __schema?: { mutationType?: { name: string } } };
      };
      expect(schema.data?.__schema?.mutationType?.name).toBe('Mutation');
      await page.waitForSelector(QUERY_EDITOR, { timeout: 30_000 });
      await page.waitForSelector('.graphiql-execute-button', { timeout: 10_000 });
      expect(await page.title()).toContain('GraphiQL');
    });

    it('should run a classify mutation and show the job it created', async () => {
      const job = await runClassify(page, image);
      expect(job.id).toMatch(/\S+/);
      expect(['QUEUED', 'RUNNING', 'COMPLETE']).toContain(job.status);
      expect(job.model).toBe('tiny');
      await expect.poll(() => page.locator('.graphiql-response').innerText()).toContain(job.id);
      jobId = job.id;
    });

    it('should follow the job over a graphql-ws subscription to COMPLETE', async () => {
      expect(jobId).not.toBe('');
      const update = await followToCompletion(page, jobId);
      expect(update.id).toBe(jobId);
      expectDistribution(update);
      await expect.poll(() => page.locator('.graphiql-response').innerText()).toContain('COMPLETE');
      expect(websockets).toContain(server.wsUrl);
      await page.screenshot({ path: SCREENSHOT });
    });

    it('should load everything from the server itself and log no errors', () => {
      const origin = new URL(server.url).origin;
      expect(requests.length).toBeGreaterThan(5);
      // data: URLs (the CSS's embedded fonts) are not network requests.
      const external = requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'));
      expect(external).toEqual([]);
      expect(websockets.every((url) => url.startsWith(`ws://${new URL(server.url).host}/`))).toBe(true);
      expect(problems).toEqual([]);
    });
  });

  describe('with API keys', () => {
    const KEY = 'browser-test-key';
    let server: TestServer;
    let context: BrowserContext;
    let page: Page;

    const headerEditors = `Array.from(document.querySelectorAll('.graphiql-editor-tool .CodeMirror'))`;
    const headersText = (): Promise<string> =>
      page.evaluate<string>(
        `${headerEditors}.map((e) => e.CodeMirror.getValue()).find((v) => v.includes('Authorization')) || ''`,
      );

    beforeAll(async () => {
      server = await startTestServer({ apiKeys: [KEY] });
      context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      page = await context.newPage();
    });

    afterAll(async () => {
      await context?.close();
    });

    it('should open with the headers editor offering an Authorization header', async () => {
      const response = await page.goto(`${server.url}/graphql`);
      expect(response?.status()).toBe(200);
      await page.waitForSelector(QUERY_EDITOR, { timeout: 30_000 });
      await expect
        .poll(async () => JSON.parse((await headersText()) || '{}') as unknown)
        .toEqual({ Authorization: 'Bearer <your API key>' });
    });

    it('should refuse a mutation until the key is set, then run it and its subscription with the key', async () => {
      await enterOperation(
        page,
        'ClassifyFromBrowser',
        `mutation ClassifyFromBrowser { classify(input: { image: ${JSON.stringify(image)}, classes: ["a"] }) { id } }`,
      );
      await page.click('.graphiql-execute-button');
      await waitForResponse(page, (body) =>
        (body as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code === 'UNAUTHENTICATED'
          ? true
          : undefined,
      );

      await page.evaluate(
        `${headerEditors}.find((e) => e.CodeMirror.getValue().includes('Authorization')).CodeMirror.setValue(${JSON.stringify(JSON.stringify({ Authorization: `Bearer ${KEY}` }))})`,
      );
      const job = await runClassify(page, image);
      expect(job.id).toMatch(/\S+/);
      // The same headers go to connection_init as connectionParams; a wrong or missing key would close the socket.
      const update = await followToCompletion(page, job.id);
      expect(update.id).toBe(job.id);
      expectDistribution(update);
    });
  });
});
