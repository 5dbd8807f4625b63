/**
 * The lab model: load (YAML → schema → resolve, all problems at once as one LabInputError),
 * select (the CLI's --strategies/--drills/--quick/--repeat), and the resolved types.
 */
export type * from './types.js';
export { loadLab, loadTopology, labFile, labNames, REPO_ROOT, type LoadOptions } from './load.js';
export { selectLab, splitList, type Selection } from './select.js';
export { mergeTimers } from './timers.js';
export { DEFAULT_TIMERS, timerIssues } from './timer-groups.js';
export { DRILL_KINDS } from './catalog.js';
export { CP_IDS, SVC_IDS, parseStrategyId } from '../strategies/registry.js';
export { DRILL_DEFAULTS } from './resolve.js';
