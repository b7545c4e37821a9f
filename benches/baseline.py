"""The baseline partnerwatch's sweep is measured against: a plain Python dict-diff, as a user
would write it. json.load both snapshots, key them by id, compare with ==. Default GC."""
import json
import resource
import sys


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


t0 = cpu()
with open(sys.argv[1]) as f:
    old = {r["id"]: r for r in json.load(f)}
with open(sys.argv[2]) as f:
    new = {r["id"]: r for r in json.load(f)}
added = [k for k in new if k not in old]
removed = [k for k in old if k not in new]
changed = [k for k in new if k in old and new[k] != old[k]]
t1 = cpu()
print(f"baseline_cpu_s={t1 - t0:.3f} changed={len(changed)} added={len(added)} removed={len(removed)}")
