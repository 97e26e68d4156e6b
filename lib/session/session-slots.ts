import calculateSlot from 'cluster-key-slot';

/** How many hash slots a Redis Cluster has. */
const SLOTS = 16_384;
/** The characters of a slot's tag (base64url's, which no key part encoding changes). */
const TAG_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The tags by slot, found on first use. */
let tags: string[] | undefined;

/**
 * The text `x` whose hash tag `{s:x}` falls in `slot`: the tag of the keys of sessions kept in
 * their user's slot (`<prefix>{s:x}:<handle>`), so that they share the slot of the user's index
 * (`<prefix>{su:<user>}`) without naming the user. The first three-character text in the order
 * of {@link TAG_CHARACTERS} that falls there: every instance, of every version, must name a
 * session's key alike, so this order never changes.
 *
 * @example
 * calculateSlot(`{s:${slotTag(5)}}`); // 5
 */
export function slotTag(slot: number): string {
  tags ??= findSlotTags();
  return tags[slot];
}

/** One tag per slot (some 66,000 texts are tried, once per process: tens of milliseconds). */
function findSlotTags(): string[] {
  const found = new Array<string>(SLOTS);
  let missing = SLOTS;
  const base = TAG_CHARACTERS.length;
  // Every slot is hit by some three-character text: the test of this file checks it.
  for (let n = 0; missing > 0; n++) {
    const text = TAG_CHARACTERS[Math.floor(n / base / base)] + TAG_CHARACTERS[Math.floor(n / base) % base] + TAG_CHARACTERS[n % base];
    const slot = calculateSlot(`{s:${text}}`);
    if (found[slot] === undefined) {
      found[slot] = text;
      missing--;
    }
  }
  return found;
}
