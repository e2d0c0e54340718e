/**
 * The one paragraph a person reads when the server cannot start, so a first start explains itself: what it
 * tried, from where, why it failed, and the ways out. Pure: it only reads the error chain and the configuration,
 * so main prints it and tests check it without a process.
 */
import { ExecutionProviderUnavailableError, HubError, howToInstall } from './clip/index.js';
import type { Config } from './config.js';
import { isAppError, ErrorCode } from './errors.js';

/** The command that writes a random-weight model, for trying the server without real weights. */
export const MAKE_TEST_MODEL_COMMAND = 'npm run make-test-model -- --out DIR --preset tiny';

/** The first error in `error`'s cause chain that `match` accepts. */
function findCause<T>(error: unknown, match: (candidate: unknown) => candidate is T): T | undefined {
  const seen = new Set<unknown>();
  for (let current: unknown = error; current !== undefined && current !== null && !seen.has(current);) {
    seen.add(current);
    if (match(current)) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `text` as a sentence of its own: capitalised, ending in a full stop. */
function sentence(text: string): string {
  const trimmed = text.trim();
  const capitalised = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capitalised) ? capitalised : `${capitalised}.`;
}

const isHubError = (candidate: unknown): candidate is HubError => candidate instanceof HubError;
const isProviderError = (candidate: unknown): candidate is ExecutionProviderUnavailableError =>
  candidate instanceof ExecutionProviderUnavailableError;

const PROVIDER_REASONS = {
  'not-in-binary': 'the installed onnxruntime-node was not built with it',
  'not-installed': 'its libraries are not installed',
  failed: 'ONNX Runtime could not create a session with it',
} as const;

/** A provider ORT_EXECUTION_PROVIDERS names that this machine's onnxruntime-node cannot use. */
function explainProviderFailure(error: ExecutionProviderUnavailableError, config: Config): string {
  const others = config.ortExecutionProviders.filter((provider) => provider !== error.provider);
  const without = others.length === 0 ? 'cpu' : others.join(',');
  return [
    `clip-server could not start: ORT_EXECUTION_PROVIDERS=${config.ortExecutionProviders.join(',')} asks for the ${error.provider} execution provider,`,
    `but ${PROVIDER_REASONS[error.reason]}: ${sentence(error.detail)}`,
    `Ways out: ${howToInstall(error.provider, error.reason)}; or leave ${error.provider} out (ORT_EXECUTION_PROVIDERS=${without}).`,
  ].join(' ');
}

/** Ways out of a failed download, most likely first for the reason. */
function hubWaysOut(error: HubError, config: Config): string[] {
  const local = `set CLIP_MODEL to a local model directory (Hugging Face layout: config.json, preprocessor_config.json, tokenizer.json, onnx/*.onnx)`;
  const tryOut = `or try the server without real weights: \`${MAKE_TEST_MODEL_COMMAND}\`, then \`CLIP_MODEL=DIR npm start\``;
  switch (error.reason) {
    case 'offline-miss':
      return [
        `unset HF_HUB_OFFLINE (it is on) so the files can be downloaded once`,
        `point MODEL_CACHE_DIR at a cache that holds them`,
        local,
        tryOut,
      ];
    case 'unauthorized':
      return [`set HF_TOKEN to a token with access to the repo`, `use a public model in CLIP_MODEL`, local, tryOut];
    case 'not-found':
      return [`check the model id in CLIP_MODEL (owner/name[@revision]) and CLIP_PRECISION`, local, tryOut];
    case 'network':
    case 'http':
    case 'integrity':
      return [
        `check the network connection to ${config.hfEndpoint}, or set HF_ENDPOINT to a mirror of the Hugging Face hub`,
        local,
        tryOut,
      ];
    default:
      return [local, tryOut];
  }
}

/**
 * One paragraph (no stack trace) explaining why the server could not start, for the operator's terminal
 * and the fatal log line. Model failures (a download, a broken model directory, a wrong CLIP_MODEL) get
 * their specific story and ways out; anything else its message.
 */
export function explainStartFailure(error: unknown, config: Config): string {
  const model = `the default model ${JSON.stringify(config.clipModel)}`;
  const provider = findCause(error, isProviderError);
  if (provider !== undefined) return explainProviderFailure(provider, config);
  const hub = findCause(error, isHubError);
  if (hub !== undefined) {
    // Hub messages usually name the file and URL already; say them only when they do not.
    const named = hub.url === undefined || hub.message.includes(hub.url);
    const tried = named ? '' : ` It tried to download ${hub.file} from ${hub.url}.`;
    return [
      `clip-server could not start: ${model} is not available.${tried} ${sentence(hub.message)}`,
      `Ways out: ${hubWaysOut(hub, config).join('; ')}.`,
    ].join(' ');
  }
  const appError = findCause(error, isAppError);
  if (appError?.code === ErrorCode.ModelUnavailable) {
    return [
      `clip-server could not start: ${model} is a model directory that cannot be used: ${sentence(appError.message)}`,
      `Ways out: fix or replace that file (re-download the model, or delete the directory's broken file and start again to fetch it);`,
      `set CLIP_MODEL to another model directory or hub id; or try the server without real weights: \`${MAKE_TEST_MODEL_COMMAND}\`, then \`CLIP_MODEL=DIR npm start\`.`,
    ].join(' ');
  }
  if (appError?.code === ErrorCode.BadUserInput) {
    return [
      `clip-server could not start: CLIP_MODEL=${JSON.stringify(config.clipModel)} names no model it can load: ${sentence(appError.message)}`,
      `Ways out: a catalogue name (e.g. clip-vit-base-patch32), a hub id (owner/name[@revision]) or an existing model directory;`,
      `or try the server without real weights: \`${MAKE_TEST_MODEL_COMMAND}\`, then \`CLIP_MODEL=DIR npm start\`.`,
    ].join(' ');
  }
  const loadFailure = (error as { cause?: unknown } | null)?.cause;
  if (loadFailure !== undefined) {
    // ClipService's rejection wraps what went wrong loading the model (e.g. ONNX Runtime refusing a graph file).
    return [
      `clip-server could not start: ${model} could not be loaded: ${sentence(messageOf(loadFailure))}`,
      `Ways out: replace the file named there (re-download or regenerate the model); set CLIP_MODEL to another model directory or hub id;`,
      `or try the server without real weights: \`${MAKE_TEST_MODEL_COMMAND}\`, then \`CLIP_MODEL=DIR npm start\`. (LOG_LEVEL=debug logs the stack trace.)`,
    ].join(' ');
  }
  return `clip-server could not start: ${sentence(messageOf(error))} (LOG_LEVEL=debug logs the stack trace.)`;
}
