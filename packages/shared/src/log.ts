import pino, { type Logger, type LoggerOptions } from 'pino';

// Token-like, key-like and payload fields are censored wherever they appear (two levels deep),
// so a careless `log.info({ response })` cannot leak a client token, a DEK or a plaintext.
const SENSITIVE = [
  'token',
  'clientToken',
  'client_token',
  'jwt',
  'password',
  'secretId',
  'secret_id',
  'roleId',
  'role_id',
  'plaintext',
  'ciphertext',
  'dek',
  'wrappedDek',
  'authorization',
  'Authorization',
  'x-vault-token',
  'X-Vault-Token',
];

export const REDACT_PATHS = SENSITIVE.flatMap((field) =>
  [field, `*.${field}`, `*.*.${field}`].map((p) => (field.includes('-') ? p.replace(field, `["${field}"]`) : p)),
);

export function createLogger(name: string, options: LoggerOptions = {}, destination?: pino.DestinationStream): Logger {
  const base: LoggerOptions = {
    name,
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...options,
  };
  return destination ? pino(base, destination) : pino(base);
}

export type { Logger };
