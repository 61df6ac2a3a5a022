/**
 * The awslogs log driver's options, read as Docker's awslogs driver reads them: which names it
 * takes, Go's booleans, and the multiline options (awslogs-multiline-pattern, or
 * awslogs-datetime-format turned into a pattern). Registration checks them
 * (task-definition-container.ts); the agent's shipper (agent/awslogs-shipper.ts) acts on them.
 */

/**
 * The options Docker's awslogs driver takes (its ValidateLogOpt), ECS's awslogs-stream-prefix,
 * and the options every driver takes (mode, max-buffer-size).
 */
export const AWSLOGS_OPTIONS: readonly string[] = [
  'awslogs-region', 'awslogs-endpoint', 'awslogs-group', 'awslogs-create-group', 'awslogs-stream', 'awslogs-stream-prefix',
  'awslogs-datetime-format', 'awslogs-multiline-pattern', 'awslogs-credentials-endpoint', 'awslogs-force-flush-interval-seconds',
  'awslogs-max-buffered-events', 'awslogs-format', 'awslogs-create-stream', 'tag', 'mode', 'max-buffer-size',
];

/** Go's strconv.ParseBool, which Docker reads the driver's boolean options with. */
const GO_TRUE: readonly string[] = ['1', 't', 'T', 'TRUE', 'true', 'True'];
const GO_FALSE: readonly string[] = ['0', 'f', 'F', 'FALSE', 'false', 'False'];

/** Whether awslogs options ask for the group to be made (true as Go reads it). */
export function awslogsCreatesGroup(o: Record<string, string> | undefined): boolean {
  return GO_TRUE.includes(o?.['awslogs-create-group'] ?? '');
}

/**
 * The stream a container's awslogs output goes to: `<awslogs-stream-prefix>/<container>/<task
 * id>` as ECS names it (the ECS agent sets that over any awslogs-stream), else `awslogs-stream`
 * as Docker's driver takes it, else the container's Docker id (undefined while it has none).
 */
export function awslogsStreamName(o: Record<string, string>, containerName: string, taskId: string, dockerId: string | undefined): string | undefined {
  const prefix = o['awslogs-stream-prefix'];
  if (prefix) return `${prefix}/${containerName}/${taskId}`;
  return o['awslogs-stream'] || dockerId;
}

/** Docker's strftime-to-regex table for awslogs-datetime-format (a directive not in it becomes nothing, as in Docker). */
const STRFTIME: Record<string, string> = {
  '%a': '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)',
  '%A': '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)',
  '%w': '[0-6]',
  '%d': '(?:0[1-9]|[1,2][0-9]|3[0,1])',
  '%b': '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)',
  '%B': '(?:January|February|March|April|May|June|July|August|September|October|November|December)',
  '%m': '(?:0[1-9]|1[0-2])',
  '%Y': '\\d{4}',
  '%y': '\\d{2}',
  '%H': '(?:[0,1][0-9]|2[0-3])',
  '%I': '(?:0[0-9]|1[0-2])',
  '%p': '[A,P]M',
  '%M': '[0-5][0-9]',
  '%S': '[0-5][0-9]',
  '%f': '\\d{6}',
  '%z': '[+-]\\d{4}',
  '%Z': '[A-Z]{1,4}T',
  '%j': '(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])',
  '%L': '\\.\\d{3}',
};

/**
 * The pattern a line must match to start a new event, or undefined when lines are events on
 * their own. Like Docker's, it is not anchored: it may match anywhere in the line. Go's leading
 * `(?i)` becomes the i flag.
 */
export function awslogsMultilinePattern(o: Record<string, string> | undefined): RegExp | undefined {
  const datetime = o?.['awslogs-datetime-format'];
  let source = datetime ? datetime.replace(/%./g, (d) => STRFTIME[d] ?? '') : o?.['awslogs-multiline-pattern'];
  if (!source) return undefined;
  let flags = '';
  if (source.startsWith('(?i)')) {
    flags = 'i';
    source = source.slice(4);
  }
  return new RegExp(source, flags);
}

/** What is wrong with awslogs options, in Docker's words (with a hint where Docker gives none), or undefined. */
export function awslogsOptionsProblem(o: Record<string, string>): string | undefined {
  const unknown = Object.keys(o).find((k) => !AWSLOGS_OPTIONS.includes(k));
  if (unknown !== undefined) return `unknown log opt '${unknown}' for awslogs log driver. Valid options: ${AWSLOGS_OPTIONS.join(', ')}.`;
  for (const k of ['awslogs-create-group', 'awslogs-create-stream']) {
    const v = o[k];
    if (v !== undefined && v !== '' && (typeof v !== 'string' || (!GO_TRUE.includes(v) && !GO_FALSE.includes(v)))) {
      return `must specify valid value for log opt '${k}': strconv.ParseBool: parsing ${JSON.stringify(String(v))}: invalid syntax (use true or false).`;
    }
  }
  for (const k of ['awslogs-force-flush-interval-seconds', 'awslogs-max-buffered-events']) {
    const v = o[k];
    if (v !== undefined && v !== '' && !(/^\+?\d+$/.test(String(v)) && Number(v) > 0)) return `must specify a positive integer for log opt '${k}': ${String(v)}`;
  }
  const datetime = o['awslogs-datetime-format'] !== undefined;
  const multiline = o['awslogs-multiline-pattern'] !== undefined;
  if (datetime && multiline) return "you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time.";
  if (o['awslogs-format'] !== undefined && o['awslogs-format'] !== '') {
    if (o['awslogs-format'] !== 'json/emf') return `unsupported log format '${o['awslogs-format']}'`;
    if (datetime || multiline) return "you cannot configure log opt 'awslogs-datetime-format' or 'awslogs-multiline-pattern' when log opt 'awslogs-format' is set to 'json/emf'";
  }
  try {
    awslogsMultilinePattern(o);
  } catch (e) {
    return `awslogs could not parse multiline pattern key ${JSON.stringify(o['awslogs-multiline-pattern'] ?? o['awslogs-datetime-format'])}: ${(e as Error).message}`;
  }
  if (o.mode !== undefined && o.mode !== 'blocking' && o.mode !== 'non-blocking') return 'mode must be blocking or non-blocking.';
  return undefined;
}
