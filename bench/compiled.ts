/**
 * loadwise as an application runs it: the compiled package (dist/, built here when stale), typed
 * as the sources. A bench that compares loadwise with other libraries per call loads it from here
 * rather than importing src/ through the bench's TypeScript loader: tsx compiles with esbuild's
 * `keepNames`, which wraps every named function and closure in a helper call as it is created
 * (about 0.26 µs each on Node 20, against 0.01 µs plain), and the call loop creates a dozen per
 * call, a cost that no application pays and the other libraries' rows (plain JavaScript from
 * node_modules) do not carry.
 */

import type * as Loadwise from '../src/index.js';
import type * as LoadwiseUndici from '../src/undici/index.js';
import { ensureBuilt } from '../test/support/build.js';

const DIST = new URL('../dist/', import.meta.url).href;

/** The compiled `loadwise` and `loadwise/undici` entry points. */
export async function loadCompiled(): Promise<{
  loadwise: typeof Loadwise;
  undici: typeof LoadwiseUndici;
}> {
  ensureBuilt();
  const [loadwise, undici] = await Promise.all([
    import(`${DIST}index.js`) as Promise<typeof Loadwise>,
    import(`${DIST}undici/index.js`) as Promise<typeof LoadwiseUndici>,
  ]);
  return { loadwise, undici };
}
