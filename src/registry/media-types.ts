// Media types the bridge reads and writes (OCI image spec and Docker distribution schema2).
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociForeignLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociForeignLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociForeignLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a manifest GET asks for by default: every format the bridge can copy. */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest,
];

/** Manifests bigger than this are refused (regclient caps at 8 MiB; OCI asks registries for 4 MiB). */
export const MANIFEST_MAX_BYTES = 8 * 1024 * 1024;

export const isIndexType = (mt: string) => mt === MediaType.ociIndex || mt === MediaType.dockerList;
export const isImageManifestType = (mt: string) => mt === MediaType.ociManifest || mt === MediaType.dockerManifest;
export const isSchema1Type = (mt: string) => mt === MediaType.dockerSchema1 || mt === MediaType.dockerSchema1Signed;

/** Layers that live outside the registry (Windows base layers); never copied. */
export const isForeignLayerType = (mt: string) =>
  mt === MediaType.dockerForeignLayer || mt.startsWith('application/vnd.oci.image.layer.nondistributable.');
