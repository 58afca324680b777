import { readFile } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { createLogger, OpenBaoClient, serveMetrics, type Logger } from '@kdc/shared';
import type { PluginConfig } from './config.ts';
import { unaryServer } from './transport/grpc-server.ts';
import { KeyState } from './key/key-state.ts';
import { pluginMetrics } from './metrics.ts';
import { serveProbes } from './probes.ts';
import { KMS_LIMITS, loadKmsV2 } from './transport/proto.ts';
import { kmsService } from './service/service.ts';
import { OpenBaoSession } from './key/session.ts';
import { prepareSocket, removeSocket, restrictSocket } from './transport/socket.ts';

export interface RunningPlugin {
  logger: Logger;
  state: KeyState;
  metricsServer: HttpServer;
  probeServer?: HttpServer;
  /** Drains in-flight calls (up to graceMs), removes the socket, stops background work. */
  stop(graceMs?: number): Promise<void>;
}

export async function startPlugin(
  config: PluginConfig,
  logger: Logger = createLogger('kms-plugin', { level: config.logLevel }),
): Promise<RunningPlugin> {
  const caBundle = config.openBaoCaFile ? await readFile(config.openBaoCaFile, 'utf8') : undefined;
  const base = new OpenBaoClient({
    endpoint: config.openBaoAddr,
    namespace: config.openBaoNamespace,
    caBundle,
    timeoutMs: config.requestTimeoutMs,
  });
  const metrics = pluginMetrics();
  const session = new OpenBaoSession(base, config.auth, logger, metrics);
  const scheme = {
    identity: { namespace: config.openBaoNamespace ?? '', mount: config.transitMount, key: config.transitKey },
    publish: config.keyIdForm,
    servers: [config.openBaoAddr, ...config.legacyKeyIdOpenBaoAddrs],
  };
  logger.info({ keyIdForm: scheme.publish, legacyAddrs: config.legacyKeyIdOpenBaoAddrs.length }, 'key_id scheme');
  const state = new KeyState({ session, scheme, logger, metrics, staleAfterMs: config.healthStaleAfterMs });

  // A first check before serving, so the apiserver's start-up probe usually finds a key_id.
  // If OpenBao is not reachable yet we serve anyway: Status says why, and the loop retries.
  await state.check();
  state.start(config.healthIntervalMs);

  const metricsServer = await serveMetrics(metrics.registry, {
    port: config.metricsPort,
    host: config.metricsHost,
    ready: () => state.healthz() === 'ok',
  });
  const probeServer = config.probe ? await serveProbes(state, config.probe) : undefined;

  const removed = await prepareSocket(config.socket);
  if (removed === 'stale-removed')
    logger.warn({ socket: config.socket }, 'removed a stale socket left by a previous instance');
  const inFlight = { count: 0 };
  const server = unaryServer(
    loadKmsV2().service,
    kmsService({
      state,
      session,
      mount: config.transitMount,
      key: config.transitKey,
      logger,
      metrics,
      inFlight,
      maxQueuedCalls: config.maxQueuedCalls,
    }),
    { maxReceiveBytes: KMS_LIMITS.maxGrpcMessageBytes },
  );
  // The socket is created with the process umask: tighten it first so it is never world-open.
  const umask = process.umask(0o177);
  try {
    await server.listen(config.socket);
  } finally {
    process.umask(umask);
  }
  await restrictSocket(config.socket, config.socketGroup);
  logger.info({ socket: config.socket, healthz: state.healthz() }, 'kms-plugin listening');

  return {
    logger,
    state,
    metricsServer,
    ...(probeServer ? { probeServer } : {}),
    stop: async (graceMs = 20_000) => {
      state.stop();
      session.stop();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ inFlight: inFlight.count }, 'drain timed out; closing remaining calls');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await removeSocket(config.socket);
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      if (probeServer) await new Promise<void>((resolve) => probeServer.close(() => resolve()));
      logger.info('kms-plugin stopped');
    },
  };
}
