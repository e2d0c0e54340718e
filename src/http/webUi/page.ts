/**
 * @file The classification page's HTML and its Content-Security-Policy. Pure functions; the express glue is in
 * src/http/webUi.ts and the code the page runs is src/web/.
 */
import { escapeHtml, sameHostSockets } from '../staticAsset.js';

/** What the page's script reads from its embedded JSON config (src/web/main.ts `PageConfig`). */
export interface WebUiPageConfig {
  endpoint: string;
  apiKeyRequired: boolean;
}

export interface WebUiPageOptions extends WebUiPageConfig {
  /** URL of the bundle's script and stylesheet (content-hashed). */
  scriptUrl: string;
  stylesheetUrl: string;
  /** Where GraphiQL is, or null when it is off. */
  graphiqlPath: string | null;
}

/** The HTML page: no inline script or style, so the CSP can forbid both. */
export function renderWebUiPage(options: WebUiPageOptions): string {
  const config: WebUiPageConfig = { endpoint: options.endpoint, apiKeyRequired: options.apiKeyRequired };
  // JSON inside <script> must not contain "</script>" or "<!--": escaping every "<" rules both out.
  const configJson = JSON.stringify(config).replace(/</g, '\\u003c');
  const graphiqlLink =
    options.graphiqlPath === null ? '' : `<a href="${escapeHtml(options.graphiqlPath)}">GraphiQL</a>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>CLIP classification</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${escapeHtml(options.stylesheetUrl)}">
<script type="application/json" id="clip-ui-config">${configJson}</script>
<script type="module" src="${escapeHtml(options.scriptUrl)}"></script>
</head>
<body>
<header class="top">
  <div>
    <h1>CLIP zero-shot classification</h1>
    <p>Images and class names in, the probability of each class out.</p>
  </div>
  <nav>${graphiqlLink}</nav>
</header>
<div class="layout">
  <form id="classify-form" class="panel" novalidate aria-label="Classify images">
    <div id="drop-zone" class="drop-zone">
      <p class="drop-title">Drop images here (from your files or another tab) or paste them or their URLs</p>
      <label class="label" for="file-input">Images</label>
      <input type="file" id="file-input" name="images" multiple accept="image/*">
      <label class="label" for="image-url">Image URL</label>
      <div class="url-row">
        <input type="url" id="image-url" name="image-url" inputmode="url" placeholder="https://example.com/photo.jpg" aria-describedby="image-url-hint">
        <button type="button" id="add-url" class="add-url">Add</button>
      </div>
      <p id="image-url-hint" class="hint">The server fetches it (public addresses only).</p>
      <p id="picked-summary" class="hint" aria-live="polite"></p>
      <ul id="picked" class="picked" aria-label="Chosen images"></ul>
    </div>
    <div class="field">
      <label for="classifier">Classifier</label>
      <select id="classifier" name="classifier" aria-describedby="classifier-hint"><option value="">The classes typed below</option></select>
      <p id="classifier-hint" class="hint">A preset (ImageNet-1k) or a saved classifier instead of typed classes.</p>
    </div>
    <div class="field">
      <label for="classes">Classes</label>
      <textarea id="classes" name="classes" rows="4" spellcheck="false" placeholder="a cat, a dog, a car" aria-describedby="classes-hint"></textarea>
      <p id="classes-hint" class="hint">Comma-separated or one per line. Remembered on this device.</p>
    </div>
    <div class="row">
      <div class="field">
        <label for="model">Model</label>
        <select id="model" name="model"><option value="">Server default</option></select>
      </div>
      <div class="field">
        <label for="template">Prompt template</label>
        <input type="text" id="template" name="template" placeholder="a photo of a {}." aria-describedby="template-hint">
      </div>
    </div>
    <p id="template-hint" class="hint">Optional; <code>{}</code> stands for each class.</p>
    <div id="api-key-row" class="field" hidden>
      <label for="api-key">API key</label>
      <input type="password" id="api-key" name="api-key" autocomplete="off" aria-describedby="api-key-hint">
      <p id="api-key-hint" class="hint">Kept for this tab only (session storage).</p>
    </div>
    <p id="form-error" class="form-error" role="alert"></p>
    <button type="submit" id="submit" class="submit">Classify</button>
  </form>
  <section class="jobs" aria-labelledby="jobs-title">
    <h2 id="jobs-title">Recent jobs</h2>
    <p id="no-jobs" class="empty">Results appear here, one card per image, most probable class first.</p>
    <div id="cards" class="cards"></div>
  </section>
</div>
<noscript><p class="empty">This page needs JavaScript. The API itself is at ${escapeHtml(options.endpoint)}.</p></noscript>
</body>
</html>
`;
}

/**
 * Scripts and styles only from this origin, no inline script or style, no eval; thumbnails from blob: URLs
 * (the picked files), network only to this origin, websockets included. Stricter than GraphiQL's (which needs
 * inline styles for its dialogs): nothing here injects a style element.
 */
export function webUiContentSecurityPolicy(host: string | undefined): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    `connect-src 'self'${sameHostSockets(host)}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
