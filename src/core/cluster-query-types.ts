/** The parsed form of a cluster query, and what it is evaluated against (cluster-query.ts). */

export type QuerySubjectName =
  | 'agentConnected'
  | 'agentVersion'
  | 'attribute'
  | 'ec2InstanceId'
  | 'registeredAt'
  | 'runningTasksCount'
  | 'task:group';

export type QueryOperator = '==' | '!=' | '>' | '>=' | '<' | '<=' | 'exists' | '!exists' | 'in' | '!in' | '=~' | '!~';

export interface QueryComparison {
  kind: 'compare';
  subject: QuerySubjectName;
  /** For `attribute:<name>`. */
  attribute?: string;
  op: QueryOperator;
  /** Literal arguments as written (one, or the list of in/!in; none for exists/!exists). */
  args: string[];
  /** 1-based position of the subject in the expression. */
  position: number;
  /** Prepared forms of args, computed once at parse time. */
  regex?: RegExp;
  numbers?: number[];
}

export type QueryAst =
  | QueryComparison
  | { kind: 'and'; operands: QueryAst[] }
  | { kind: 'or'; operands: QueryAst[] }
  | { kind: 'not'; operand: QueryAst };

/** What an expression is evaluated against: one container instance. */
export interface QuerySubject {
  /** Attribute name -> value; a name-only attribute (capabilities) maps to undefined. */
  readonly attributes: ReadonlyMap<string, string | undefined>;
  readonly agentConnected: boolean;
  readonly agentVersion?: string;
  readonly ec2InstanceId?: string;
  /** Registration time, epoch milliseconds. */
  readonly registeredAt: number;
  readonly runningTasksCount: number;
  /** Task group -> number of tasks of that group on the instance (zero entries are ignored). */
  readonly tasksByGroup: ReadonlyMap<string, number>;
}
