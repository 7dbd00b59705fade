/**
 * `loadwise/undici`: a balanced undici `Dispatcher`, for `undici.request()`, `undici.fetch()`,
 * `setGlobalDispatcher()` and `compose()` interceptors. Needs the `undici` package (an optional
 * peer dependency, version 7).
 * @packageDocumentation
 */
export {
  BalancedDispatcher,
  type BalancedDispatcherEvents,
  type BalancedDispatcherOptions,
  type DispatchContextInfo,
} from './balanced-dispatcher.js';
