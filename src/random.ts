/** A source of uniform numbers in `[0, 1)`, like `Math.random`. Inject `seededRandom` in tests. */
export type Random = () => number;

/** The platform's `Math.random`. */
export const defaultRandom: Random = () => Math.random();
