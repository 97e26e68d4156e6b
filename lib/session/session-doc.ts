import { JsonCodec, type RedisCodec } from '../core/codec.js';
import { assertWellFormed } from '../core/validation.js';
import { DOC_FIELD, type SessionData } from './session-fields.js';

/** What a document holding the default codec's tags contains: one with it is written with a '~' (see session-doc.lua). */
const TAG_MARK = '"$nrp"';

/**
 * How a session's data is written and read with the app's codec: as one document (the hash field
 * `j`, see session-doc.lua), or a value at a time (`d:<name>` fields, and the store's `d:sess`).
 */
export class SessionDataCodec {
  /** Whether the codec is the default JsonCodec, which stores plain JSON data as its JSON text. */
  private readonly codecIsJson: boolean;
  /** What reads a document: the codec itself when it is the default one. */
  private readonly docCodec: JsonCodec;

  constructor(private readonly codec: RedisCodec) {
    this.codecIsJson = codec.constructor === JsonCodec;
    this.docCodec = this.codecIsJson ? (codec as JsonCodec) : new JsonCodec();
  }

  /** How scripts are told which codec encoded a session's values (see docValue in session-doc.lua). */
  get name(): 'json' | 'text' {
    return this.codecIsJson ? 'json' : 'text';
  }

  /**
   * A session's data from its document: decoded at once with the default codec; with another,
   * each field's value is its encoded text, decoded by the codec. `key` names the session in errors.
   */
  decodeDoc(doc: string, key: string): SessionData {
    const data = this.docCodec.decodeProperties(doc, key);
    if (!this.codecIsJson) for (const name of Object.keys(data)) data[name] = this.codec.decode(data[name] as string, key);
    return data;
  }

  /** One data field's value, as stored. */
  decodeField<T>(raw: string, key: string): T {
    return this.codec.decode<T>(raw, key);
  }

  /** The data of a new session, as the hash fields that hold it: its document (undefined values left out). */
  encodeData(data: SessionData): string[] {
    let lines = '';
    for (const [field, value] of Object.entries(data)) {
      if (value !== undefined)
        lines += `${lines === '' ? '' : ','}\n${this.fieldName(field)}\t:${this.docValue(this.encode(value, field))}`;
    }
    const doc = `{${lines}\n}`;
    // Marked as markDoc in session-doc.lua marks it.
    return [DOC_FIELD, doc.includes(TAG_MARK) ? `~${doc}` : doc];
  }

  /**
   * How scripts name a data field: as JSON.stringify writes it. Its name must be well-formed
   * Unicode (two names must not become one field).
   */
  fieldName(field: string): string {
    return JSON.stringify(assertWellFormed('data (a field name)', field));
  }

  encode(value: unknown, field: string): string {
    return this.codec.encode(value, `session data "${field}"`) as string;
  }

  /**
   * One data field's value given as JSON text, as stored. The default codec stores plain JSON
   * data as that very text (and reads it back with a bare JSON.parse), so the text is stored as it
   * is; another codec encodes the data it holds.
   */
  encodeJson(json: string, field: string): string {
    return this.codecIsJson ? json : this.encode(JSON.parse(json), field);
  }

  /** A data field's value in a document, from its encoding by the codec (as docValue in session-doc.lua). */
  private docValue(encoded: string): string {
    return this.codecIsJson ? (this.docCodec.plainJsonText(encoded) ?? encoded.slice(1)) : JSON.stringify(encoded);
  }
}
