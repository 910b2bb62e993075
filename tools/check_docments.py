"""Public parameters without a docment, per module: `python tools/check_docments.py [module ...]`.

A docment is the inline comment after a parameter (fastcore.docments), which `show_doc` turns into the
parameter table of the rendered page. Every public function, method and class in a module's `__all__`
(dataclass fields included) should have one for each parameter but `self`/`cls`."""
import importlib, inspect, pkgutil, sys
from fastcore.docments import docments
import gmc_nb

def modules():
    return sorted(m.name for m in pkgutil.walk_packages(gmc_nb.__path__, 'gmc_nb.')
                  if not m.name.endswith(('_modidx', '__init__')) and not m.ispkg)

def _targets(obj, name):
    if inspect.isclass(obj):
        yield name, obj
        for k, v in vars(obj).items():
            if not k.startswith('_') and inspect.isfunction(v): yield f'{name}.{k}', v
    elif inspect.isfunction(obj): yield name, obj

def missing(modname):
    "(qualified name, parameter) of every public parameter without a docment in module `modname`"
    m = importlib.import_module(modname); out = []
    for name in getattr(m, '__all__', []):
        obj = getattr(m, name, None)
        if getattr(obj, '__module__', modname) != modname: continue
        for qn, f in _targets(obj, name):
            try: sig = inspect.signature(f); d = docments(f, full=False, args_kwargs=True)
            except (ValueError, TypeError, OSError): continue
            for p in sig.parameters:
                if p in ('self', 'cls'): continue
                if not d.get(p): out.append((qn, p))
    return out

if __name__ == '__main__':
    mods = sys.argv[1:] or modules(); total = 0
    for mod in mods:
        ms = missing(mod); total += len(ms)
        for qn, p in ms: print(f'{mod}: {qn}({p})')
    print(f'{total} public parameters without a docment', file=sys.stderr)
    sys.exit(1 if total else 0)
