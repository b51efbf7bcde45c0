import type { ManifestCounts, ManifestError, ResidualCheck, RunDevice } from '@llem/domain';

/** How a run ended, as far as progress is concerned. */
export type RunEndStatus = 'completed' | 'failed' | 'interrupted';

/** An ETA: `null` until one run of this session has finished (nothing to estimate from). */
export interface Eta {
  remainingRuns: number;
  /** Mean finished-run duration × remaining runs + the gaps still ahead. */
  remainingMs: number | null;
}

export interface StudyEvents {
  'study-started': {
    studyDir: string;
    studyName: string;
    total: number;
    /** Runs this session will dispatch (pending, running and failed ones). */
    toRun: number;
    resumed: boolean;
    /** Runs found with a result on disk while the manifest said otherwise, marked completed. */
    recovered: number;
  };
  'gap-countdown': {
    kind: 'experiment' | 'cycle';
    secondsLeft: number;
    totalSeconds: number;
    /** The device set that waits (studies with `execution.devices`). */
    devices?: RunDevice[];
  };
  'gap-finished': { skipped: boolean; interrupted: boolean; devices?: RunDevice[] };
  'run-started': {
    key: string;
    label: string;
    configHash: string;
    cycle: number;
    /** 1-based position among the runs this session dispatches. */
    index: number;
    total: number;
    attempt: number;
    timeoutS: number;
    pid: number;
    residualCheck: ResidualCheck;
    /** The GPUs the run was given (studies with `execution.devices`). */
    devices?: RunDevice[];
  };
  /** A line the worker sent while the run goes on (e.g. waiting for a server to answer). */
  'run-progress': {
    key: string;
    label: string;
    message: string;
  };
  'run-finished': {
    key: string;
    label: string;
    index: number;
    total: number;
    status: RunEndStatus;
    durationMs: number;
    error: ManifestError | null;
    eta: Eta;
    devices?: RunDevice[];
  };
  'study-finished': StudySummary;
}

export type StudyEventName = keyof StudyEvents;

/**
 * Every event a `StudyRunner` emits, in the order a study emits them first. For forwarding all
 * of them (a progress display, a log) without a list of one's own that a new event would miss.
 *
 * @example
 * for (const name of STUDY_EVENT_NAMES) runner.on(name, (e) => log(name, e));
 */
export const STUDY_EVENT_NAMES = [
  'study-started',
  'gap-countdown',
  'gap-finished',
  'run-started',
  'run-progress',
  'run-finished',
  'study-finished',
] as const satisfies readonly StudyEventName[];

// Adding an event to `StudyEvents` without listing it above fails the typecheck here (exported
// only so the linter sees it used; `never` whenever the list is complete).
type MustBeNever<T extends never> = T;
export type UnlistedStudyEvent = MustBeNever<
  Exclude<StudyEventName, (typeof STUDY_EVENT_NAMES)[number]>
>;

/** What `StudyRunner#run` resolves with. */
export interface StudySummary {
  /**
   * `completed`: every run ended (completed or failed); `interrupted`: runs are left to resume;
   * `running`: this runner is done but other runners still hold runs of the study.
   */
  status: 'completed' | 'interrupted' | 'running';
  studyDir: string;
  counts: ManifestCounts;
  durationMs: number;
}
