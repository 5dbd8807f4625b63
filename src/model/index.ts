/**
 * The lab model: load (YAML → schema → resolve, all problems at once as one LabInputError),
 * select (the CLI's --strategies/--drills/--quick/--repeat), and the resolved types.
 */
export type * from './types.js';
export { loadLab, loadTopology, labFile, labNames, REPO_ROOT, type LoadOptions } from './load.js';
export { selectLab, splitList, type Selection } from './select.js';
export { DEFAULT_TIMERS, mergeTimers, timerIssues } from './timers.js';
export { CP_MECHANISMS, SVC_MECHANISMS, DRILL_KINDS, CP_TRAITS, SVC_TRAITS, parseStrategyId } from './catalog.js';
export { DRILL_DEFAULTS } from './resolve.js';
