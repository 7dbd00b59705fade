/**
 * The well-known symbols of explicit resource management (TC39, ECMAScript 2026), declared for
 * the types of projects that compile without them: a browser project with `lib: ["ES2022",
 * "DOM"]` and no `@types/node` would otherwise fail on every `[Symbol.asyncDispose]()` of the
 * declarations (with `skipLibCheck: false`). The same declarations as TypeScript's
 * `lib.esnext.disposable.d.ts` and `@types/node`'s, with which they merge. Runtimes that lack
 * the symbols (Node before 18.18, older browsers) simply have no such method.
 * @internal
 */
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
    readonly asyncDispose: unique symbol;
  }
}

export {};
