/**
 * @file The classification page: pick, drop or paste images, type classes, optionally choose a model and a
 * prompt template, and submit. Each image becomes one job (so one bad file fails only its own card), sent as a
 * file upload; its card follows the job live over the `jobUpdated` subscription. Cards stay listed, newest
 * first, while the page is open.
 *
 * The server embeds its settings as JSON in `<script type="application/json" id="clip-ui-config">` (no inline
 * script: the page's Content-Security-Policy forbids it).
 */
import { Api, ApiError, type JobUpdate, type ModelSummary } from './api.js';
import { parseClasses } from './classes.js';
import { byId, h } from './dom.js';
import { formatBytes } from './format.js';
import { JobCard } from './jobCard.js';
import { remembered, sessionKey } from './storage.js';

interface PageConfig {
  endpoint: string;
  apiKeyRequired: boolean;
}

function readConfig(): PageConfig {
  const element = document.getElementById('clip-ui-config');
  const parsed = JSON.parse(element?.textContent ?? '{}') as Partial<PageConfig>;
  return { endpoint: typeof parsed.endpoint === 'string' ? parsed.endpoint : '/graphql', apiKeyRequired: parsed.apiKeyRequired === true };
}

/** Files waiting to be submitted, shown as a list with a remove button each. */
class PendingFiles {
  readonly #files: File[] = [];
  readonly #list: HTMLUListElement;
  readonly #onChange: () => void;

  constructor(list: HTMLUListElement, onChange: () => void) {
    this.#list = list;
    this.#onChange = onChange;
  }

  get files(): readonly File[] {
    return this.#files;
  }

  add(files: Iterable<File>): void {
    for (const file of files) this.#files.push(file);
    this.#render();
  }

  clear(): void {
    this.#files.length = 0;
    this.#render();
  }

  #render(): void {
    this.#list.replaceChildren(
      ...this.#files.map((file, index) => {
        const remove = h('button', { className: 'chip-remove', text: '×', attrs: { type: 'button', 'aria-label': `Remove ${file.name}` } });
        remove.addEventListener('click', () => {
          this.#files.splice(index, 1);
          this.#render();
        });
        return h('li', { className: 'chip' }, [h('span', { className: 'chip-name', text: file.name }), h('span', { className: 'chip-size', text: formatBytes(file.size) }), remove]);
      }),
    );
    this.#onChange();
  }
}

function start(): void {
  const config = readConfig();
  const api = new Api({ endpoint: config.endpoint });
  const form = byId('classify-form', HTMLFormElement);
  const fileInput = byId('file-input', HTMLInputElement);
  const dropZone = byId('drop-zone', HTMLElement);
  const classesInput = byId('classes', HTMLTextAreaElement);
  const modelSelect = byId('model', HTMLSelectElement);
  const templateInput = byId('template', HTMLInputElement);
  const keyRow = byId('api-key-row', HTMLElement);
  const keyInput = byId('api-key', HTMLInputElement);
  const formError = byId('form-error', HTMLElement);
  const cards = byId('cards', HTMLElement);
  const noJobs = byId('no-jobs', HTMLElement);
  const pickedSummary = byId('picked-summary', HTMLElement);

  const pending = new PendingFiles(byId('picked', HTMLUListElement), () => {
    const count = pending.files.length;
    pickedSummary.textContent = count === 0 ? 'No images chosen yet.' : `${count} image${count === 1 ? '' : 's'} ready.`;
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
      ...models.map((model) => h('option', { text: `${model.name}${model.isDefault ? ' (default)' : ''}${model.ready ? '' : ' · loading'}`, attrs: { value: model.name } })),
    );
    modelSelect.value = models.some((model) => model.name === wanted) ? wanted : '';
    modelSelect.title = '';
  }
  void loadModels();

  // ---- choosing images: the picker, drag and drop (anywhere on the page), paste ----
  fileInput.addEventListener('change', () => {
    if (fileInput.files) pending.add(fileInput.files);
    fileInput.value = '';
  });
  let dragDepth = 0;
  document.addEventListener('dragenter', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return;
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
    if (event.dataTransfer && event.dataTransfer.files.length > 0) pending.add(event.dataTransfer.files);
  });
  document.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length === 0) return; // text pastes go where the person pastes them
    event.preventDefault();
    pending.add(files);
  });

  // ---- submitting ----
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const classes = parseClasses(classesInput.value);
    const problem = pending.files.length === 0 ? 'Choose, drop or paste at least one image.' : classes.length === 0 ? 'Type at least one class.' : '';
    formError.textContent = problem;
    if (problem !== '') {
      (pending.files.length === 0 ? fileInput : classesInput).focus();
      return;
    }
    remembered.set('classes', classesInput.value);
    remembered.set('promptTemplate', templateInput.value.trim());
    remembered.set('model', modelSelect.value);
    const model = modelSelect.value === '' ? undefined : modelSelect.value;
    const promptTemplate = templateInput.value.trim() === '' ? undefined : templateInput.value.trim();
    noJobs.hidden = true;
    const batch = pending.files.map((file) => ({ file, card: new JobCard(file) }));
    cards.prepend(...batch.map(({ card }) => card.element));
    pending.clear();
    for (const { file, card } of batch) void runJob(file, card, classes, model, promptTemplate);
  });

  async function runJob(file: File, card: JobCard, classes: string[], model: string | undefined, promptTemplate: string | undefined): Promise<void> {
    let created: JobUpdate;
    try {
      created = await api.classify({ file, classes, model, promptTemplate });
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
