// Structured JSON logs on stdout. Messages are constant strings; everything that varies goes into fields, so log
// queries can group by message and filter by field.
import pino from 'pino';

export type Logger = pino.Logger;

export function createLogger(opts: { level: string; name?: string }): Logger {
  return pino({
    level: opts.level,
    ...(opts.name === undefined ? {} : { name: opts.name }),
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names instead of pino's numbers: what people grep for and what log backends map to severity.
    formatters: { level: (label) => ({ level: label }) },
  });
}
