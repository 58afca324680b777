// @kdc/shared/etcd: reading a tenant's rows from its etcd DataStore and proving what they are
// encrypted with. Kept out of the main @kdc/shared index so that only programs that scan load it
// (and @grpc/grpc-js is loaded on the first read, not on import).
export { scanCoverage, type CoverageScan, type CoverageScanInput } from './scan.ts';
export {
  classifyRow,
  coverageStatus,
  emptyCounts,
  emptyTally,
  tallyRow,
  versionOfKeyId,
  MAX_KEY_IDS,
  OTHER_KEY_IDS,
  OUR_KEY_ID,
  type ClassifyOptions,
  type CoverageCounts,
  type CoverageTally,
  type RowClass,
  type RowKind,
} from './rows.ts';
export { tenantEtcdPrefix, resourcePrefix, prefixRangeEnd } from './prefix.ts';
export {
  openEtcdKvReader,
  parseEtcdEndpoint,
  type EtcdConnection,
  type EtcdKvReader,
  type EtcdReaderOptions,
  type EtcdRow,
  type EtcdRowsOptions,
} from './reader.ts';
export { EtcdReadError, isEtcdReadError, type EtcdReadErrorKind } from './errors.ts';
export {
  decodeEncryptedObject,
  encodeEncryptedObject,
  ProtoError,
  type EncryptedObjectInfo,
} from './encrypted-object.ts';
