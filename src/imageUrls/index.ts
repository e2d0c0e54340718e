/** The image-URL folder's public surface: the guarded fetcher and its parts the server and tests use. */
export { createImageUrlFetcher, isImageUrl, systemResolver } from './fetchImage.js';
export type { ImageUrlFetcher, ImageUrlFetcherOptions, ResolvedAddress, Resolver } from './fetchImage.js';
export { judgeAddress, parseNetworks } from './addresses.js';
export type { AddressVerdict, Network } from './addresses.js';
