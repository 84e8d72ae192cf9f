export { RegistryClient, RegistryEndpointSchema, type RegistryEndpoint, type RegistryClientOptions } from './client.ts';
export { RegistryErrorCodes, registryError, registryErrorFromStatus, type RegistryErrorCode } from './errors.ts';
export { MediaType, MANIFEST_ACCEPT, MANIFEST_MAX_BYTES, isIndexType, isImageManifestType } from './media-types.ts';
export { digestOf, isDigest } from './digest.ts';
export type { ManifestData, ManifestHead } from './manifest.ts';
export type { BlobDescriptor, OpenSource, UploadTuning } from './upload.ts';
export type { Descriptor, ReferrersResult } from './referrers.ts';
