/**
 * Layer rules of docs/ARCHITECTURE.md: each folder of src/ may import only the layers below it,
 * and there are no import cycles. `npm run lint` fails on any violation.
 *
 *   lib -> core -> {api, store, scheduler} -> {state, control, controllers} -> server -> cmd
 *   (server/ may not import store/: it never writes the store directly)
 *   agent, loadbalancer, console: clients of the API (lib, core, api only); controllers drive loadbalancer
 */
const layer = (name, allowed) => ({
  name: `${name}-imports-only-${allowed.join('-') || 'nothing'}`,
  severity: 'error',
  comment: `src/${name} may import only: ${allowed.join(', ') || '(nothing in src)'}`,
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, ...allowed.map((a) => `^src/${a}/`)] },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    layer('lib', []),
    layer('core', ['lib']),
    layer('api', ['core', 'lib']),
    layer('store', ['core', 'lib']),
    layer('scheduler', ['core', 'lib']),
    layer('state', ['store', 'scheduler', 'core', 'lib']),
    layer('control', ['state', 'store', 'scheduler', 'api', 'core', 'lib']),
    // controllers/load-balancer-controller.ts drives the data plane (loadbalancer/ sits below it:
    // it imports only api, core, lib), as the agent is driven through its own layer.
    layer('controllers', ['control', 'state', 'store', 'scheduler', 'loadbalancer', 'api', 'core', 'lib']),
    layer('fargate', ['control', 'state', 'store', 'scheduler', 'api', 'core', 'lib']),
    layer('discovery', ['control', 'state', 'store', 'api', 'core', 'lib']),
    // server/ is transport: it reads the state cache and calls control/, and never writes the
    // store itself (no import of store/, not even its types: cmd/ hands it what it needs).
    layer('server', ['controllers', 'control', 'state', 'scheduler', 'api', 'core', 'lib']),
    layer('agent', ['api', 'core', 'lib']),
    layer('loadbalancer', ['api', 'core', 'lib']),
    layer('console', ['api', 'core']),
    {
      name: 'core-and-scheduler-are-pure',
      severity: 'error',
      comment: 'core/ and scheduler/ do no I/O: no node: built-ins, no npm packages',
      from: { path: '^src/(core|scheduler)/', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Tests and their harnesses (test support that builds whole servers over in-memory stores).
    exclude: { path: '(\\.test|-harness)\\.ts$' },
  },
};
