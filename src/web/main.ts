/**
 * @file The classification page: pick, drop or paste images (or their http(s) URLs: typed, pasted, or an image
 * dragged from another tab), type classes, optionally choose a model and a prompt template, and submit. Each image
 * becomes one job (so one bad file fails only its own card), a file sent as a file upload, a URL as the URL (the
 * server fetches it); its card follows the job live over the `jobUpdated` subscription. Cards stay listed, newest
 * first, while the page is open.
 *
 * The server embeds its settings as JSON in `<script type="application/json" id="clip-ui-config">` (no inline
 * script: the page's Content-Security-Policy forbids it).
 */
import {
  Api,
  ApiError,
  type ClassifierSummary,
  type ClassifyRequest,
  type JobUpdate,
  type ModelSummary,
} from './api.js';
import { parseClasses } from './classes.js';
import { byId, h } from './dom.js';
import { formatBytes } from './format.js';
import { displayNameOf, httpUrlOf, urlsOfPastedText, urlsOfUriList, type PendingImage } from './imageSources.js';
import { JobCard } from './jobCard.js';
import { remembered, sessionKey } from './storage.js';

interface PageConfig {
  endpoint: string;
  apiKeyRequired: boolean;
}

function readConfig(): PageConfig {
  const element = document.getElementById('clip-ui-config');
  const parsed = JSON.parse(element?.textContent ?? '{}') as Partial<PageConfig>;
  return {
    endpoint: typeof parsed.endpoint === 'string' ? parsed.endpoint : '/graphql',
    apiKeyRequired: parsed.apiKeyRequired === true,
  };
}

/** Images waiting to be submitted (files and URLs), shown as a list with a remove button each. */
class PendingImages {
  readonly #images: PendingImage[] = [];
  readonly #list: HTMLUListElement;
  readonly #onChange: () => void;

  constructor(list: HTMLUListElement, onChange: () => void) {
    this.#list = list;
    this.#onChange = onChange;
  }

  get images(): readonly PendingImage[] {
    return this.#images;
  }

  addFiles(files: Iterable<File>): void {
    for (const file of files) this.#images.push({ kind: 'file', file });
    this.#render();
  }

  addUrls(urls: Iterable<string>): void {
    for (const url of urls) this.#images.push({ kind: 'url', url });
    this.#render();
  }

  clear(): void {
    this.#images.length = 0;
    this.#render();
  }

  #render(): void {
    this.#list.replaceChildren(
      ...this.#images.map((image, index) => {
        const name = displayNameOf(image);
        const remove = h('button', {
          className: 'chip-remove',
          text: '×',
          attrs: { type: 'button', 'aria-label': `Remove ${name}` },
        });
        remove.addEventListener('click', () => {
          this.#images.splice(index, 1);
          this.#render();
        });
        const detail = image.kind === 'file' ? formatBytes(image.file.size) : 'URL';
        return h('li', { className: 'chip', attrs: { 'data-kind': image.kind } }, [
          h('span', { className: 'chip-name', text: name, attrs: { title: image.kind === 'url' ? image.url : name } }),
          h('span', { className: 'chip-size', text: detail }),
          remove,
        ]);
      }),
    );
    this.#onChange();
  }
}

/** True when a paste lands in a field that takes text, where it belongs. */
function isTextField(target: EventTarget | null): boolean {
  return target instanceof HTMLTextAreaElement || (target instanceof HTMLInputElement && target.type !== 'file');
}

function start(): void {
  const config = readConfig();
  const api = new Api({ endpoint: config.endpoint });
  const form = byId('classify-form', HTMLFormElement);
  const fileInput = byId('file-input', HTMLInputElement);
  const urlInput = byId('image-url', HTMLInputElement);
  const addUrlButton = byId('add-url', HTMLButtonElement);
  const dropZone = byId('drop-zone', HTMLElement);
  const classesInput = byId('classes', HTMLTextAreaElement);
  const classifierSelect = byId('classifier', HTMLSelectElement);
  const modelSelect = byId('model', HTMLSelectElement);
  const templateInput = byId('template', HTMLInputElement);
  const keyRow = byId('api-key-row', HTMLElement);
  const keyInput = byId('api-key', HTMLInputElement);
  const formError = byId('form-error', HTMLElement);
  const cards = byId('cards', HTMLElement);
  const noJobs = byId('no-jobs', HTMLElement);
  const pickedSummary = byId('picked-summary', HTMLElement);

  const pending = new PendingImages(byId('picked', HTMLUListElement), () => {
    const count = pending.images.length;
    pickedSummary.textContent =
      count === 0 ? 'No images chosen yet.' : `${count} image${count === 1 ? '' : 's'} ready.`;
    dropZone.classList.toggle('has-files', count > 0);
  });
  pending.clear();

  // ---- remembered values ----
  classesInput.value = remembered.get('classes') ?? '';
  templateInput.value = remembered.get('promptTemplate') ?? '';
  keyRow.hidden = !config.apiKeyRequired && sessionKey.get() === '';
  keyInput.value = sessionKey.get();
  api.setApiKey(keyInput.value);
  keyInput.addEventListener('change', () => {
    sessionKey.set(keyInput.value.trim());
    api.setApiKey(keyInput.value);
    void loadModels();
    void loadClassifiers();
  });

  // ---- models ----
  async function loadModels(): Promise<void> {
    let models: ModelSummary[];
    try {
      models = await api.models();
    } catch (error) {
      const reason = error instanceof ApiError ? `${error.code}: ${error.message}` : 'unavailable';
      modelSelect.replaceChildren(h('option', { text: 'Server default', attrs: { value: '' } }));
      modelSelect.title = `Models could not be listed (${reason})`;
      return;
    }
    const wanted = remembered.get('model') ?? '';
    modelSelect.replaceChildren(
      h('option', { text: 'Server default', attrs: { value: '' } }),
      ...models.map((model) =>
        h('option', {
          text: `${model.name}${model.isDefault ? ' (default)' : ''}${model.ready ? '' : ' · loading'}`,
          attrs: { value: model.name },
        }),
      ),
    );
    modelSelect.value = models.some((model) => model.name === wanted) ? wanted : '';
    modelSelect.title = '';
  }
  void loadModels();

  // ---- classifiers: a preset or a saved one instead of typed classes ----
  const chooseClassifier = (): void => {
    const chosen = classifierSelect.value !== '';
    classesInput.disabled = chosen;
    templateInput.disabled = chosen;
  };
  async function loadClassifiers(): Promise<void> {
    let classifiers: ClassifierSummary[];
    try {
      classifiers = await api.classifiers();
    } catch {
      classifiers = [];
    }
    const wanted = remembered.get('classifier') ?? '';
    classifierSelect.replaceChildren(
      h('option', { text: 'The classes typed below', attrs: { value: '' } }),
      ...classifiers.map((classifier) =>
        h('option', {
          text: `${classifier.preset ? classifier.id : classifier.name} · ${classifier.classCount} classes`,
          attrs: { value: classifier.id, title: classifier.name },
        }),
      ),
    );
    classifierSelect.value = classifiers.some((classifier) => classifier.id === wanted) ? wanted : '';
    chooseClassifier();
  }
  classifierSelect.addEventListener('change', () => {
    remembered.set('classifier', classifierSelect.value);
    chooseClassifier();
  });
  void loadClassifiers();

  // ---- choosing images: the picker, a typed URL, drag and drop (anywhere on the page), paste ----
  fileInput.addEventListener('change', () => {
    if (fileInput.files) pending.addFiles(fileInput.files);
    fileInput.value = '';
  });
  const addTypedUrl = (): void => {
    const url = httpUrlOf(urlInput.value);
    formError.textContent = url === null ? 'An image URL must be an http or https address.' : '';
    if (url === null) return;
    pending.addUrls([url]);
    urlInput.value = '';
  };
  addUrlButton.addEventListener('click', addTypedUrl);
  urlInput.addEventListener('keydown', (event) => {
    // Enter adds the URL instead of submitting the form with it still in the box.
    if (event.key !== 'Enter') return;
    event.preventDefault();
    addTypedUrl();
  });
  let dragDepth = 0;
  const carriesImages = (event: DragEvent): boolean =>
    ['Files', 'text/uri-list'].some((type) => event.dataTransfer?.types.includes(type) === true);
  document.addEventListener('dragenter', (event) => {
    if (!carriesImages(event)) return;
    dragDepth += 1;
    dropZone.classList.add('dragging');
  });
  document.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropZone.classList.remove('dragging');
  });
  // Without this the browser would open a dropped file in place of the page.
  document.addEventListener('dragover', (event) => event.preventDefault());
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    dragDepth = 0;
    dropZone.classList.remove('dragging');
    const transfer = event.dataTransfer;
    if (!transfer) return;
    // An image dragged from another tab carries its address (and sometimes its bytes too): the address is sent,
    // so the server fetches the original rather than the browser's copy.
    const urls = urlsOfUriList(transfer.getData('text/uri-list'));
    if (urls.length > 0) pending.addUrls(urls);
    else if (transfer.files.length > 0) pending.addFiles(transfer.files);
  });
  document.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length > 0) {
      event.preventDefault();
      pending.addFiles(files);
      return;
    }
    // Text pastes go where the person pastes them; elsewhere on the page, pasted image URLs are taken.
    if (isTextField(event.target)) return;
    const urls = urlsOfPastedText(event.clipboardData?.getData('text/plain') ?? '');
    if (urls.length === 0) return;
    event.preventDefault();
    pending.addUrls(urls);
  });

  // ---- submitting ----
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const classes = parseClasses(classesInput.value);
    const classifier = classifierSelect.value === '' ? undefined : classifierSelect.value;
    const problem =
      pending.images.length === 0
        ? 'Choose, drop or paste at least one image, or add its URL.'
        : classes.length === 0 && classifier === undefined
          ? 'Type at least one class, or choose a classifier.'
          : '';
    formError.textContent = problem;
    if (problem !== '') {
      (pending.images.length === 0 ? fileInput : classesInput).focus();
      return;
    }
    remembered.set('classes', classesInput.value);
    remembered.set('promptTemplate', templateInput.value.trim());
    remembered.set('model', modelSelect.value);
    remembered.set('classifier', classifierSelect.value);
    const model = modelSelect.value === '' ? undefined : modelSelect.value;
    const promptTemplate = templateInput.value.trim() === '' ? undefined : templateInput.value.trim();
    noJobs.hidden = true;
    const batch = pending.images.map((image) => ({ image, card: new JobCard(image) }));
    cards.prepend(...batch.map(({ card }) => card.element));
    pending.clear();
    for (const { image, card } of batch) void runJob(image, card, { classes, classifier, model, promptTemplate });
  });

  async function runJob(image: PendingImage, card: JobCard, request: Omit<ClassifyRequest, 'image'>): Promise<void> {
    let created: JobUpdate;
    try {
      created = await api.classify({ image, ...request });
    } catch (error) {
      card.fail(error instanceof ApiError ? error : new ApiError('ERROR', String(error)));
      return;
    }
    card.update(created);
    if (['COMPLETE', 'FAILED', 'CANCELLED'].includes(created.status)) return;
    api.watchJob(created.id, { next: (job) => card.update(job), error: (error) => card.fail(error) });
  }
}

start();
