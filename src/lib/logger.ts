import pino from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs. Level from WHARF_LOG_LEVEL (default info; `silent` in tests). */
export function createLogger(name: string, level = process.env.WHARF_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name } });
}
