/**
 * @file One image's card: its thumbnail, the job's live state, then its classes as horizontal bars, most probable
 * first, with percentages; or the error code and message when the job was refused or failed.
 */
import type { ApiError, JobStatus, JobUpdate } from './api.js';
import { h } from './dom.js';
import { displayNameOf, type PendingImage } from './imageSources.js';
import { formatBytes, formatPercent, rankClasses } from './format.js';

/** Most classes shown on a card. */
const MAX_BARS = 10;

const STATUS_TEXT: Record<JobStatus | 'SENDING', string> = {
  SENDING: 'Uploading',
  QUEUED: 'Queued',
  RUNNING: 'Running',
  COMPLETE: 'Complete',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

export class JobCard {
  readonly element: HTMLElement;
  readonly #status: HTMLElement;
  readonly #body: HTMLElement;
  readonly #jobId: HTMLElement;
  readonly #model: HTMLElement;
  readonly #jobRef: HTMLElement;

  constructor(source: PendingImage) {
    const name = displayNameOf(source);
    // A URL's picture is not loaded by the page (it talks to this server only): its name stands in for it.
    const missing = (): HTMLElement => h('div', { className: 'thumb thumb-missing', text: name });
    let thumb: HTMLElement = missing();
    if (source.kind === 'file') {
      // The object URL lives as long as the page: cards stay listed while it is open.
      const image = h('img', { className: 'thumb', attrs: { src: URL.createObjectURL(source.file), alt: name } });
      // A file the browser cannot show (e.g. not an image) still gets a card, with its name where the picture would be.
      image.addEventListener('error', () => image.replaceWith(missing()), { once: true });
      thumb = image;
    }
    this.#status = h('span', { className: 'status', attrs: { 'data-status': 'SENDING' }, text: STATUS_TEXT.SENDING });
    this.#jobId = h('code', { className: 'job-id' });
    this.#model = h('span', { className: 'model' });
    // Hidden until the server has made a job (a refused upload has none).
    this.#jobRef = h('span', { className: 'job-ref' }, [' · job ', this.#jobId]);
    this.#jobRef.hidden = true;
    this.#body = h('div', { className: 'card-body', attrs: { 'aria-live': 'polite' } });
    this.element = h('article', { className: 'card', attrs: { 'data-status': 'SENDING' } }, [
      h('div', { className: 'thumb-frame' }, [thumb]),
      h('div', { className: 'card-main' }, [
        h('header', { className: 'card-head' }, [
          h('span', {
            className: 'file-name',
            text: name,
            attrs: { title: source.kind === 'url' ? source.url : name },
          }),
          this.#status,
        ]),
        h('p', { className: 'card-meta' }, [
          source.kind === 'file' ? formatBytes(source.file.size) : 'URL',
          this.#model,
          this.#jobRef,
        ]),
        this.#body,
      ]),
    ]);
  }

  /** The job's state as it changes (the mutation's answer, then each `jobUpdated`). */
  update(job: JobUpdate): void {
    this.#setStatus(job.status);
    // The first group of the UUID is enough to tell jobs apart on a page; the whole id is its tooltip.
    this.#jobId.textContent = job.id.slice(0, 8);
    this.#jobId.title = job.id;
    this.#model.textContent = ` · ${job.model}`;
    this.#jobRef.hidden = false;
    this.element.dataset.jobId = job.id;
    switch (job.status) {
      case 'QUEUED':
      case 'RUNNING':
        this.#body.replaceChildren(
          h('p', { className: 'pending', text: job.status === 'QUEUED' ? 'Waiting for the model…' : 'Classifying…' }),
        );
        break;
      case 'COMPLETE':
        this.#showResult(job);
        break;
      case 'FAILED':
        this.#showError(job.error?.code ?? 'FAILED', job.error?.message ?? 'The job failed');
        break;
      case 'CANCELLED':
        this.#body.replaceChildren(h('p', { className: 'pending', text: 'The job was cancelled.' }));
        break;
    }
  }

  /** A refusal (the mutation's error) or a lost subscription. */
  fail(error: ApiError): void {
    this.#setStatus('FAILED');
    this.#showError(error.code, error.message);
  }

  #setStatus(status: JobStatus | 'SENDING'): void {
    this.#status.textContent = STATUS_TEXT[status];
    this.#status.dataset.status = status;
    this.element.dataset.status = status;
  }

  #showResult(job: JobUpdate): void {
    const probabilities = job.result?.images[0]?.probabilities ?? [];
    // A stored classifier may have a thousand classes: the most probable ones are the answer.
    const ranked = rankClasses(job.classes, probabilities).slice(0, MAX_BARS);
    const list = h('ol', { className: 'bars', attrs: { 'aria-label': `Classes for ${job.id}, most probable first` } });
    for (const [rank, { label, probability }] of ranked.entries()) {
      const fill = h('span', { className: 'bar-fill' });
      // CSSOM, not a style attribute: the page's CSP allows no inline styles.
      fill.style.width = `${(probability * 100).toFixed(2)}%`;
      list.append(
        h('li', { className: rank === 0 ? 'bar first' : 'bar' }, [
          h('span', { className: 'bar-label', text: label, attrs: { title: label } }),
          h('span', { className: 'bar-value', text: formatPercent(probability) }),
          h('span', { className: 'bar-track', attrs: { 'aria-hidden': 'true' } }, [fill]),
        ]),
      );
    }
    this.#body.replaceChildren(list);
  }

  #showError(code: string, message: string): void {
    this.#body.replaceChildren(
      h('div', { className: 'error', attrs: { role: 'alert' } }, [
        h('code', { className: 'error-code', text: code }),
        h('p', { className: 'error-message', text: message }),
      ]),
    );
  }
}
