/**
 * The code the GraphiQL page runs in the browser, and its stylesheet. They are served as files under the
 * assets path (never inline) so the page's Content-Security-Policy can forbid inline script.
 *
 * Kept as strings rather than files so that they exist wherever the server runs from (tsx on src/, or node
 * on a compiled dist/): tsc does not copy non-TS files. The script is plain ES2017 for the browser, not
 * type-checked: keep it small.
 *
 * The globals it uses come from the UMD bundles loaded before it: `React`, `ReactDOM` (react@18 and
 * react-dom@18 umd/) and `GraphiQL` (graphiql@3 graphiql.min.js, which bundles graphql-ws's client, so
 * `GraphiQL.createFetcher({ subscriptionUrl })` speaks graphql-transport-ws with no further asset). That
 * fetcher sends the headers editor's JSON as the websocket's `connectionParams`, so an API key set there
 * reaches `connection_init` as well as every HTTP request.
 */

/** Runs GraphiQL from the JSON config the page embeds in `<script type="application/json" id="graphiql-config">`. */
export const GRAPHIQL_BROWSER_SCRIPT = String.raw`(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('graphiql-config').textContent);
  // The websocket endpoint is on this page's host: http → ws, https → wss (behind a TLS proxy too).
  var wsScheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: new URL(config.endpoint, window.location.href).href,
    subscriptionUrl: wsScheme + '//' + window.location.host + config.subscriptionEndpoint
  });
  var props = {
    fetcher: fetcher,
    defaultTabs: config.defaultTabs,
    defaultEditorToolsVisibility: config.defaultHeaders ? 'headers' : 'variables',
    // An API key typed into the headers editor stays in memory, not in localStorage.
    shouldPersistHeaders: false
  };
  if (config.defaultHeaders) props.defaultHeaders = config.defaultHeaders;
  // GraphiQL 3 fills the first tab's query from defaultTabs but not its variables; on a first visit (no
  // saved tabs) hand them over explicitly. Afterwards the saved tabs win, as they should.
  if (!savedTabsExist() && config.defaultTabs.length > 0) props.variables = config.defaultTabs[0].variables;
  function savedTabsExist() {
    try {
      return window.localStorage.getItem('graphiql:tabState') !== null;
    } catch (error) {
      return false; // storage disabled: GraphiQL starts from defaultTabs every time
    }
  }
  var root = document.getElementById('graphiql');
  root.textContent = '';
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
`;

/** Makes GraphiQL fill the window. */
export const GRAPHIQL_PAGE_CSS = `html, body { height: 100%; margin: 0; overflow: hidden; }
#graphiql { height: 100vh; }
.graphiql-loading { font-family: system-ui, sans-serif; padding: 2rem; color: #555; }
`;
