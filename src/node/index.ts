/**
 * The parts of loadwise that need Node.js: TCP probes, DNS discovery, diagnostics channels and
 * Layer 4 connections.
 * @packageDocumentation
 */
export {};
