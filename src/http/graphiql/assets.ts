/**
 * The static files the GraphiQL page needs, read from installed npm packages (no CDN: many users are
 * offline) and served under content-hashed names so they can be cached forever.
 *
 * Package files are located with `createRequire(import.meta.url).resolve('<pkg>/package.json')`, never a
 * hard-coded node_modules path, so hoisting or a different install layout does not break them.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CSS_CONTENT_TYPE as CSS, JS_CONTENT_TYPE as JS, makeAsset, type StaticAsset } from '../staticAsset.js';
import { GRAPHIQL_BROWSER_SCRIPT, GRAPHIQL_PAGE_CSS } from './browserScript.js';

/** One servable file. */
export type GraphiqlAsset = StaticAsset;

/** The assets in the order the page loads them. */
export interface GraphiqlAssets {
  reactJs: GraphiqlAsset;
  reactDomJs: GraphiqlAsset;
  graphiqlJs: GraphiqlAsset;
  graphiqlCss: GraphiqlAsset;
  pageCss: GraphiqlAsset;
  initJs: GraphiqlAsset;
  /** By `fileName`. */
  byFileName: ReadonlyMap<string, GraphiqlAsset>;
}

/**
 * Reads every asset once. Throws, naming the package and file, when one is missing: GraphiQL is part of the
 * server, so a broken install should fail at startup rather than serve a blank page.
 */
export function loadGraphiqlAssets(): GraphiqlAssets {
  const require = createRequire(import.meta.url);
  const fromPackage = (pkg: string, file: string, contentType: string): GraphiqlAsset => {
    let packageJson: string;
    try {
      packageJson = require.resolve(`${pkg}/package.json`);
    } catch (cause) {
      throw new Error(`GraphiQL needs the npm package "${pkg}", which is not installed; run npm install`, { cause });
    }
    const filePath = path.join(path.dirname(packageJson), file);
    let body: Buffer;
    try {
      body = fs.readFileSync(filePath);
    } catch (cause) {
      throw new Error(`GraphiQL asset "${file}" is missing from the npm package "${pkg}"`, { cause });
    }
    return makeAsset(path.basename(file), contentType, body);
  };

  const assets = {
    reactJs: fromPackage('react', 'umd/react.production.min.js', JS),
    reactDomJs: fromPackage('react-dom', 'umd/react-dom.production.min.js', JS),
    graphiqlJs: fromPackage('graphiql', 'graphiql.min.js', JS),
    graphiqlCss: fromPackage('graphiql', 'graphiql.min.css', CSS),
    pageCss: makeAsset('page.css', CSS, Buffer.from(GRAPHIQL_PAGE_CSS)),
    initJs: makeAsset('init.js', JS, Buffer.from(GRAPHIQL_BROWSER_SCRIPT)),
  };
  const byFileName = new Map(Object.values(assets).map((asset) => [asset.fileName, asset]));
  return { ...assets, byFileName };
}
