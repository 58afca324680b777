// TEMPORARY (issue #14): main.ts still imports from here until its import line moves to restore/.
export * from './restore/restore.ts';
