/**
 * A deterministic load-balancing simulator: scenarios run against real pools and algorithms on
 * a virtual clock.
 * @module
 */
export {
  SIMULATION_ALGORITHMS,
  STANDARD_ALGORITHMS,
  simulationCandidates,
} from './candidates.js';
export {
  type FleetReport,
  type FleetScenarioOptions,
  type FleetStepResult,
  type FleetStrategy,
  fleetCharts,
  formatFleetReport,
  simulateFleet,
} from './fleet.js';
export { formatReport } from './format.js';
export {
  BUILT_IN_SCENARIOS,
  type BuiltInScenario,
  type FlappingOptions,
  failingBackendScenario,
  flapping,
  flappingScenario,
  heavyTailScenario,
  hotKeysScenario,
  linkerdScenario,
  lostCapacityScenario,
  type ScenarioOptions,
  slowBackendScenario,
  zoneOutageScenario,
} from './scenarios.js';
export { simulate } from './simulate.js';
export { barChart, type Chart, lineChart, reportCharts } from './svg.js';
export type * from './types.js';
