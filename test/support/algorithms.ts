/**
 * Every algorithm a pool takes, made fresh for each use, for tests that must hold for all of them
 * (tiers, zones, subsets).
 */
import {
  type Algorithm,
  ConsistentHash,
  IpHash,
  LeastConnections,
  Maglev,
  PeakEwma,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  WeightedRoundRobin,
} from '../../src/index.js';

/** `[name, make, rotates]`: `rotates` when the backends take turns exactly (no randomness, no hash). */
export const EVERY_ALGORITHM: readonly [string, () => Algorithm, boolean][] = [
  ['RoundRobin', () => new RoundRobin({ startIndex: 0 }), true],
  ['WeightedRoundRobin', () => new WeightedRoundRobin(), true],
  ['LeastConnections', () => new LeastConnections(), true],
  ['PowerOfTwoChoices', () => new PowerOfTwoChoices(), false],
  ['PeakEwma', () => new PeakEwma(), false],
  ['RandomPick', () => new RandomPick(), false],
  ['ConsistentHash', () => new ConsistentHash(), false],
  ['Maglev', () => new Maglev(), false],
  ['IpHash', () => new IpHash(), false],
];
