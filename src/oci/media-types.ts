/**
 * Media types of the OCI image spec (v1.1, media-types.md) and their Docker v2 schema 2
 * equivalents (docker/distribution docs/spec/manifest-v2-2.md). Pure constants, no I/O.
 */
export const MediaType = {
  OCIManifest: 'application/vnd.oci.image.manifest.v1+json',
  OCIIndex: 'application/vnd.oci.image.index.v1+json',
  OCIConfig: 'application/vnd.oci.image.config.v1+json',
  OCILayer: 'application/vnd.oci.image.layer.v1.tar',
  OCILayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCILayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCILayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What we ask registries for when resolving a reference (order = preference). */
export const MANIFEST_ACCEPT = [
  MediaType.OCIIndex,
  MediaType.DockerManifestList,
  MediaType.OCIManifest,
  MediaType.DockerManifest,
];

export const isIndexType = (t: string | undefined): boolean =>
  t === MediaType.OCIIndex || t === MediaType.DockerManifestList;
export const isManifestType = (t: string | undefined): boolean =>
  t === MediaType.OCIManifest || t === MediaType.DockerManifest;
export const isSchema1Type = (t: string | undefined): boolean =>
  t === MediaType.DockerSchema1 || t === MediaType.DockerSchema1Signed;

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression a layer media type declares, or undefined if it is not a layer we can unpack. */
export function layerCompression(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MediaType.OCILayerGzip:
    case MediaType.OCILayerNondistributableGzip:
    case MediaType.DockerLayerGzip:
    case MediaType.DockerLayerForeignGzip:
      return 'gzip';
    case MediaType.OCILayerZstd:
      return 'zstd';
    case MediaType.OCILayer:
      return 'none';
    default:
      return undefined;
  }
}

/** The OCI media type for the same layer bytes (an OCI manifest must not list Docker types). */
export function ociLayerType(mediaType: string): string {
  switch (mediaType) {
    case MediaType.DockerLayerGzip:
      return MediaType.OCILayerGzip;
    case MediaType.DockerLayerForeignGzip:
      return MediaType.OCILayerNondistributableGzip;
    default:
      return mediaType;
  }
}
