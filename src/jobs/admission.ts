/**
 * The admission rule, in one place for the memory queue and the API's early check (the Redis queue runs the same
 * rule in its reserve script): a job is refused when the queue is full (jobs, images, bytes), or when its owner
 * already holds its fair share of the queue, so one API key flooding the queue cannot refuse everyone else.
 */
import type { AdmissionLimit, AdmissionLimits, QueueCounts } from './JobQueue.js';

/** What a job would add to the counts. */
export interface AdmissionRequest {
  owner: string | null;
  images: number;
  imageBytes: number;
}

/** The first limit the job would pass, or null when it fits. Jobs without an owner (authentication off) have no share. */
export function exceededLimit(
  counts: QueueCounts,
  request: AdmissionRequest,
  limits: AdmissionLimits,
): AdmissionLimit | null {
  if (counts.jobs >= limits.maxJobs) return 'jobs';
  if (counts.images + request.images > limits.maxImages) return 'images';
  if (counts.imageBytes + request.imageBytes > limits.maxImageBytes) return 'imageBytes';
  if (request.owner === null) return null;
  const own = counts.owners[request.owner] ?? { jobs: 0, images: 0 };
  if (own.jobs >= limits.maxJobsPerOwner) return 'ownerJobs';
  if (own.images + request.images > limits.maxImagesPerOwner) return 'ownerImages';
  return null;
}
