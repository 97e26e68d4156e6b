/**
 * The value of one field of a stream entry, whose fields come as `[name, value, name, value...]`
 * (Buffers when read in binary mode). Only names are compared, never values.
 */
export function streamField(fields: readonly (string | Buffer)[], name: string): string | Buffer | undefined {
  for (let i = 0; i < fields.length; i += 2) if (String(fields[i]) === name) return fields[i + 1];
  return undefined;
}
