/**
 * The Redis session store (`ioredis`, an optional peer dependency).
 * @packageDocumentation
 */
export {};
