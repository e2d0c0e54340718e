/**
 * The GraphiQL HTML page and its Content-Security-Policy. Pure functions: the express glue is in
 * src/http/graphiql.ts.
 */
import type { GraphiqlAssets } from './assets.js';

/** What the page's browser script reads from its embedded JSON config. */
export interface GraphiqlPageConfig {
  endpoint: string;
  subscriptionEndpoint: string;
  /** Pre-filled headers editor content (JSON text), when API keys are on. */
  defaultHeaders?: string;
  defaultTabs: { query: string; variables?: string }[];
}

export interface GraphiqlPageOptions {
  endpoint: string;
  subscriptionEndpoint: string;
  assetsPath: string;
  /** A header name to pre-fill in the headers editor, or undefined for none. */
  apiKeyHeader: string | undefined;
  title: string;
}

// A 16×16 red PNG: small enough to read, big enough for any image pipeline's minimum size.
const SAMPLE_IMAGE =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAACXBIWXMAAAPoAAAD6AG1e1JrAAAAGUlEQVQokWO4IydHEmIY1SA3Gkp3hmvSAACaMxgQnv1u2AAAAABJRU5ErkJggg==';

const CLASSIFY_TAB = {
  query: `# Classify an image against a list of classes: run it with the ▶ button or Ctrl-Enter.
# \`image\` takes a data URL, bare base64 or an http(s) URL; \`images\` takes several (one result each).
# The answer is a job: copy its id into the JobUpdated tab to follow it to the end.
mutation Classify($input: ClassifyInput!) {
  classify(input: $input) {
    id
    status
    model
    createdAt
  }
}
`,
  variables: JSON.stringify(
    { input: { image: SAMPLE_IMAGE, classes: ['a red square', 'a blue circle', 'a photo of a cat'] } },
    null,
    2,
  ),
};

const JOB_UPDATED_TAB = {
  query: `# Follow a job over the websocket (graphql-ws): its state at once, then every change until it finishes.
subscription JobUpdated($id: ID!) {
  jobUpdated(id: $id) {
    id
    status
    result {
      images {
        top(k: 3) {
          label
          probability
        }
      }
    }
    error {
      code
      message
    }
  }
}
`,
  variables: JSON.stringify({ id: 'paste a job id here' }, null, 2),
};

const EMBED_TAB = {
  query: `# Embed texts (or images, with embedImages): one L2-normalised vector per input, in order.
# Texts are embedded verbatim unless config names a template. Follow the job in the JobUpdated tab,
# selecting \`embeddings { dimensions vectors }\` instead of \`result\`.
mutation EmbedTexts($input: EmbedTextsInput!) {
  embedTexts(input: $input) {
    id
    status
    task
    model
  }
}
`,
  variables: JSON.stringify({ input: { texts: ['a red square', 'a photo of a cat'] } }, null, 2),
};

const MODELS_TAB = {
  query: `# The models this server has configured.
query Models {
  models {
    name
  }
}
`,
};

/** The config embedded in the page. */
export function graphiqlPageConfig(options: GraphiqlPageOptions): GraphiqlPageConfig {
  const config: GraphiqlPageConfig = {
    endpoint: options.endpoint,
    subscriptionEndpoint: options.subscriptionEndpoint,
    defaultTabs: [CLASSIFY_TAB, JOB_UPDATED_TAB, MODELS_TAB, EMBED_TAB],
  };
  if (options.apiKeyHeader !== undefined) {
    const placeholder =
      options.apiKeyHeader.toLowerCase() === 'authorization' ? 'Bearer <your API key>' : '<your API key>';
    config.defaultHeaders = JSON.stringify({ [options.apiKeyHeader]: placeholder }, null, 2);
  }
  return config;
}

/** The HTML page: no inline script or style, so the CSP can forbid both. */
export function renderGraphiqlPage(options: GraphiqlPageOptions, assets: GraphiqlAssets): string {
  const asset = (fileName: string): string => escapeHtml(`${options.assetsPath}/${fileName}`);
  // JSON inside <script> must not contain "</script>" or "<!--": escaping every "<" rules both out.
  const configJson = JSON.stringify(graphiqlPageConfig(options)).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(options.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${asset(assets.graphiqlCss.fileName)}">
<link rel="stylesheet" href="${asset(assets.pageCss.fileName)}">
</head>
<body>
<div id="graphiql"><p class="graphiql-loading">Loading GraphiQL…</p></div>
<script type="application/json" id="graphiql-config">${configJson}</script>
<script src="${asset(assets.reactJs.fileName)}"></script>
<script src="${asset(assets.reactDomJs.fileName)}"></script>
<script src="${asset(assets.graphiqlJs.fileName)}"></script>
<script src="${asset(assets.initJs.fileName)}"></script>
<noscript>GraphiQL needs JavaScript. The API itself is at ${escapeHtml(options.endpoint)}.</noscript>
</body>
</html>
`;
}

/**
 * The page's Content-Security-Policy. Scripts and stylesheets only from this origin, no inline script, no
 * eval; fonts and the favicon as data: URLs (graphiql.min.css embeds its fonts); network only to this
 * origin, websockets included. `host` is the request's Host header, used only when it looks like a
 * host[:port], so a forged one cannot widen the policy beyond itself.
 *
 * `style-src 'unsafe-inline'` is kept because the dialogs GraphiQL opens (Radix UI's scroll lock,
 * react-style-singleton) inject `<style>` elements without a nonce; styles cannot run code. The main flow
 * (edit, run, subscribe) was checked to run without it, so script-src is where the strictness matters.
 */
export function graphiqlContentSecurityPolicy(host: string | undefined): string {
  const sameHostSockets =
    host !== undefined && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
      ? ` ws://${host} wss://${host}`
      : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self'${sameHostSockets}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
