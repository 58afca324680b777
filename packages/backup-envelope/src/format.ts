// TEMPORARY (issue #14): config.ts still imports from here until its import line moves to format/.
export * from './format/spec.ts';
