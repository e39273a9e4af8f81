// Aligned columns the way kubectl prints them: upper-case headers, each column as wide as its widest cell, three
// spaces between columns, nothing after the last one.

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** The first sentence of a condition message (up to `max` characters): enough for a table cell. */
export function firstSentence(message: string, max = 120): string {
  const end = message.search(/\.(\s|$)/);
  const sentence = end >= 0 ? message.slice(0, end + 1) : message;
  return sentence.length > max ? `${sentence.slice(0, max - 3)}...` : sentence;
}
