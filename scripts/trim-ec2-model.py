"""Writes models/ec2/service-2.json.gz: the operations of botocore's EC2 model that Wharf serves
(control/vpc.ts, control/security-groups.ts) and only the shapes they reach, without docs.
Usage: python3 scripts/trim-ec2-model.py [path to botocore's ec2/2016-11-15/service-2.json.gz]"""
import gzip, json, sys

OPERATIONS = ['CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'RevokeSecurityGroupIngress',
              'DeleteSecurityGroup', 'DescribeSecurityGroups', 'DescribeSubnets', 'DescribeVpcs']
src = sys.argv[1] if len(sys.argv) > 1 else '/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/botocore/data/ec2/2016-11-15/service-2.json.gz'
m = json.load(gzip.open(src))

def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k != 'documentation'}
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o

shapes, todo = {}, []
ops = {}
for name in OPERATIONS:
    op = strip(m['operations'][name])
    ops[name] = op
    for k in ('input', 'output'):
        if k in op: todo.append(op[k]['shape'])
while todo:
    s = todo.pop()
    if s in shapes: continue
    shape = strip(m['shapes'][s])
    shapes[s] = shape
    for ref in list((shape.get('members') or {}).values()) + [shape.get(k) for k in ('member', 'key', 'value') if shape.get(k)]:
        todo.append(ref['shape'])
out = {'version': m.get('version', '2.0'), 'metadata': m['metadata'], 'operations': ops, 'shapes': dict(sorted(shapes.items()))}
with open('models/ec2/service-2.json.gz', 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as f:
    f.write(json.dumps(out, separators=(',', ':')).encode())
print(len(ops), 'operations,', len(shapes), 'shapes')
